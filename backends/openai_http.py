"""The ``Backend`` protocol over an OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama, ...).

HTTP, retries (exponential backoff, ``Retry-After``), base-URL rules, usage and streaming timings are
the shared client's (``tts_sim.openai_client``). A batch of requests is sent as concurrent
``/chat/completions`` calls (the server batches them). Token counts come from the response's
``usage``; a response without it is refused, since guessed counts would silently skew profiles and FLOPs.

Timing: without streaming the server's prefill and decode cannot be told apart, so the whole request
time is reported as ``decode_s`` and ``prefill_s`` is 0 (``info().extra["timing"]`` says so). With
``stream=True``, ``prefill_s`` is the time to the first content token (which includes queueing and
the network round trip) and ``decode_s`` the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tts_sim.core.backend import BackendInfo, Generation, GenerationRequest, stop_at
from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.openai_client import (
    ClientSettings,
    Completion,
    EndpointError,
    MalformedReply,
    OpenAIClient,
    normalise_base_url,
)

TIMING_TOTAL = "no streaming: prefill not separable, the whole request time is reported as decode_s"
TIMING_STREAM = "streaming: prefill_s = time to first token (includes network and queueing), decode_s = the rest"


class HttpBackendError(TtsSimError):
    """The server refused a request, sent a malformed reply, or stayed unreachable after retries."""


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
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency!r}")
        self.client = OpenAIClient(ClientSettings(base_url, api_key, timeout_s, retries, backoff_s, max_backoff_s),
                                   sleep=sleep)
        self.base_url = self.client.base_url
        self.stream, self.concurrency = stream, concurrency
        self.device, self.quantization = device, quantization
        self.extra_body = dict(extra_body or {})

    @property
    def retried(self) -> int:
        """Retries done so far (for reports and tests)."""
        return self.client.retried

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
        if request.stop:  # the server stops generating there (so tokens and time are what was kept); it
            body["stop"] = list(request.stop)  # matches literally, even in leading whitespace (see stop_at)
        if request.seed is not None:
            body["seed"] = request.seed
        if self.stream:
            body["stream"] = True
        return body

    def _complete(self, model: str, request: GenerationRequest) -> Generation:
        try:
            reply = self.client.chat(self._body(model, request))
        except EndpointError as exc:
            raise HttpBackendError(str(exc)) from None
        except MalformedReply as exc:
            raise HttpBackendError(f"model {model!r}: {exc}") from None
        prompt, completion = _usage(reply, model, self.stream)
        finish = "length" if reply.finish_reason == "length" else "stop"
        text, cut = reply.text, stop_at(reply.text, request.stop) if request.stop else None
        if cut is not None:
            text, finish = text[:cut], "stop"
        if not self.stream:
            return Generation(text, prompt, completion, 0.0, reply.total_s, finish)
        ttft = reply.first_token_s if reply.first_token_s is not None else reply.total_s
        return Generation(text, prompt, completion, ttft, reply.total_s - ttft, finish)

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/models`` entries."""
        try:
            return self.client.models()
        except (EndpointError, MalformedReply) as exc:
            raise HttpBackendError(str(exc)) from None

    def info(self, model: str) -> BackendInfo:
        try:
            reply, headers = self.client.get_json("models")
        except (EndpointError, MalformedReply) as exc:
            raise HttpBackendError(str(exc)) from None
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


def _usage(reply: Completion, model: str, stream: bool) -> tuple[int, int]:
    if reply.prompt_tokens is None or reply.completion_tokens is None:
        if stream:
            raise HttpBackendError(f"model {model!r}: the stream carried no usage (the server ignores "
                                   "stream_options.include_usage); use stream=False")
        raise HttpBackendError(f"model {model!r}: the reply has no usage token counts")
    return reply.prompt_tokens, reply.completion_tokens


__all__ = ["TIMING_STREAM", "TIMING_TOTAL", "HttpBackendError", "OpenAIHttpBackend", "normalise_base_url"]
