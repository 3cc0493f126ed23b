"""What a call costs more right after another model's call than right after its own, on a shared CPU.

Two ways, both on onnxruntime-genai int8, 2 threads (the measured profiles' engine):
- ``--method profiler``: ``tts_sim.real.profiling.measure_switch_costs``, as ``tts-sim profile`` stores it
  in each latency table's ``switch_s`` (12 rounds: each model called twice in a row, per round);
- ``--method blocks``: ``--questions`` greedy 8-token calls per model one model after the other, then the
  same calls alternating between the models, ``--rounds`` times (how it was first found, stop 16:
  SmolLM2 +20.4 / +21.6 ms, Gemma +16.6 / +17.1 ms on mul-words questions 350-369).

    python benchmarks/switch_cost.py --method blocks --questions 20 --rounds 2
    python benchmarks/switch_cost.py --method profiler
"""

from __future__ import annotations

import argparse
import statistics
import time

from tts_sim.backends import BACKENDS
from tts_sim.core.backend import GenerationRequest
from tts_sim.real.profiling import measure_switch_costs
from tts_sim.real.profiling.http_latency import filler_prompt
from tts_sim.tasks.questions import load_questions

MODELS = ("smollm2-135m", "gemma-3-270m")


def blocks(backend, questions: int, rounds: int) -> None:
    qs = load_questions("mul-words")[350:350 + questions]

    def call(model: str, i: int) -> float:
        request = GenerationRequest(({"role": "user", "content": qs[i].prompt},), 8, 0.0, 1.0, (), i)
        t0 = time.perf_counter()
        backend.generate(model, [request])
        return time.perf_counter() - t0

    for m in MODELS:  # warm-up
        for i in range(min(3, len(qs))):
            call(m, i)
    for r in range(rounds):
        same: dict[str, list[float]] = {m: [] for m in MODELS}
        alternating: dict[str, list[float]] = {m: [] for m in MODELS}
        for m in MODELS:
            same[m] = [call(m, i) for i in range(len(qs))]
        for i in range(len(qs)):
            for m in MODELS:
                alternating[m].append(call(m, i))
        for m in MODELS:
            a, b = statistics.median(same[m]), statistics.median(alternating[m])
            print(f"round {r} {m}: after its own call {a * 1e3:.1f} ms, after the other model's {b * 1e3:.1f} ms "
                  f"({(b / a - 1) * 100:+.1f}%, {(b - a) * 1e3:+.1f} ms)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("blocks", "profiler"), default="blocks")
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    backend = BACKENDS.build("onnx", {"engine": "genai", "quantization": "int8", "threads": 2, "max_batch": 16})
    if args.method == "blocks":
        blocks(backend, args.questions, args.rounds)
    else:
        costs = measure_switch_costs(backend, {m: m for m in MODELS}, prompt=filler_prompt(24, 0), progress=print)
        print({m: round(c * 1e3, 1) for m, c in costs.items()}, "ms")


if __name__ == "__main__":
    main()
