"""Per-step latency tables of an OpenAI-compatible server, derived from streamed token timings.

A server seen only through HTTP does not report its forward passes, but a stream does: each content
chunk arrives when a decode step ends. So:

- **decode**: ``b`` streams run at once; while all ``b`` are decoding (between the last first token and
  the first last token) every gap between two chunks of one stream is one decode step of a batch of
  ``b``. The row is (mean context in that window, ``b``, mean gap). The mean, not the median: the
  simulator adds step times up, so the table must hold the average step, stalls (another process
  taking the core, a burst of chunks) included; a median drops them and underestimates every reply.
- **prefill**: ``b`` requests of ``n`` prompt tokens sent at once with one reply token; the row is
  (``n``, ``b``, the longest time to first token), i.e. the batch's prefill including the HTTP round trip.

Prompt lengths are the server's own ``usage.prompt_tokens`` (chat template included). The result is a
``LatencyTable`` that ``TablePredictor`` reads. One stream chunk must carry one token (llama.cpp's
server and vLLM stream that way); ``ignore_eos`` and other server options go in ``extra``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError
from tts_sim.openai_client import Completion, MalformedReply, OpenAIClient

_WORDS = ("apple river stone cloud seven garden window yellow music paper orange number silver forest "
          "bridge candle winter planet rabbit copper").split()


def filler_prompt(words: int, tag: int) -> str:
    """A prompt of ``words`` words, distinct per ``tag`` (so no server cache can reuse another prompt)."""
    return f"Request {tag}. Repeat: " + " ".join(_WORDS[(i * 7 + tag) % len(_WORDS)] for i in range(words))


@dataclass(frozen=True)
class TimedStream:
    """One streamed completion with its start on the ``perf_counter`` clock."""

    started: float
    completion: Completion

    @property
    def token_times(self) -> list[float]:
        """Absolute arrival time of every content chunk."""
        return [self.started + t for t in self.completion.token_times_s]


def concurrent_chats(client: OpenAIClient, bodies: Sequence[dict[str, Any]]) -> list[TimedStream]:
    """Send ``bodies`` at the same moment (one thread each) and return the streams in order."""
    results: list[TimedStream | BaseException | None] = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def one(k: int) -> None:
        try:
            barrier.wait()
            started = time.perf_counter()
            results[k] = TimedStream(started, client.chat(bodies[k]))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, TimedStream)]


def decode_step(streams: Sequence[TimedStream]) -> tuple[float, float, int] | None:
    """(mean context tokens, mean step seconds, gaps used) while all ``streams`` decode together;
    None when they never overlapped by two chunks."""
    times = [s.token_times for s in streams]
    if not times or any(len(t) < 2 for t in times):
        return None
    lo, hi = max(t[0] for t in times), min(t[-1] for t in times)
    gaps: list[float] = []
    contexts: list[float] = []
    for s, t in zip(streams, times, strict=True):
        prompt = s.completion.prompt_tokens or 0
        for i in range(1, len(t)):
            if t[i - 1] >= lo and t[i] <= hi:
                gaps.append(t[i] - t[i - 1])
                contexts.append(prompt + i)
    if not gaps:
        return None
    return statistics.fmean(contexts), statistics.fmean(gaps), len(gaps)


def stream_body(model: str, text: str, max_tokens: int, extra: Mapping[str, Any]) -> dict[str, Any]:
    """A streamed greedy chat request of ``text`` to ``model`` for ``max_tokens`` tokens, plus ``extra``."""
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0.0, "stream": True, **extra}


def _prompt_tokens(streams: Sequence[TimedStream]) -> int:
    counts = {s.completion.prompt_tokens for s in streams}
    if None in counts:
        raise MalformedReply("the server's stream carries no usage.prompt_tokens: prompt lengths are unknown")
    return round(statistics.fmean(c for c in counts if c is not None))


def measure_http_latency_table(client: OpenAIClient, model: str, *, name: str, device: str = "cpu",
                               backend: str = "openai-http", prompt_words: Sequence[int] = (16, 128, 384),
                               batches: Sequence[int] = (1, 2, 3, 4), decode_tokens: int = 32,
                               decode_prompt_words: Sequence[int] = (16, 256), repeats: int = 2,
                               extra: Mapping[str, Any] | None = None, progress: Any = None) -> LatencyTable:
    """Prefill and decode rows of ``model`` (the server's model id) measured through ``client``; the table
    is labelled ``name`` (the catalogue's model name) on ``device``.

    Prefill: ``repeats`` rounds of ``b`` concurrent one-token requests per prompt length and ``b``.
    Decode: ``repeats`` rounds of ``b`` concurrent ``decode_tokens``-token streams per prompt length and ``b``.
    """
    if not batches or min(batches) < 1 or decode_tokens < 4 or repeats < 1 or not prompt_words:
        raise ConfigError("HTTP latency profiling needs batches >= 1, decode_tokens >= 4, repeats >= 1 and prompts")
    extra = dict(extra or {})
    tag = 0
    prefill: list[tuple[int, int, float]] = []
    decode: list[tuple[int, int, float]] = []
    for words in prompt_words:
        for b in batches:
            for _ in range(repeats):
                bodies = []
                for _ in range(b):
                    tag += 1
                    bodies.append(stream_body(model, filler_prompt(words, tag), 1, extra))
                streams = concurrent_chats(client, bodies)
                ttft = max(s.completion.first_token_s or s.completion.total_s for s in streams)
                prefill.append((_prompt_tokens(streams), b, ttft))
        if progress:
            progress(f"prefill {words} words: done")
    for words in decode_prompt_words:
        for b in batches:
            for _ in range(repeats):
                bodies = []
                for _ in range(b):
                    tag += 1
                    bodies.append(stream_body(model, filler_prompt(words, tag), decode_tokens, extra))
                step = decode_step(concurrent_chats(client, bodies))
                if step is not None:
                    decode.append((max(1, round(step[0])), b, step[1]))
        if progress:
            progress(f"decode {words} words: done")
    if not decode:
        raise MalformedReply("no decode step could be timed: the streams never overlapped")
    return LatencyTable(name, device, backend, prefill=prefill, decode=decode)


__all__ = ["TimedStream", "concurrent_chats", "decode_step", "filler_prompt", "measure_http_latency_table",
           "stream_body"]
