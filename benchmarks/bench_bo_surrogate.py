"""Why BO trailed random search: what its surrogates and its acquisition candidates looked like.

Two measurements per cell (main space: 8 slots, the paper's 6-model pool; embedded scenario):

1. **Surrogate ranking.** Fit BO's surrogate (``bo-gp``'s GP, ``bo-forest``'s extra trees) to
   ``--train`` random budget-spending graphs with their noisy search-split scores, then rank
   ``--test`` other such graphs; report the Spearman correlation of predictions with the graphs'
   expected held-out accuracy, mean over ``--reps`` training sets. Inputs: ``slots`` = the slot
   encoding as the old BO saw it (one-hot model per slot, role/edge/output bits), ``slots+penalty``
   = the same plus 20 over-budget random encodings told ``-1 - overshoot`` (the old penalty prior),
   ``features`` = ``tts_sim.search.features`` (what BO fits now).
2. **Candidates.** Of uniformly random slot encodings (the old acquisition candidates), the share
   within the budget and their budget use, against the random searcher's graphs.

    PYTHONPATH=$PWD python benchmarks/bench_bo_surrogate.py [--cells math:42 mmlu:80] [--reps 4]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import clone

from tts_sim.baselines.bo_skopt import ForestSearch, GPSearch
from tts_sim.baselines.random_search import random_graph
from tts_sim.bench.jobs import evaluator_for, splits
from tts_sim.core.graph import Graph
from tts_sim.search import SearchSpace
from tts_sim.search.context import stable_int
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.features import feature_matrix
from tts_sim.search.mixes import enumerate_mixes
from tts_sim.tasks import get_task

SETTINGS = {"search_questions": 100, "heldout_questions": 100, "split_seed": 0}


def slot_matrix(enc: GraphEncoding, xs: list[list[int]]) -> np.ndarray:
    """The old BO's view of encodings: model slots one-hot, binary entries as they are."""
    rows = []
    for x in xs:
        row: list[float] = []
        for v, d in zip(x, enc.dimensions, strict=True):
            row.extend(np.eye(d.size)[v] if d.size > 2 else [v])
        rows.append(row)
    return np.array(rows, dtype=float)


def penalty_points(space: SearchSpace, enc: GraphEncoding, rng: np.random.Generator, n: int = 20
                   ) -> tuple[list[list[int]], list[float]]:
    xs: list[list[int]] = []
    ys: list[float] = []
    for _ in range(200 * n):
        if len(xs) >= n:
            break
        x = enc.random(rng)
        g = enc.decode(x, repair=False)
        if not space.feasible(g):
            xs.append(x)
            ys.append(-1.0 - (space.units(g) / space.budget - 1.0))
    return xs, ys


def surrogate_ranking(task: str, budget: float, reps: int, n_train: int, n_test: int) -> dict[str, list[float]]:
    ev = evaluator_for(task, SETTINGS)
    search_qs, heldout_qs = splits(ev.n_questions, SETTINGS)
    space = SearchSpace(get_task(task), budget)
    enc = GraphEncoding(space)
    mixes = enumerate_mixes(space)
    test = [random_graph(space, np.random.default_rng(10_000 + i), mixes) for i in range(n_test)]
    truth = np.array([ev.expected(g, heldout_qs).accuracy for g in test])
    out: dict[str, list[float]] = {}
    for rep in range(reps):
        train: list[Graph] = [random_graph(space, np.random.default_rng(100 * rep + i), mixes) for i in range(n_train)]
        y = -np.array([ev.evaluate(g, search_qs, seed=stable_int(rep, i) % 2 ** 32).accuracy
                       for i, g in enumerate(train)])
        pen_x, pen_y = penalty_points(space, enc, np.random.default_rng(rep))
        inputs = {
            "slots": (slot_matrix(enc, [enc.encode(g) for g in train]), y),
            "slots+penalty": (slot_matrix(enc, [enc.encode(g) for g in train] + pen_x), np.concatenate([y, pen_y])),
            "features": (feature_matrix(space, train), y),
        }
        tests = {"slots": slot_matrix(enc, [enc.encode(g) for g in test]), "features": feature_matrix(space, test)}
        for est_name, est in (("gp", GPSearch().surrogate(rep)), ("forest", ForestSearch().surrogate(rep))):
            for name, (x, target) in inputs.items():
                model = clone(est).fit(x, target)
                pred = -model.predict(tests["features" if name == "features" else "slots"])
                out.setdefault(f"{est_name} on {name}", []).append(float(spearmanr(pred, truth).statistic))
    return out


def candidate_stats(task: str, budget: float, n: int = 2000) -> str:
    space = SearchSpace(get_task(task), budget)
    enc = GraphEncoding(space)
    rng = np.random.default_rng(0)
    decoded = [enc.decode(enc.random(rng), repair=False) for _ in range(n)]
    feasible = [g for g in decoded if space.feasible(g)]
    mixes = enumerate_mixes(space)
    sampled = [random_graph(space, np.random.default_rng(i), mixes) for i in range(300)]
    use = np.mean([space.units(g) / budget for g in feasible]) if feasible else 0.0
    return (f"uniform slot encodings: {len(feasible) / n:.0%} within budget, budget use {use:.2f}, "
            f"{np.mean([len(g.executed) - 1 for g in feasible]) if feasible else 0:.1f} workers | "
            f"random searcher's graphs: budget use {np.mean([space.units(g) / budget for g in sampled]):.2f}, "
            f"{np.mean([len(g.executed) - 1 for g in sampled]):.1f} workers")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=["math:42", "mmlu:42"], help="TASK:BUDGET")
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--train", type=int, default=30)
    p.add_argument("--test", type=int, default=150)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    for cell in args.cells:
        task, budget = cell.split(":")
        print(f"{task} @ {budget}: {candidate_stats(task, float(budget))}")
        for name, values in surrogate_ranking(task, float(budget), args.reps, args.train, args.test).items():
            print(f"  {name:22s} Spearman {np.mean(values):+.2f}  ({' '.join(f'{v:+.2f}' for v in values)})")


if __name__ == "__main__":
    main()
