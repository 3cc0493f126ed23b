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

Every cell is measured in ``repeats`` rounds, interleaved over the cells and kept (``HttpRounds``); a
cell's decode row is the mean of its rounds (``median`` on request, for checks). Prompt lengths are the
server's own ``usage.prompt_tokens`` (chat template included). The result is a ``LatencyTable`` that
``TablePredictor`` reads. One stream chunk must carry one token (llama.cpp's
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


def concurrent_chats(client: OpenAIClient, bodies: Sequence[dict[str, Any]], stagger_s: float = 0.0
                     ) -> list[TimedStream]:
    """Send ``bodies`` at the same moment (one thread each; body k ``k * stagger_s`` later) and return the
    streams in order."""
    results: list[TimedStream | BaseException | None] = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def one(k: int) -> None:
        try:
            barrier.wait()
            if stagger_s > 0:
                time.sleep(k * stagger_s)
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


DECODE_STATISTICS = ("mean", "median")


@dataclass(frozen=True)
class HttpRounds:
    """What the rounds measured: prefill rows (one per round and cell) and, per decode cell (prompt
    words, b), each round's (mean context, mean step)."""

    prefill: tuple[tuple[int, int, float], ...]
    decode: Mapping[tuple[int, int], tuple[tuple[float, float], ...]]

    def table(self, name: str, device: str = "cpu", backend: str = "openai-http",
              statistic: str = "mean") -> LatencyTable:
        """The ``LatencyTable``: every prefill row, and one decode row per cell whose step is the
        ``statistic`` (``mean``, the default: what the simulator adds up; or ``median``) of its rounds."""
        if statistic not in DECODE_STATISTICS:
            raise ConfigError(f"decode statistic must be one of {', '.join(DECODE_STATISTICS)}, got {statistic!r}")
        combine = statistics.fmean if statistic == "mean" else statistics.median
        # one decode row per cell: its rounds' contexts differ by a token or two, and separate rows that
        # close together would make the interpolation jump between rounds
        decode = [(max(1, round(statistics.fmean(c for c, _ in v))), b, float(combine(t for _, t in v)))
                  for (_, b), v in self.decode.items()]
        if not decode:
            raise MalformedReply("no decode step could be timed: the streams never overlapped")
        return LatencyTable(name, device, backend, prefill=list(self.prefill), decode=decode)

    def to_dict(self) -> dict[str, Any]:
        return {"prefill": [list(r) for r in self.prefill],
                "decode": [{"prompt_words": w, "batch": b, "rounds": [list(x) for x in v]}
                           for (w, b), v in self.decode.items()]}


def measure_http_rounds(client: OpenAIClient, model: str, *, prompt_words: Sequence[int] = (16, 128, 384),
                        batches: Sequence[int] = (1, 2, 3, 4), decode_tokens: int = 32,
                        decode_prompt_words: Sequence[int] = (16, 256), repeats: int = 2,
                        decode_stagger_s: float = 0.0, extra: Mapping[str, Any] | None = None,
                        progress: Any = None) -> HttpRounds:
    """Prefill and decode rounds of ``model`` (the server's model id) measured through ``client``.

    Prefill: ``repeats`` rounds of ``b`` concurrent one-token requests per prompt length and ``b``.
    Decode: ``repeats`` rounds of ``b`` concurrent ``decode_tokens``-token streams per prompt length and ``b``,
    stream k sent ``k * decode_stagger_s`` after the first (default: all at once), as requests of open-loop
    traffic arrive. (llama-server with one KV buffer per slot, its default when ``-np`` is given, decodes a
    batch of 2-3 short sequences at twice the batch-1 step in most rounds; with ``--kv-unified`` it does not:
    ``benchmarks/http_decode_rows.py``, docs/serving/llama_server.md.)
    Keep ``(b - 1) * decode_stagger_s`` well below one stream's ``decode_tokens`` steps, or the streams
    never all decode together and the cell gets no round.
    Rounds are interleaved: round r measures every cell once before round r + 1 starts, so a slow spell
    of the machine or the engine spreads over the cells instead of landing on one cell's every round.
    """
    if not batches or min(batches) < 1 or decode_tokens < 4 or repeats < 1 or not prompt_words \
            or not 0 <= decode_stagger_s < 10:
        raise ConfigError("HTTP latency profiling needs batches >= 1, decode_tokens >= 4, repeats >= 1, prompts "
                          f"and a decode stagger in [0, 10) s, got {decode_stagger_s!r}")
    extra = dict(extra or {})
    tag = 0
    prefill: list[tuple[int, int, float]] = []
    steps: dict[tuple[int, int], list[tuple[float, float]]] = {}  # (words, b) -> (context, step) per round

    def bodies(words: int, b: int, max_tokens: int) -> list[dict[str, Any]]:
        nonlocal tag
        tag += b
        return [stream_body(model, filler_prompt(words, tag - k), max_tokens, extra) for k in range(b)]

    for r in range(repeats):
        for words in prompt_words:
            for b in batches:
                streams = concurrent_chats(client, bodies(words, b, 1))
                ttft = max(s.completion.first_token_s or s.completion.total_s for s in streams)
                prefill.append((_prompt_tokens(streams), b, ttft))
        for words in decode_prompt_words:
            for b in batches:
                step = decode_step(concurrent_chats(client, bodies(words, b, decode_tokens), decode_stagger_s))
                if step is not None:
                    steps.setdefault((words, b), []).append(step[:2])
        if progress:
            progress(f"round {r + 1} of {repeats}: done")
    return HttpRounds(tuple(prefill), {k: tuple(v) for k, v in steps.items()})


def measure_http_latency_table(client: OpenAIClient, model: str, *, name: str, device: str = "cpu",
                               backend: str = "openai-http", **options: Any) -> LatencyTable:
    """``measure_http_rounds(client, model, **options)`` as a ``LatencyTable`` labelled ``name`` (the
    catalogue's model name) on ``device``: a prefill row per round (the predictor averages rows of one
    cell), one decode row per cell, the mean over its rounds."""
    return measure_http_rounds(client, model, **options).table(name, device, backend)


__all__ = ["DECODE_STATISTICS", "HttpRounds", "TimedStream", "concurrent_chats", "decode_step", "filler_prompt",
           "measure_http_latency_table", "measure_http_rounds", "stream_body"]
