"""The ``Backend`` protocol over an OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama, ...).

Standard library only (``urllib``). A batch of requests is sent as concurrent ``/chat/completions``
calls (the server batches them). Token counts come from the response's ``usage``; a response without
it is refused, since guessed counts would silently skew profiles and FLOPs.

Timing: without streaming the server's prefill and decode cannot be told apart, so the whole request
time is reported as ``decode_s`` and ``prefill_s`` is 0 (``info().extra["timing"]`` says so). With
``stream=True``, ``prefill_s`` is the time to the first content token (which includes queueing and
the network round trip) and ``decode_s`` the rest.

Retries: connection errors, timeouts, HTTP 429 and 5xx are retried up to ``retries`` times with
exponential backoff (``backoff_s * 2**attempt``, capped at ``max_backoff_s``; a ``Retry-After``
header wins when present); other HTTP errors fail at once with the server's message.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tts_sim.core.backend import BackendInfo, Generation, GenerationRequest
from tts_sim.errors import ConfigError, TtsSimError

TIMING_TOTAL = "no streaming: prefill not separable, the whole request time is reported as decode_s"
TIMING_STREAM = "streaming: prefill_s = time to first token (includes network and queueing), decode_s = the rest"
_RETRY_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException)


class HttpBackendError(TtsSimError):
    """The server refused a request, sent a malformed reply, or stayed unreachable after retries."""


def normalise_base_url(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/v1``; a URL with a path is kept (trailing slash removed)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"base URL must look like http://host:port/v1, got {url!r}")
    path = parsed.path.rstrip("/") or "/v1"
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))


class OpenAIHttpBackend:
    """Chat completions from an OpenAI-compatible server at ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    ``device`` names the hardware behind the server (the API does not say; it goes into ``info``) and
    ``quantization`` its weights' precision. ``concurrency`` bounds the requests of one batch in flight.
    """

    name = "openai-http"

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None, *,
                 timeout_s: float = 300.0, retries: int = 4, backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 stream: bool = False, concurrency: int = 8, device: str = "", quantization: str = "",
                 extra_body: dict[str, Any] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout_s!r}")
        if retries < 0:
            raise ConfigError(f"retries must be >= 0, got {retries!r}")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency!r}")
        self.base_url = normalise_base_url(base_url)
        self.api_key = api_key
        self.timeout_s, self.retries = timeout_s, retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.stream, self.concurrency = stream, concurrency
        self.device, self.quantization = device, quantization
        self.extra_body = dict(extra_body or {})
        self.sleep = sleep
        self.retried = 0  # retries done so far (for reports and tests)
        self._lock = threading.Lock()

    # ----- HTTP -----------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _call(self, method: str, path: str, body: dict[str, Any] | None,
              consume: Callable[[Any], Any]) -> tuple[Any, float]:
        """``consume(response)`` of one request, retried as a whole; returns it and the start time
        (``perf_counter``) of the attempt that succeeded."""
        url = f"{self.base_url}/{path}"
        data = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=self._headers(), method=method)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return consume(response), started
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                retryable = exc.code == 429 or exc.code >= 500
                if not retryable or attempt >= self.retries:
                    raise HttpBackendError(f"{method} {url}: HTTP {exc.code} {detail}".rstrip()) from None
                wait = _retry_after(exc.headers.get("Retry-After"))
            except _RETRY_ERRORS as exc:
                if attempt >= self.retries:
                    reason = getattr(exc, "reason", None) or exc
                    raise HttpBackendError(f"{method} {url}: unreachable after {attempt + 1} attempt(s) "
                                           f"({reason})") from None
                wait = None
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt if wait is None else wait)
            attempt += 1
            with self._lock:
                self.retried += 1
            self.sleep(delay)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """The decoded JSON reply and its headers."""
        (raw, headers), _ = self._call(method, path, body, lambda r: (r.read(), r.headers))
        try:
            return json.loads(raw), headers
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HttpBackendError(f"{method} {self.base_url}/{path}: reply is not JSON: {raw[:80]!r}") from None

    # ----- Backend protocol -----------------------------------------------------------------------
    def generate(self, model: str, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if not requests:
            return []
        if len(requests) == 1 or self.concurrency == 1:
            return [self._complete(model, r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(lambda r: self._complete(model, r), requests))

    def _body(self, model: str, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in request.messages],
                                "max_tokens": request.max_new_tokens, "temperature": request.temperature,
                                "top_p": request.top_p, **self.extra_body}
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _complete(self, model: str, request: GenerationRequest) -> Generation:
        body = self._body(model, request)
        if self.stream:
            return self._complete_stream(model, body)
        (raw, end), start = self._call("POST", "chat/completions", body, lambda r: (r.read(), time.perf_counter()))
        total = end - start
        try:
            reply = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HttpBackendError(f"model {model!r}: chat completion is not JSON: {raw[:80]!r}") from None
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError):
            raise HttpBackendError(f"model {model!r}: malformed chat completion: {str(reply)[:120]}") from None
        prompt, completion = _usage(reply, model)
        return Generation(text, prompt, completion, 0.0, total, _finish(finish))

    def _complete_stream(self, model: str, body: dict[str, Any]) -> Generation:
        def consume(response: Any) -> tuple[str, str, dict[str, Any] | None, float | None, float]:
            first: float | None = None
            parts: list[str] = []
            finish, usage = "stop", None
            for event in _sse_events(response):
                if event.get("usage"):
                    usage = event
                for choice in event.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(content)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            return "".join(parts), finish, usage, first, time.perf_counter()

        (text, finish, usage, first, end), start = self._call("POST", "chat/completions", body, consume)
        if usage is None:
            raise HttpBackendError(f"model {model!r}: the stream carried no usage (the server ignores "
                                   "stream_options.include_usage); use stream=False")
        prompt, completion = _usage(usage, model)
        ttft = (first if first is not None else end) - start
        return Generation(text, prompt, completion, ttft, end - start - ttft, _finish(finish))

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/models`` entries."""
        reply, _ = self._json("GET", "models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise HttpBackendError(f"GET {self.base_url}/models: no 'data' list in the reply")
        return [m for m in data if isinstance(m, dict)]

    def info(self, model: str) -> BackendInfo:
        reply, headers = self._json("GET", "models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise HttpBackendError(f"GET {self.base_url}/models: no 'data' list in the reply")
        entries = {str(m.get("id")): m for m in data if isinstance(m, dict)}
        if model not in entries:
            raise ConfigError(f"server {self.base_url} does not serve model {model!r} "
                              f"(it serves: {', '.join(sorted(entries)) or 'none'})")
        entry = entries[model]
        return BackendInfo(backend=self.name, version=str(headers.get("Server") or entry.get("owned_by") or ""),
                           provider=self.base_url, device=self.device or "unknown (remote server)", model=model,
                           quantization=self.quantization,
                           extra={"timing": TIMING_STREAM if self.stream else TIMING_TOTAL, "model_entry": entry})


# ----- helpers --------------------------------------------------------------------------------------
def _usage(reply: Any, model: str) -> tuple[int, int]:
    usage = reply.get("usage") if isinstance(reply, dict) else None
    try:
        return int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        raise HttpBackendError(f"model {model!r}: the reply has no usage token counts") from None


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return str(exc.reason or "")
    try:
        body = json.loads(raw)
        err = body.get("error", body) if isinstance(body, dict) else body
        message = err.get("message", err) if isinstance(err, dict) else err
        return " ".join(str(message).split())[:200]
    except json.JSONDecodeError:
        return " ".join(raw.split())[:200]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _sse_events(response) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent-event stream, until ``[DONE]``."""
    for raw in response:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            raise HttpBackendError(f"malformed stream event: {payload[:80]!r}") from None
        if isinstance(event, dict):
            if "error" in event:
                raise HttpBackendError(f"server error in stream: {str(event['error'])[:160]}")
            yield event
