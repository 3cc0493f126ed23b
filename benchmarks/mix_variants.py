"""Expected held-out accuracy of model mixes' pre-test variants (parallel, layered chains, aggregators).

Why Agent-REINFORCE blends its two best pre-tested mixes (docs/bench/agent_reinforce.md, stop 17) and
pre-tests a proposers -> aggregators graph (stop 19): on the bench's splits (100 search / 100 held-out
questions, split seed 0) and the embedded scenario, score the variants the pre-test would build from a
mix written as ``COUNTxMODEL+COUNTxMODEL``, or from every maximal mix of the space with ``all``:

    PYTHONPATH=$PWD python benchmarks/mix_variants.py math 80 7xllama-3.1-8b 8xgemma-3-1b \
        4xllama-3.1-8b+4xgemma-3-1b
    PYTHONPATH=$PWD python benchmarks/mix_variants.py math 42 all        # minutes: every maximal mix

Each line: the mix, then per variant its expected accuracy / budget units / worker nodes after repair.
With ``all``: the 12 mixes with the best variant, then how often each variant is a mix's best and
each variant's best accuracy over all mixes.
"""

from __future__ import annotations

import collections
import sys

from tts_sim.bench.jobs import evaluator_for, splits
from tts_sim.core.graph import Graph
from tts_sim.search import SearchSpace
from tts_sim.search.mixes import (
    aggregator_variant,
    enumerate_mixes,
    layered_variant,
    mix_models_by_size,
    parallel_variant,
)
from tts_sim.tasks import get_task

SETTINGS = {"search_questions": 100, "heldout_questions": 100, "split_seed": 0, "cluster": None}


def variants(space: SearchSpace, models: tuple[str, ...]) -> dict[str, Graph]:
    ordered = mix_models_by_size(space, models)
    return {"parallel": parallel_variant(space, ordered), "layered-2": layered_variant(space, ordered, 2),
            "layered-3": layered_variant(space, ordered, 3), "aggregators": aggregator_variant(space, ordered)}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: mix_variants.py TASK BUDGET MIX [MIX ...] | all  (MIX: 4xllama-3.1-8b+4xgemma-3-1b)",
              file=sys.stderr)
        return 2
    task, budget = argv[0], float(argv[1])
    ev = evaluator_for(task, SETTINGS)
    space = SearchSpace(get_task(task), budget, max_nodes=8)
    _, heldout = splits(ev.n_questions, SETTINGS)
    if argv[2:] == ["all"]:
        scored = []
        for option in enumerate_mixes(space):
            accs = {name: ev.expected(g, heldout).accuracy for name, g in variants(space, option.models).items()}
            scored.append((max(accs.values()), option.label(), accs))
        scored.sort(key=lambda s: -s[0])
        for _, label, accs in scored[:12]:
            print(f"{label}: " + " | ".join(f"{k} {v:.3f}" for k, v in accs.items()))
        best = collections.Counter(max(accs, key=accs.__getitem__) for _, _, accs in scored)
        print(f"{len(scored)} mixes; best variant: " + ", ".join(f"{k} {n}" for k, n in best.most_common()))
        print("best accuracy per variant: " + ", ".join(f"{k} {max(a[k] for _, _, a in scored):.3f}"
                                                        for k in scored[0][2]))
        return 0
    for spec in argv[2:]:
        models: list[str] = []
        for part in spec.split("+"):
            count, model = part.split("x", 1)
            models += [model] * int(count)
        cells = [f"{name} {ev.expected(graph, heldout).accuracy:.3f} / {space.units(graph):.0f} u / "
                 f"{len(graph.executed) - 1} n" for name, graph in variants(space, tuple(models)).items()]
        print(f"{spec}: " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
