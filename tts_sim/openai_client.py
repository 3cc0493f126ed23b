"""The one OpenAI-compatible HTTP client (vLLM, llama.cpp server, Ollama, hosted APIs): used by the
``openai`` backend and by the chat agent. Standard library only (``urllib``).

Base URL: one convention, the API root ``.../v1``. ``http://host:port`` becomes ``http://host:port/v1``;
a URL with a path keeps it; a trailing ``/chat/completions`` is dropped; so the three spellings people
paste all name the same endpoint.

Retries: connection errors, timeouts, HTTP 429 and 5xx are retried up to ``retries`` times with
exponential backoff (``backoff_s * 2**attempt``, capped at ``max_backoff_s``; a ``Retry-After`` header
in seconds wins when present); other HTTP errors fail at once with the server's message.

Timing: ``Completion.total_s`` is the whole request of the attempt that succeeded. With streaming,
``first_token_s`` is the time to the first content token (includes queueing and the network round
trip) and ``token_times_s`` the arrival time of every content chunk, both from the request's start.
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.jsonio import loads

CHAT_PATH = "chat/completions"
_RETRY_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException)


class EndpointError(TtsSimError):
    """The server refused a request (``status``) or stayed unreachable after retries (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MalformedReply(TtsSimError):
    """The server answered, but not with what the OpenAI API specifies (not JSON, no choices, bad stream)."""


def normalise_base_url(url: str) -> str:
    """The API root: ``http://h:1`` -> ``http://h:1/v1``; ``http://h:1/v1/chat/completions`` -> ``http://h:1/v1``;
    any other path is kept (trailing slash removed)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"base URL must look like http://host:port/v1, got {url!r}")
    path = parsed.path.rstrip("/")
    if path.endswith("/" + CHAT_PATH) or path == "/" + CHAT_PATH:
        path = path[: -len(CHAT_PATH) - 1]
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path or "/v1", "", ""))


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call: the API root, key, timeout and retry policy (``base_url`` is normalised)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 300.0
    retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout_s!r}")
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries!r}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ConfigError(f"backoff must be >= 0, got {self.backoff_s!r} (max {self.max_backoff_s!r})")
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``attempt + 1``."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt if retry_after is None else retry_after)


@dataclass(frozen=True)
class Completion:
    """One chat completion: text, usage (None when the server sent none) and timings in seconds."""

    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_s: float
    first_token_s: float | None = None  # streaming only
    token_times_s: tuple[float, ...] = ()  # streaming only: arrival of each content chunk
    #: what the server says it spent, where it says it (llama.cpp's ``timings``: ``prompt_n``,
    #: ``prompt_ms``, ``predicted_n``, ``predicted_ms``, ...); empty otherwise
    server_timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def has_usage(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None


class OpenAIClient:
    """Calls one OpenAI-compatible server; thread-safe (a batch may share it). ``retried`` counts retries."""

    def __init__(self, settings: ClientSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.retried = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def url(self, path: str) -> str:
        return f"{self.settings.base_url}/{path}"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def call(self, method: str, path: str, body: dict[str, Any] | None,
             consume: Callable[[Any], Any]) -> tuple[Any, float]:
        """``consume(response)`` of one request, retried as a whole; returns it and the start time
        (``perf_counter``) of the attempt that succeeded."""
        url, s = self.url(path), self.settings
        data = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=self._headers(), method=method)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
                    return consume(response), started
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if not (exc.code == 429 or exc.code >= 500) or attempt >= s.retries:
                    raise EndpointError(f"{method} {url}: HTTP {exc.code} {detail}".rstrip(), exc.code) from None
                wait = _retry_after(exc.headers.get("Retry-After"))
            except _RETRY_ERRORS as exc:
                if attempt >= s.retries:
                    reason = getattr(exc, "reason", None) or exc
                    raise EndpointError(f"{method} {url}: unreachable after {attempt + 1} attempt(s) "
                                        f"({reason})") from None
                wait = None
            delay = s.delay(attempt, wait)
            attempt += 1
            with self._lock:
                self.retried += 1
            self.sleep(delay)

    def get_json(self, path: str) -> tuple[Any, Any]:
        """The decoded JSON reply of ``GET {base_url}/{path}`` and its headers."""
        (raw, headers), _ = self.call("GET", path, None, lambda r: (r.read(), r.headers))
        return loads(raw, f"GET {self.url(path)}: the reply", MalformedReply), headers

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/models`` entries."""
        reply, _ = self.get_json("models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise MalformedReply(f"GET {self.url('models')}: no 'data' list in the reply")
        return [m for m in data if isinstance(m, dict)]

    def chat(self, body: dict[str, Any]) -> Completion:
        """One chat completion of ``body`` (the OpenAI request JSON); streamed when ``body["stream"]``
        (usage is then asked for with ``stream_options.include_usage``)."""
        if body.get("stream"):
            return self._chat_stream({**body, "stream_options": {"include_usage": True}})
        (raw, end), start = self.call("POST", CHAT_PATH, body, lambda r: (r.read(), time.perf_counter()))
        reply = loads(raw, "the chat completion", MalformedReply)
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedReply(f"malformed chat completion: {str(reply)[:120]}") from None
        if not isinstance(text, str):
            raise MalformedReply("the chat completion's content is not text")
        prompt, completion = _usage(reply)
        return Completion(text, str(finish), prompt, completion, end - start, server_timings=_timings(reply))

    def _chat_stream(self, body: dict[str, Any]) -> Completion:
        def consume(response: Any) -> tuple[str, str, dict[str, Any] | None, list[float], float, dict[str, float]]:
            times: list[float] = []
            parts: list[str] = []
            finish, usage = "stop", None
            timings: dict[str, float] = {}
            for event in _sse_events(response):
                if event.get("usage"):
                    usage = event
                timings = _timings(event) or timings
                for choice in event.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        times.append(time.perf_counter())
                        parts.append(content)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            return "".join(parts), finish, usage, times, time.perf_counter(), timings

        (text, finish, usage, times, end, timings), start = self.call("POST", CHAT_PATH, body, consume)
        prompt, completion = _usage(usage)
        return Completion(text, str(finish), prompt, completion, end - start,
                          first_token_s=(times[0] if times else end) - start,
                          token_times_s=tuple(t - start for t in times), server_timings=timings)


# ----- helpers --------------------------------------------------------------------------------------
def _usage(reply: Any) -> tuple[int | None, int | None]:
    usage = reply.get("usage") if isinstance(reply, dict) else None
    try:
        return int(usage["prompt_tokens"]), int(usage["completion_tokens"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None, None


def _timings(reply: Any) -> dict[str, float]:
    """The numeric entries of a reply's ``timings`` object (llama.cpp's server sends one), else {}."""
    timings = reply.get("timings") if isinstance(reply, dict) else None
    if not isinstance(timings, dict):
        return {}
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return str(exc.reason or "")
    try:
        body = loads(raw, "the error body")
    except TtsSimError:
        return " ".join(raw.split())[:200]
    err = body.get("error", body) if isinstance(body, dict) else body
    message = err.get("message", err) if isinstance(err, dict) else err
    return " ".join(str(message).split())[:200]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _sse_events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent-event stream, until ``[DONE]``."""
    for raw in response:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        event = loads(payload, "a stream event", MalformedReply)
        if isinstance(event, dict):
            if "error" in event:
                raise MalformedReply(f"server error in stream: {str(event['error'])[:160]}")
            yield event


__all__ = ["ClientSettings", "Completion", "EndpointError", "MalformedReply", "OpenAIClient", "normalise_base_url"]
