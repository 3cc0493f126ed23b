"""OpenAIHttpBackend against a real ``http.server`` on 127.0.0.1 (port 0) with scripted replies."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tts_sim.backends.openai_http import (
    TIMING_STREAM,
    TIMING_TOTAL,
    HttpBackendError,
    OpenAIHttpBackend,
    normalise_base_url,
)
from tts_sim.core.backend import Backend, GenerationRequest
from tts_sim.errors import ConfigError, TtsSimError


def _completion(text: str, prompt: int = 11, completion: int = 3, finish: str = "stop") -> dict:
    return {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


class Server:
    """Scripted replies: each item of ``script[path]`` is (status, body dict/str, headers) or a callable
    taking the request JSON and returning one. When a path's script runs out, ``default[path]`` answers."""

    def __init__(self) -> None:
        self.script: dict[str, deque] = {}
        self.default: dict[str, object] = {}
        self.requests: list[tuple[str, str, dict | None, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _reply(self, body_in: dict | None) -> None:
                with outer.lock:
                    outer.requests.append((self.command, self.path, body_in, dict(self.headers)))
                    queue = outer.script.get(self.path)
                    item = queue.popleft() if queue else outer.default.get(self.path, (404, {"error": "nope"}, {}))
                if callable(item):
                    item = item(body_in)
                status, body, headers = item
                if status == "drop":  # close the connection without an answer
                    self.close_connection = True
                    return
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(None)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                self._reply(json.loads(self.rfile.read(n)))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def queue(self, path: str, *items) -> None:
        self.script.setdefault(path, deque()).extend(items)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def _backend(server: Server, **kw) -> OpenAIHttpBackend:
    sleeps: list[float] = []
    b = OpenAIHttpBackend(server.url, timeout_s=5, sleep=sleeps.append, **kw)
    b.sleeps = sleeps  # type: ignore[attr-defined]
    return b


REQ = GenerationRequest(({"role": "user", "content": "What is 2 + 3?"},), max_new_tokens=7, temperature=0.5,
                        top_p=0.9, stop=("\n\n",), seed=42)


def test_generate_sends_openai_body_and_reads_usage(server):
    server.queue("/v1/chat/completions", (200, _completion("5", 13, 2), {}))
    b = _backend(server, api_key="sk-test")
    assert isinstance(b, Backend)
    [gen] = b.generate("tiny", [REQ])
    assert (gen.text, gen.prompt_tokens, gen.completion_tokens, gen.finish_reason) == ("5", 13, 2, "stop")
    assert gen.prefill_s == 0.0 and gen.decode_s > 0  # no streaming: everything attributed to decode
    method, path, body, headers = server.requests[0]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert body == {"model": "tiny", "messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 7,
                    "temperature": 0.5, "top_p": 0.9, "stop": ["\n\n"], "seed": 42}
    assert headers["Authorization"] == "Bearer sk-test"


def test_stop_strings_cut_after_visible_text_only_when_the_server_did_not(server):
    server.queue("/v1/chat/completions", (200, _completion("\n\n5\n\nThe answer is 5.", 13, 7, "length"), {}))
    [gen] = _backend(server).generate("tiny", [REQ])
    assert (gen.text, gen.finish_reason, gen.completion_tokens) == ("\n\n5", "stop", 7)


def test_batch_keeps_request_order_under_concurrency(server):
    def echo(body):
        text = body["messages"][0]["content"]
        return 200, _completion(text.upper(), len(text), len(text) // 2, "length"), {}

    server.default["/v1/chat/completions"] = echo
    reqs = [GenerationRequest(({"role": "user", "content": f"q{i}" * (i + 1)},)) for i in range(9)]
    gens = _backend(server, concurrency=4).generate("m", reqs)
    assert [g.text for g in gens] == [r.messages[0]["content"].upper() for r in reqs]
    assert [g.prompt_tokens for g in gens] == [len(r.messages[0]["content"]) for r in reqs]
    assert all(g.finish_reason == "length" for g in gens)
    assert len(server.requests) == 9


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retryable_statuses_back_off_then_succeed(server, status):
    server.queue("/v1/chat/completions", (status, {"error": {"message": "busy"}}, {}),
                 (status, {"error": {"message": "busy"}}, {}), (200, _completion("ok"), {}))
    b = _backend(server, backoff_s=0.25, max_backoff_s=0.4)
    [gen] = b.generate("m", [REQ])
    assert gen.text == "ok"
    assert b.sleeps == [0.25, 0.4]  # 0.25 * 2**1 = 0.5 is capped at 0.4
    assert b.retried == 2 and len(server.requests) == 3


def test_retry_after_header_wins(server):
    server.queue("/v1/chat/completions", (429, {"error": "slow down"}, {"Retry-After": "3"}),
                 (200, _completion("ok"), {}))
    b = _backend(server, backoff_s=0.1, max_backoff_s=10)
    assert b.generate("m", [REQ])[0].text == "ok"
    assert b.sleeps == [3.0]


def test_dropped_connection_is_retried(server):
    server.queue("/v1/chat/completions", ("drop", None, {}), (200, _completion("fine"), {}))
    b = _backend(server, backoff_s=0.01)
    assert b.generate("m", [REQ])[0].text == "fine"
    assert b.retried == 1


def test_gives_up_after_retries(server):
    server.default["/v1/chat/completions"] = (503, {"error": {"message": "overloaded"}}, {})
    b = _backend(server, retries=2, backoff_s=0.01)
    with pytest.raises(HttpBackendError, match="HTTP 503 overloaded"):
        b.generate("m", [REQ])
    assert len(server.requests) == 3 and b.sleeps == [0.01, 0.02]


def test_client_error_fails_at_once_with_server_message(server):
    server.queue("/v1/chat/completions", (400, {"error": {"message": "max_tokens too large\nfor model"}}, {}))
    b = _backend(server)
    with pytest.raises(HttpBackendError, match=r"HTTP 400 max_tokens too large for model$") as info:
        b.generate("m", [REQ])
    assert isinstance(info.value, TtsSimError) and "\n" not in str(info.value)
    assert b.retried == 0


def test_unreachable_server_is_one_line_error():
    s = Server()
    url = s.url
    s.close()
    b = OpenAIHttpBackend(url, retries=1, backoff_s=0.0, timeout_s=2, sleep=lambda _: None)
    with pytest.raises(HttpBackendError, match="unreachable after 2 attempt"):
        b.generate("m", [REQ])


@pytest.mark.parametrize("body", [{"choices": []}, {"choices": [{"message": {"content": "x"}}]}, "not json"])
def test_malformed_replies_are_refused(server, body):
    server.queue("/v1/chat/completions", (200, body, {}))
    with pytest.raises(HttpBackendError):
        _backend(server).generate("m", [REQ])


def _sse(*events) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_streaming_collects_text_and_usage(server):
    chunks = [{"choices": [{"delta": {"role": "assistant"}}]},
              {"choices": [{"delta": {"content": "The answer"}}]},
              {"choices": [{"delta": {"content": " is 5."}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 4}}]
    server.queue("/v1/chat/completions", (200, _sse(*chunks), {"Content-Type": "text/event-stream"}))
    b = _backend(server, stream=True)
    [gen] = b.generate("m", [REQ])
    assert (gen.text, gen.prompt_tokens, gen.completion_tokens) == ("The answer is 5.", 21, 4)
    assert gen.prefill_s > 0 and gen.decode_s >= 0
    assert server.requests[0][2]["stream"] is True
    assert server.requests[0][2]["stream_options"] == {"include_usage": True}


def test_stream_without_usage_is_refused(server):
    server.queue("/v1/chat/completions", (200, _sse({"choices": [{"delta": {"content": "5"}}]}), {}))
    with pytest.raises(HttpBackendError, match="no usage"):
        _backend(server, stream=True).generate("m", [REQ])


def test_info_lists_models_and_says_how_time_is_split(server):
    models = {"object": "list", "data": [{"id": "smollm2", "owned_by": "llamacpp"}, {"id": "other"}]}
    server.default["/v1/models"] = (200, models, {})
    b = _backend(server, device="cpu", quantization="q4_1")
    info = b.info("smollm2")
    assert (info.backend, info.provider, info.device, info.model, info.quantization) == (
        "openai-http", server.url, "cpu", "smollm2", "q4_1")
    assert info.version  # the Server header of http.server, or owned_by
    assert info.extra["timing"] == TIMING_TOTAL
    assert _backend(server, stream=True).info("other").extra["timing"] == TIMING_STREAM
    with pytest.raises(ConfigError, match="does not serve model 'missing'.*other, smollm2"):
        b.info("missing")


@pytest.mark.parametrize(("url", "expected"), [("http://h:1", "http://h:1/v1"), ("http://h:1/", "http://h:1/v1"),
                                               ("https://h/api/v1/", "https://h/api/v1")])
def test_base_url_normalisation(url, expected):
    assert normalise_base_url(url) == expected


@pytest.mark.parametrize("url", ["h:1/v1", "ftp://h/v1", ""])
def test_bad_base_url(url):
    with pytest.raises(ConfigError):
        OpenAIHttpBackend(url)


def test_registered_in_backends():
    from tts_sim.backends import BACKENDS

    b = BACKENDS.build("openai", {"base_url": "http://127.0.0.1:9/v1"})
    assert isinstance(b, OpenAIHttpBackend)
