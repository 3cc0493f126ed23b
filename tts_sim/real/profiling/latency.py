"""Latency tables: measured prefill and decode-step times of one model on one device and backend.

Rows follow ``tts_sim.core.profile.LatencyTable``: prefill ``(prompt tokens, batch, seconds for the whole
batch)`` and decode ``(context tokens, batch, seconds per step)``. Timing needs a backend that can
run single forward passes (a ``StepTimer``; ``OnnxEngine`` is one); an HTTP server cannot separate
them. Tables are keyed by the ``DEVICES`` name the simulator matches on (``device_key``): ``cpu``
for a CPU run (this machine's entry), the catalogue GPU whose name the real GPU's name contains.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tts_sim.core.backend import BackendInfo, GenerationRequest
from tts_sim.core.devices import DEVICES
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError

DEFAULT_PROMPT_LENGTHS = (16, 32, 64, 128, 256, 512, 1024)
DEFAULT_BATCH_SIZES = (1, 2, 4)
DEFAULT_CONTEXTS = (32, 128, 512, 1024)
DEFAULT_PASSES = 2  # timings of the whole grid per row: the fastest counts (see measure_latency_table)


@runtime_checkable
class StepTimer(Protocol):
    """Times single forward passes of one model."""

    def time_prefill(self, prompt_len: int, batch: int = 1, repeats: int = 3) -> float:
        """Median seconds of one prefill of ``batch`` prompts of ``prompt_len`` tokens."""
        ...

    def time_decode(self, context: int, batch: int = 1, steps: int = 8, temperature: float = 0.0,
                    top_p: float = 1.0) -> float:
        """Median seconds of one decode step with ``context`` cached positions per sequence, the next
        token chosen as generation with ``temperature`` and ``top_p`` chooses it."""
        ...


def can_time_steps(backend: Any) -> bool:
    """Whether ``backend`` exposes per-model engines that time single prefill/decode steps."""
    return callable(getattr(backend, "engine", None))


def step_timer(backend: Any, model: str) -> StepTimer:
    """The backend's timer for ``model`` (its engine), or ``ConfigError`` if it cannot time steps."""
    engine = getattr(backend, "engine", None)
    timer = engine(model) if callable(engine) else None
    if not isinstance(timer, StepTimer):
        raise ConfigError(f"backend {getattr(backend, 'name', type(backend).__name__)!r} cannot time single "
                          "prefill/decode steps; measure latency tables with the onnx backend (or skip them)")
    return timer


def device_key(info: BackendInfo) -> str:
    """The ``DEVICES`` name of the device in ``info``: ``cpu`` for CPU providers, else the catalogue
    GPU whose name (each ``-``-separated part as a whole word) occurs in the real GPU's name."""
    if "cpu" in info.provider.lower():
        return DEVICES.get("cpu").name
    real = info.device.upper()
    matches = []
    for key in DEVICES.names():
        spec = DEVICES.get(key)
        parts = [p for p in spec.name.upper().split("-") if p]
        if spec.kind == "gpu" and parts and all(re.search(rf"(?<![A-Z0-9]){re.escape(p)}(?![A-Z0-9])", real)
                                               for p in parts):
            matches.append(spec.name)
    if not matches:
        raise ConfigError(f"device {info.device!r} is not in the device catalogue; pass its name explicitly "
                          f"(known: {', '.join(DEVICES.get(n).name for n in DEVICES.names())})")
    return max(matches, key=len)  # the most specific (A100-80GB over A100)


def _grid(values: Sequence[int], what: str) -> list[int]:
    out = sorted({int(v) for v in values})
    if not out or out[0] < 1:
        raise ConfigError(f"{what} must be positive integers, got {list(values)!r}")
    return out


