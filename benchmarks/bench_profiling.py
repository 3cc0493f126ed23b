"""How fast does ``tts-sim profile`` collect answer banks and fusion records on the real models?

Runs the profile's two call phases as ``run_profile`` does (``collect_answer_banks``, then
``fusion_from_banks``: small graphs, level-1 calls then level-2 calls, every call of a level batched
across questions) on a small sample of a task with the real models (default: SmolLM2-135M and
Gemma-3-270M on the onnxruntime-genai int4 engine, 2 threads, batches of 16), times every ``generate``
call per model and phase, and prints calls/s and generated tokens/s per model and phase plus the
extrapolated wall time of a full profile (``--full-questions`` x ``--full-samples`` per model and
``--full-fusion`` fusion records; no latency tables). Model loading and one warm-up call per model are
timed separately and left out of the rates.

    nice -n 15 python benchmarks/bench_profiling.py --out bench_profiling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tts_sim.core.backend import Backend, BackendInfo, Generation, GenerationRequest


@dataclass
class Tally:
    calls: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def row(self) -> dict[str, float]:
        s = max(self.seconds, 1e-9)
        return {"calls": self.calls, "batches": self.batches, "seconds": round(self.seconds, 2),
                "calls_per_s": self.calls / s, "generated_tokens_per_s": self.completion_tokens / s,
                "mean_prompt_tokens": self.prompt_tokens / max(self.calls, 1),
                "mean_completion_tokens": self.completion_tokens / max(self.calls, 1)}


@dataclass
class TimedBackend:
    """Passes calls on to ``inner`` and tallies them per (phase, model)."""

    inner: Backend
    phase: str = "warmup"
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    name: str = "timed"

    def generate(self, model: str, requests: Sequence[GenerationRequest]) -> list[Generation]:
        t0 = time.perf_counter()
        gens = self.inner.generate(model, requests)
        t = self.tallies.setdefault((self.phase, model), Tally())
        t.seconds += time.perf_counter() - t0
        t.calls += len(gens)
        t.batches += 1
        t.prompt_tokens += sum(g.prompt_tokens for g in gens)
        t.completion_tokens += sum(g.completion_tokens for g in gens)
        return gens

    def info(self, model: str) -> BackendInfo:
        return self.inner.info(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="add")
    ap.add_argument("--models", default="smollm2-135m,gemma-3-270m")
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--fusion-records", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=256, help="as tts-sim profile's default")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--engine", default="genai", choices=("onnx", "genai"))
    ap.add_argument("--quantization", default="int4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=16, help="backend max_batch and requests per generate call")
    ap.add_argument("--full-questions", type=int, default=200)
    ap.add_argument("--full-samples", type=int, default=16)
    ap.add_argument("--full-fusion", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    from tts_sim.backends.onnxruntime import OnnxRuntimeBackend
    from tts_sim.cli.profile import call_bar
    from tts_sim.real.profiling import collect_answer_banks, fusion_from_banks
    from tts_sim.tasks import load_questions
    from tts_sim.tasks.graders import get_grader

    models = {m: m for m in args.models.split(",")}
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    inner = OnnxRuntimeBackend(quantization=args.quantization, threads=args.threads, max_batch=args.max_batch,
                               engine=args.engine, progress=lambda _m: None)
    backend = TimedBackend(inner)
    warm = GenerationRequest(({"role": "user", "content": "What is 2 + 2?"},), max_new_tokens=8)
    t0 = time.perf_counter()
    for m in models:
        backend.generate(m, [warm])
    setup_s = time.perf_counter() - t0
    info = {m: backend.info(m) for m in models}

    grader = get_grader(args.task)
    questions = load_questions(args.task, None, args.questions)
    bar = call_bar(len(models) * len(questions) * args.samples + args.fusion_records, 0)
    backend.phase = "bank"
    t0 = time.perf_counter()
    banks = collect_answer_banks(backend, models, questions, grader, args.samples, max_new_tokens=args.max_new_tokens,
                                 temperature=args.temperature, seed=args.seed, batch=args.max_batch, bar=bar)
    bank_s = time.perf_counter() - t0
    backend.phase = "fusion"
    t0 = time.perf_counter()
    calls = fusion_from_banks(backend, banks, models, args.fusion_records, max_new_tokens=args.max_new_tokens,
                              temperature=args.temperature, seed=args.seed + 1, batch=args.max_batch, bar=bar)
    fusion_s = time.perf_counter() - t0
    bar.close()

    rows = {f"{phase}/{model}": t.row() for (phase, model), t in sorted(backend.tallies.items()) if phase != "warmup"}
    print(f"{'phase/model':<22} {'calls':>6} {'s':>7} {'calls/s':>8} {'gen tok/s':>9} {'prompt':>7} {'reply':>6}")
    for key, r in rows.items():
        print(f"{key:<22} {r['calls']:>6} {r['seconds']:>7.1f} {r['calls_per_s']:>8.3f} "
              f"{r['generated_tokens_per_s']:>9.1f} {r['mean_prompt_tokens']:>7.1f} "
              f"{r['mean_completion_tokens']:>6.1f}")
    # a full profile: every model's bank calls at its measured bank rate; the fusion calls at the measured
    # fusion rate (the models' shares of fusion calls are drawn at random, as here)
    n_fusion = sum(t.calls for (p, _), t in backend.tallies.items() if p == "fusion")
    full_bank_s = sum(args.full_questions * args.full_samples / rows[f"bank/{m}"]["calls_per_s"] for m in models)
    full_fusion_s = args.full_fusion * fusion_s / max(n_fusion, 1)
    full_min = (full_bank_s + full_fusion_s) / 60
    print(f"sample: banks {bank_s:.0f} s ({len(banks.samples)} calls), fusion {fusion_s:.0f} s ({len(calls)} calls, "
          f"levels {sorted({c.level for c in calls})}); model load + warm-up {setup_s:.0f} s")
    print(f"extrapolated full profile ({args.full_questions} questions x {args.full_samples} samples x {len(models)} "
          f"models + {args.full_fusion} fusion records): banks {full_bank_s / 60:.1f} min + fusion "
          f"{full_fusion_s / 60:.1f} min = {full_min:.1f} min (target < 60)")
    load_end = os.getloadavg()
    print(f"load average {load_start[0]:.2f} -> {load_end[0]:.2f}; bank accuracy "
          + ", ".join(f"{m} {banks.accuracy(m):.3f}" for m in models))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "bank_s": bank_s, "fusion_s": fusion_s, "setup_s": setup_s,
                       "full_profile_min": full_min, "full_bank_min": full_bank_s / 60,
                       "full_fusion_min": full_fusion_s / 60, "load_avg_start": load_start, "load_avg_end": load_end,
                       "wall_s": time.perf_counter() - t_start, "cpu": platform.processor() or platform.machine(),
                       "bank_accuracy": {m: banks.accuracy(m) for m in models},
                       "backend": {m: [i.backend, i.version, i.provider, i.quantization] for m, i in info.items()}},
                      f, indent=1)


if __name__ == "__main__":
    main()
