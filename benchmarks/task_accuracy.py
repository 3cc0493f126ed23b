"""Single-call accuracy of the real models on a task, with a confidence interval, from a measured
profile's answer banks or from a fresh measurement through the same code path as ``tts-sim profile``.

    python benchmarks/task_accuracy.py --profile measured:add-words --profile measured:mul-words
    python benchmarks/task_accuracy.py --task add --questions 100 --samples 4 \
        --engine genai --quantization int8 --threads 2 --max-batch 16 --temperature 0.7 --top-p 0.9 \
        --max-new-tokens 16 --out /tmp/add_accuracy.json

Prints a Markdown table (accuracy, bootstrap 95% CI over questions, never / in-between / always
solved, majority-correct rate; cross-model correlation and wrong-answer agreement) and writes the
figures as JSON with ``--out``. ``tts_sim.real.profiling.bank_stats`` computes them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tts_sim.real.profiling.bank_stats import BankStats, bank_stats, markdown_table


def from_profile(spec: str) -> list[BankStats]:
    from tts_sim.sim.profiles import load_profile

    profile = load_profile(spec)
    return [bank_stats(task, tp.answer_banks) for task, tp in sorted(profile.tasks.items())]


def measure(args: argparse.Namespace) -> BankStats:
    from tts_sim.backends import BACKENDS
    from tts_sim.real.profiling.banks import banks_from_results, plan_bank_calls
    from tts_sim.real.profiling.journal import CallJournal, run_calls
    from tts_sim.tasks import load_questions
    from tts_sim.tasks.graders import get_grader

    backend = BACKENDS.build("onnx", {"engine": args.engine, "quantization": args.quantization,
                                      "threads": args.threads, "max_batch": args.max_batch})
    questions = load_questions(args.task, limit=args.offset + args.questions)[args.offset:]
    grader = get_grader(args.task)
    models = {m: m for m in args.models}
    plan = plan_bank_calls(models, questions, grader, args.samples, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    results = run_calls(backend, plan, CallJournal(None, {}), batch=args.max_batch)
    return bank_stats(args.task, banks_from_results(plan, results, questions, grader).counts())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="append", help="measured profile (file or measured:TASK); repeatable")
    ap.add_argument("--task", help="measure this task afresh instead")
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--engine", default="genai")
    ap.add_argument("--quantization", default="int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not args.profile and not args.task:
        ap.error("give --profile or --task")
    start, load = time.perf_counter(), os.getloadavg()
    stats = [s for p in args.profile or [] for s in from_profile(p)]
    if args.task:
        stats.append(measure(args))
    print(markdown_table(stats))
    if args.out:
        args.out.write_text(json.dumps({"command": "python benchmarks/task_accuracy.py " + " ".join(
            sys.argv[1:]), "load_avg_start": load, "load_avg_end": os.getloadavg(),
            "wall_s": round(time.perf_counter() - start, 1), "tasks": [asdict(s) for s in stats]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
