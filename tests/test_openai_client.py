"""The shared OpenAI-compatible client, and the chat agent on it, against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_openai_http import Server, _completion
from tts_sim.errors import ConfigError
from tts_sim.openai_client import ClientSettings, EndpointError, MalformedReply, OpenAIClient, normalise_base_url
from tts_sim.search.agents import InsightAgent
from tts_sim.search.chat_agent import ChatAgent


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def _client(url: str, **kw) -> tuple[OpenAIClient, list[float]]:
    sleeps: list[float] = []
    return OpenAIClient(ClientSettings(url, **{"timeout_s": 5, **kw}), sleep=sleeps.append), sleeps


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h:1", "http://h:1/v1"), ("http://h:1/v1/", "http://h:1/v1"),
    ("http://h:1/v1/chat/completions", "http://h:1/v1"), ("https://h/api/v1/chat/completions/", "https://h/api/v1"),
    ("http://h:1/chat/completions", "http://h:1/v1"), (" https://h/openai/v1 ", "https://h/openai/v1")])
def test_one_base_url_convention(url, expected):
    assert normalise_base_url(url) == expected
    assert ClientSettings(url).base_url == expected


@pytest.mark.parametrize("kw", [{"timeout_s": 0}, {"retries": -1}, {"backoff_s": -1}, {"base_url": "h:1"}])
def test_bad_settings_are_config_errors(kw):
    with pytest.raises(ConfigError):
        ClientSettings(**{"base_url": "http://h:1", **kw})


def test_exponential_backoff_then_retry_after(server):
    busy = (503, {"error": {"message": "busy"}}, {})
    server.queue("/v1/chat/completions", busy, busy, (429, {}, {"Retry-After": "2"}), (200, _completion("ok"), {}))
    client, sleeps = _client(server.url, backoff_s=0.25, max_backoff_s=30)
    reply = client.chat({"model": "m", "messages": []})
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ("ok", 11, 3)
    assert sleeps == [0.25, 0.5, 2.0] and client.retried == 3
    assert reply.total_s > 0 and reply.first_token_s is None and reply.token_times_s == ()
    assert reply.server_timings == {}  # this server sends none


def test_gives_up_with_the_status(server):
    server.default["/v1/chat/completions"] = (500, {"error": "down"}, {})
    client, sleeps = _client(server.url, retries=1, backoff_s=0)
    with pytest.raises(EndpointError, match="HTTP 500 down") as info:
        client.chat({"model": "m", "messages": []})
    assert info.value.status == 500 and len(server.requests) == 2


def test_usage_is_optional_for_the_client(server):
    body = _completion("hi")
    del body["usage"]
    server.queue("/v1/chat/completions", (200, body, {}))
    reply = _client(server.url)[0].chat({"model": "m", "messages": []})
    assert reply.text == "hi" and not reply.has_usage


def test_not_json_is_a_malformed_reply(server):
    server.queue("/v1/chat/completions", (200, "<html>", {}))
    with pytest.raises(MalformedReply, match="not valid JSON"):
        _client(server.url)[0].chat({"model": "m", "messages": []})


class SlowStream:
    """Streams ``chunks`` as server-sent events, ``gap_s`` apart, then usage and [DONE]."""

    def __init__(self, chunks: list[str], gap_s: float) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for text in chunks:
                    time.sleep(gap_s)
                    event = {"choices": [{"delta": {"content": text}}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                usage = {"choices": [{"delta": {}, "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 7, "completion_tokens": len(chunks)},
                         "timings": {"prompt_n": 7, "prompt_ms": 12.5, "predicted_n": len(chunks),
                                     "predicted_ms": 150.0, "note": "not a number"}}  # as llama-server sends
                self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"  # no /v1: the client adds it
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_streaming_measures_time_to_first_token_and_per_token_times():
    stream = SlowStream(["The", " answer", " is", " 5"], gap_s=0.05)
    try:
        reply = _client(stream.url)[0].chat({"model": "m", "messages": [], "stream": True})
    finally:
        stream.close()
    assert (reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == (
        "The answer is 5", "length", 7, 4)
    assert stream.bodies[0]["stream"] is True and stream.bodies[0]["stream_options"] == {"include_usage": True}
    times = reply.token_times_s
    assert len(times) == 4 and reply.first_token_s == times[0] >= 0.04
    assert all(b - a >= 0.04 for a, b in zip(times, times[1:], strict=False))  # the server's 50 ms gaps
    assert reply.total_s >= times[-1]
    assert reply.server_timings == {"prompt_n": 7, "prompt_ms": 12.5, "predicted_n": 4, "predicted_ms": 150.0}


# ----- the chat agent on the shared client ----------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/chat/completions"])
def test_chat_agent_follows_the_base_url_rule(server, suffix):
    server.default["/v1/chat/completions"] = (200, _completion('{"picks": [0]}'), {})
    root = server.url.removesuffix("/v1")
    agent = ChatAgent(root + suffix, "m", "", fallback=InsightAgent())
    assert agent.settings.base_url == server.url
    text, prompt, completion, estimated = agent.complete([{"role": "user", "content": "hi"}])
    assert (text, prompt, completion, estimated) == ('{"picks": [0]}', 11, 3, False)
    assert [r[1] for r in server.requests] == ["/v1/chat/completions"]
    assert "Authorization" not in server.requests[0][3]  # no key, no header


def test_chat_agent_retries_a_busy_endpoint_without_falling_back(server):
    server.queue("/v1/chat/completions", (429, {"error": "slow down"}, {"Retry-After": "0"}),
                 (200, _completion('{"picks": [0]}'), {}))
    agent = ChatAgent(server.url, "m", backoff_s=0, fallback=InsightAgent())
    assert agent.complete([{"role": "user", "content": "hi"}])[0] == '{"picks": [0]}'
    assert agent.client.retried == 1 and len(server.requests) == 2


def test_chat_agent_estimates_tokens_without_usage(server):
    body = _completion("feedback")
    del body["usage"]
    server.queue("/v1/chat/completions", (200, body, {}))
    agent = ChatAgent(server.url, "m", fallback=InsightAgent())
    text, prompt, completion, estimated = agent.complete([{"role": "user", "content": "x" * 40}])
    assert (text, prompt, completion, estimated) == ("feedback", 10, 2, True)
