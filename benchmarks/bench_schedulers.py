"""Static vs continuous batching in the simulator: capacity and open-loop latency on three graphs.

Capacity is the closed-loop throughput with many clients; each open-loop cell is p50 / p95 over
1,000 queries (``OVER``: flagged overloaded). Roofline predictor, default efficiency factors:
this compares the two policies inside the simulator, it is not a measurement of a real engine.

    python benchmarks/bench_schedulers.py [--max-batch 8] [--queries 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts_sim.core.graph import Graph
from tts_sim.sim.cluster import ClosedLoop, ClusterSimulator, OpenLoop
from tts_sim.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from bench_simulator import GRAPH as SIX_NODES  # noqa: E402

TASK = get_task("math")
SINGLE = Graph.build([("out", "assistant", "llama-3.1-8b")], [], "out")
PARALLEL = Graph.build([*((f"c{i}", "assistant", "llama-3.2-1b") for i in range(4)),
                        ("out", "assistant", "llama-3.2-3b")], [(f"c{i}", "out") for i in range(4)], "out")
CASES = (("8B alone, 1xH100", SINGLE, "1xH100", (1, 3, 8)),
         ("4 x 1B -> 3B, 2xH100", PARALLEL, "2xH100", (1, 3, 4)),
         ("6-node bench graph, 2xH100", SIX_NODES, "2xH100", (0.2, 1, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    print(f"task {TASK.name}; max_batch {args.max_batch}; {args.queries} queries per cell; roofline predictor")
    for name, graph, cluster, rates in CASES:
        for scheduler in ("static", "continuous"):
            sim = ClusterSimulator(cluster, scheduler=scheduler, max_batch=args.max_batch)
            capacity = sim.simulate(graph, TASK, ClosedLoop(32 * args.max_batch), 2000).latency.throughput_qps
            cells = []
            for qps in rates:
                lat = sim.simulate(graph, TASK, OpenLoop(qps), args.queries, seed=1).latency
                cells.append(f"{qps:g}/s {lat.p50_s:6.2f} / {lat.p95_s:6.2f}{' OVER' if lat.overloaded else ''}")
            print(f"{name:28s} {scheduler:10s} capacity {capacity:6.2f}/s | " + " | ".join(cells))


if __name__ == "__main__":
    main()
