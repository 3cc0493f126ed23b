"""Time searches in the simulator: by default one Agent-REINFORCE search of 30 evaluations x 200
questions (the issue's target: under 5 s on one core).

    taskset -c 0 python benchmarks/bench_search.py                       # fake evaluator
    taskset -c 0 python benchmarks/bench_search.py --evaluator simulated # SimulatedEvaluator
    python benchmarks/bench_search.py --searcher random bo-gp tpe --repeats 3 --json out.json

Each search is timed end to end (``run_search``: search, held-out evaluation, result); the
evaluator's and the agent's shares come from the result's cost record. Times are the median over
``--repeats`` runs with different seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.search import SearchSpace, run_search  # noqa: E402


def make_evaluator(kind: str, task: str, n_questions: int):
    if kind == "fake":
        from tests.search_fakes import FakeEvaluator

        return FakeEvaluator(task, n_questions)
    if kind == "simulated":
        from tts_sim.sim.evaluator import SimulatedEvaluator

        return SimulatedEvaluator(task)
    raise SystemExit(f"unknown evaluator {kind!r} (fake or simulated)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--searcher", nargs="+", default=["agent-reinforce"])
    p.add_argument("--evaluator", default="fake", choices=["fake", "simulated"])
    p.add_argument("--task", default="math")
    p.add_argument("--budget", type=float, default=18.0)
    p.add_argument("--max-nodes", type=int, default=8)
    p.add_argument("--evals", type=int, default=30)
    p.add_argument("--questions", type=int, default=200, help="search questions per evaluation")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)

    evaluator = make_evaluator(args.evaluator, args.task, 2 * args.questions)
    if evaluator.n_questions <= args.questions:
        raise SystemExit(f"the evaluator has {evaluator.n_questions} questions; need more than {args.questions}")
    space = SearchSpace(args.task, args.budget, max_nodes=args.max_nodes)
    search_qs = list(range(args.questions))
    heldout_qs = list(range(args.questions, evaluator.n_questions))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    report = {"evaluator": args.evaluator, "task": args.task, "budget": args.budget, "evals": args.evals,
              "questions": args.questions, "cpus": cpus, "searchers": {}}
    for name in args.searcher:
        walls, evaluator_s, agent_calls, evals, accs = [], [], [], [], []
        for seed in range(args.repeats):
            t0 = time.perf_counter()
            result = run_search(name, space, evaluator, args.evals, seed, search_questions=search_qs,
                                heldout_questions=heldout_qs)
            walls.append(time.perf_counter() - t0)
            evaluator_s.append(result.cost.evaluator_s)
            agent_calls.append(result.cost.agent_calls)
            evals.append(result.cost.evaluations)
            accs.append(result.heldout.accuracy)
        row = {"wall_s_median": statistics.median(walls), "wall_s_max": max(walls),
               "evaluator_s_median": statistics.median(evaluator_s), "evaluations": evals,
               "agent_calls": agent_calls, "heldout_accuracy": accs}
        report["searchers"][name] = row
        print(f"{name:>16}: {row['wall_s_median']:.3f} s median (max {row['wall_s_max']:.3f} s) per search of "
              f"{max(evals)} evals x {args.questions} questions; evaluator {row['evaluator_s_median']:.3f} s; "
              f"held-out accuracy {statistics.mean(accs):.3f} (cpus {cpus})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
