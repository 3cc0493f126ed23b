"""Do fidelity latency queries run slower question-major (each question through every graph, as
``tts-sim fidelity`` measures) than graph-major (all questions of one graph, then the next)?

Runs the given graphs of a committed fidelity report on held-out questions one query at a time, in
the orders named by ``--modes``, and prints each graph's median wall time and mean reply tokens
(replies are seeded, so both orders do the same work). Stop 16, add-words questions 200-229, graphs
0,1,3,11 of set 0: Gemma alone (#1) 0.256-0.260 s question-major, 0.242 s graph-major.

    python benchmarks/latency_order.py --graphs 0,1,3,11 --questions 30 --modes qmajor,gmajor,qmajor
"""

from __future__ import annotations

import argparse
import json
import statistics

from tts_sim.backends import BACKENDS
from tts_sim.core.graph import Graph
from tts_sim.real.executor import GraphExecutor
from tts_sim.tasks.questions import load_questions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", default="docs/fidelity/fidelity_add-words.json")
    ap.add_argument("--graphs", default="0,1,3,11")
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--offset", type=int, default=200)
    ap.add_argument("--modes", default="qmajor,gmajor,qmajor")
    args = ap.parse_args()
    with open(args.report) as f:
        data = json.load(f)
    task = data["task"]
    graphs = {r["index"]: Graph.from_dict(r["graph"]) for r in data["rows"]}
    chosen = [int(g) for g in args.graphs.split(",") if g]
    qs = load_questions(task)[args.offset:args.offset + args.questions]
    backend = BACKENDS.build("onnx", {"engine": "genai", "quantization": "int8", "threads": 2, "max_batch": 16})
    executor = GraphExecutor(backend, task, max_new_tokens=16, temperature=0.7, top_p=0.9)
    for mode in args.modes.split(","):
        walls: dict[int, list[float]] = {g: [] for g in chosen}
        tokens: dict[int, list[int]] = {g: [] for g in chosen}
        order = [(g, q) for q in qs for g in chosen] if mode == "qmajor" else [(g, q) for g in chosen for q in qs]
        for g, q in order:
            run = executor.run_batch(graphs[g], [q], seed=0)[0]
            walls[g].append(run.wall_s)
            tokens[g].append(run.completion_tokens)
        print(mode, "  ".join(f"#{g} {statistics.median(walls[g]):.3f} s / {statistics.mean(tokens[g]):.1f} tok"
                             for g in chosen), flush=True)


if __name__ == "__main__":
    main()