def measure_latency_table(timer: StepTimer, model: str, *, device: str, backend: str, quantization: str = "",
                          provider: str = "", prompt_lengths: Sequence[int] = DEFAULT_PROMPT_LENGTHS,
                          batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
                          contexts: Sequence[int] = DEFAULT_CONTEXTS, repeats: int = 3, steps: int = 8,
                          max_batch_tokens: int | None = None, passes: int = DEFAULT_PASSES,
                          temperature: float = 0.0, top_p: float = 1.0,
                          progress: Callable[[str], None] | None = None) -> LatencyTable:
    """Time prefill for every (prompt length, batch) and decode steps for every (context, batch).

    The whole grid is timed ``passes`` times, one pass after the other, and each row keeps its fastest
    pass: on a shared machine another job only ever slows a row down, and a burst of it (seconds) spoils
    the ``repeats`` of one row at once, which their median cannot undo, but rarely the same row in two
    passes minutes apart. Decode steps choose tokens as the profile's calls do (``temperature``,
    ``top_p``): sampling costs milliseconds per sequence and step on a CPU. ``max_batch_tokens`` skips
    prefill rows whose batch holds more tokens (prompt length x batch), except each batch size's
    shortest prompt, so every batch size keeps at least one row."""
    lengths, batches, ctxs = _grid(prompt_lengths, "prompt lengths"), _grid(batch_sizes, "batch sizes"), \
        _grid(contexts, "contexts")
    if repeats < 1 or steps < 1 or passes < 1:
        raise ConfigError("repeats, steps and passes must be >= 1")
    prefill: dict[tuple[int, int], float] = {}
    decode: dict[tuple[int, int], float] = {}
    for k in range(passes):
        tag = f" (pass {k + 1}/{passes})" if passes > 1 else ""
        for b in batches:
            for n in lengths:
                if max_batch_tokens is not None and n * b > max_batch_tokens and n != lengths[0]:
                    continue
                seconds = float(timer.time_prefill(n, b, repeats))
                prefill[(n, b)] = min(seconds, prefill.get((n, b), math.inf))
                if progress is not None:
                    progress(f"{model}: prefill {n} tokens x {b}: {seconds * 1e3:.1f} ms{tag}")
            for c in ctxs:
                seconds = float(timer.time_decode(c, b, steps, temperature, top_p))
                decode[(c, b)] = min(seconds, decode.get((c, b), math.inf))
                if progress is not None:
                    progress(f"{model}: decode step at context {c} x {b}: {seconds * 1e3:.2f} ms{tag}")
    return LatencyTable(model=model, device=device, backend=backend, quantization=quantization, provider=provider,
                        prefill=[(n, b, t) for (n, b), t in prefill.items()],
                        decode=[(c, b, t) for (c, b), t in decode.items()])


SWITCH_ROUNDS = 12  # rounds of measure_switch_costs: each gives every model one call after another model's


def measure_switch_costs(backend: Any, models: Mapping[str, str], *, prompt: str, max_new_tokens: int = 8,
                         rounds: int = SWITCH_ROUNDS, progress: Callable[[str], None] | None = None
                         ) -> dict[str, float]:
    """Per model (name -> the backend's model): what one greedy call costs more right after another
    model's call than right after its own, in seconds (>= 0; the median of ``rounds`` of each).

    On a CPU shared by the models (measured here: SmolLM2-135M and Gemma-3-270M, onnxruntime-genai,
    2 threads) a call after the other model's takes 17-23 ms longer, 10-18% of a short call: what
    the first pass has to bring back into the caches. The simulator's static scheduler adds it to a
    batch whenever its device's previous batch was another model's. Each round calls every model
    twice in a row (the first call follows another model's, the second its own), so slow drift of
    the machine hits both alike."""
    if len(models) < 2:
        return {m: 0.0 for m in models}
    if rounds < 1 or max_new_tokens < 1:
        raise ConfigError("switch-cost rounds and tokens must be >= 1")
    request = GenerationRequest(({"role": "user", "content": prompt},), max_new_tokens, 0.0, 1.0, (), 0)

    def call(backend_model: str) -> float:
        t0 = time.perf_counter()
        backend.generate(backend_model, [request])
        return time.perf_counter() - t0

    for backend_model in models.values():  # warm every model up
        call(backend_model)
        call(backend_model)
    after_other: dict[str, list[float]] = {m: [] for m in models}
    after_own: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for model, backend_model in models.items():
            after_other[model].append(call(backend_model))
            after_own[model].append(call(backend_model))
    out = {m: max(0.0, statistics.median(after_other[m]) - statistics.median(after_own[m])) for m in models}
    if progress is not None:
        for m in models:
            progress(f"{m}: a call after another model's {statistics.median(after_other[m]) * 1e3:.1f} ms, after "
                     f"its own {statistics.median(after_own[m]) * 1e3:.1f} ms: switch cost {out[m] * 1e3:.1f} ms")
    return out
