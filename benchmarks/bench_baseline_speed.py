"""CPU time and held-out expected accuracy of searchers on the SimulatedEvaluator, per search.

    python benchmarks/bench_baseline_speed.py --searcher bo-gp bo-forest tpe --budgets 18 42 80 --seeds 6
    # before/after: give classes by MODULE:CLASS, e.g. the committed version of the skopt baseline
    git show HEAD:baselines/bo_skopt.py > /tmp/orig/bo_skopt_orig.py
    PYTHONPATH=/tmp/orig python benchmarks/bench_baseline_speed.py --searcher bo_skopt_orig:GPSearch bo-gp

Each search: 30 evaluations x 100 search questions, held-out = the next 64 questions (expected,
noise-free accuracy). CPU time (``time.process_time``) rather than wall time, because the machine
is shared; both cores' other load does not count.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.search import SearchSpace, make_searcher, run_search  # noqa: E402
from tts_sim.sim.evaluator import SimulatedEvaluator  # noqa: E402


def searcher(spec: str, options: dict):
    if ":" in spec:
        module, cls = spec.split(":")
        return getattr(importlib.import_module(module), cls)(**options)
    return make_searcher(spec, **options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--searcher", nargs="+", default=["bo-gp", "bo-forest", "tpe"])
    p.add_argument("--task", default="math")
    p.add_argument("--budgets", nargs="+", type=float, default=[18.0, 42.0, 80.0])
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--evals", type=int, default=30)
    p.add_argument("--options", default="{}", help="JSON options for every searcher")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    ev = SimulatedEvaluator(args.task)
    report = []
    for budget in args.budgets:
        space = SearchSpace(args.task, budget)
        for spec in args.searcher:
            cpu, accs, pens = [], [], []
            for seed in range(args.seeds):
                s = searcher(spec, json.loads(args.options))
                t0 = time.process_time()
                r = run_search(s, space, ev, args.evals, seed, search_questions=range(100),
                               heldout_questions=range(100, 164))
                cpu.append(time.process_time() - t0)
                accs.append(r.expected_accuracy)
                pens.append(r.cost.penalised)
            row = {"searcher": spec, "task": args.task, "budget": budget, "cpu_s_mean": statistics.mean(cpu),
                   "heldout_expected_mean": statistics.mean(accs), "heldout_expected": accs,
                   "penalised_mean": statistics.mean(pens)}
            report.append(row)
            print(f"{args.task} @ {budget:g} {spec:>28}: {row['cpu_s_mean']:.2f} s CPU / search; held-out expected "
                  f"{row['heldout_expected_mean']:.4f}; penalised {row['penalised_mean']:.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
