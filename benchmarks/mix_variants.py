"""Expected held-out accuracy of hand-written model mixes' pre-test variants (parallel, layered).

Why Agent-REINFORCE blends its two best pre-tested mixes (docs/bench/agent_reinforce.md, stop 17): on
the bench's splits (100 search / 100 held-out questions, split seed 0) and the embedded scenario, score
the variants the pre-test would build from a mix written as ``COUNTxMODEL+COUNTxMODEL``:

    PYTHONPATH=$PWD python benchmarks/mix_variants.py math 80 7xllama-3.1-8b 8xgemma-3-1b \
        4xllama-3.1-8b+4xgemma-3-1b

Each line: the mix, then per variant its expected accuracy / budget units / worker nodes after repair.
"""

from __future__ import annotations

import sys

from tts_sim.bench.jobs import evaluator_for, splits
from tts_sim.search import SearchSpace
from tts_sim.search.mixes import layered_variant, mix_models_by_size, parallel_variant
from tts_sim.tasks import get_task

SETTINGS = {"search_questions": 100, "heldout_questions": 100, "split_seed": 0, "cluster": None}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: mix_variants.py TASK BUDGET MIX [MIX ...]  (MIX: 4xllama-3.1-8b+4xgemma-3-1b)", file=sys.stderr)
        return 2
    task, budget = argv[0], float(argv[1])
    ev = evaluator_for(task, SETTINGS)
    space = SearchSpace(get_task(task), budget, max_nodes=8)
    _, heldout = splits(ev.n_questions, SETTINGS)
    for spec in argv[2:]:
        models: list[str] = []
        for part in spec.split("+"):
            count, model = part.split("x", 1)
            models += [model] * int(count)
        ordered = mix_models_by_size(space, tuple(models))
        cells = []
        for name, graph in (("parallel", parallel_variant(space, ordered)),
                            ("layered-2", layered_variant(space, ordered, 2)),
                            ("layered-3", layered_variant(space, ordered, 3))):
            acc = ev.expected(graph, heldout).accuracy
            cells.append(f"{name} {acc:.3f} / {space.units(graph):.0f} u / {len(graph.executed) - 1} n")
        print(f"{spec}: " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
