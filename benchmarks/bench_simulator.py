"""Speed and memory of the cluster simulator: 1,000 queries of a 6-node graph on 2xH100.

Target (issue): at most 100 ms for the 1,000 queries, within 2x of SimPy's ~100k node calls/s
on one core, and memory flat in the number of queries.

    python benchmarks/bench_simulator.py [--repeat 7] [--queries 1000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

from tts_sim.core.graph import Graph
from tts_sim.sim.cluster import ClosedLoop, ClusterSimulator, OpenLoop
from tts_sim.tasks import get_task

# 4 parallel assistants (two 1B, a 3B, a Gemma-2B) -> an 8B fuser -> the 3B output node (also fed by n0).
GRAPH = Graph.build(
    [("n0", "assistant", "llama-3.2-1b"), ("n1", "assistant", "llama-3.2-1b"), ("n2", "assistant", "llama-3.2-3b"),
     ("n3", "assistant", "gemma-2b"), ("fuse", "fuser", "llama-3.1-8b"), ("out", "assistant", "llama-3.2-3b")],
    [("n0", "fuse"), ("n1", "fuse"), ("n2", "fuse"), ("n3", "fuse"), ("fuse", "out"), ("n0", "out")],
    "out",
)
TASK = get_task("math")
ARRIVALS = {
    "open-loop 0.2 qps": OpenLoop(0.2),
    "open-loop 1 qps": OpenLoop(1.0),
    "open-loop 2.5 qps (near saturation)": OpenLoop(2.5),
    "closed-loop 1 client (no batching)": ClosedLoop(1),
    "closed-loop 16 clients": ClosedLoop(16),
}


def time_run(arrival, n: int, repeat: int) -> tuple[float, float, object]:
    """Best and median wall time; a fresh simulator each time, so its service-time cache is timed too."""
    times = []
    for _ in range(repeat):
        sim = ClusterSimulator("2xH100")
        gc.collect()
        t = time.perf_counter()
        result = sim.simulate(GRAPH, TASK, arrival, n, seed=0)
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), result


def peak_bytes(sim: ClusterSimulator, arrival, n: int) -> int:
    gc.collect()
    tracemalloc.start()
    sim.simulate(GRAPH, TASK, arrival, n, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"graph: 6 nodes, {len(GRAPH.executed)} executed; task {TASK.name}; cluster 2xH100; "
          f"{args.queries} queries; best/median of {args.repeat}")
    for label, arrival in ARRIVALS.items():
        best, median, r = time_run(arrival, args.queries, args.repeat)
        calls = r.n_node_calls
        print(f"{label:36s} best {best * 1e3:6.1f} ms  median {median * 1e3:6.1f} ms  "
              f"{calls / best / 1e3:6.0f}k node calls/s  mean batch {r.mean_batch:4.2f}  "
              f"p50 {r.latency.p50_s:7.2f} s  util {max(r.latency.utilisation.values()):.2f}")
    for label in ("open-loop 1 qps", "closed-loop 16 clients"):
        small, large = (peak_bytes(ClusterSimulator("2xH100"), ARRIVALS[label], n) for n in (1000, 10000))
        print(f"tracemalloc peak, {label}: 1k queries {small / 1024:.0f} KiB, "
              f"10k queries {large / 1024:.0f} KiB (ratio {large / small:.2f})")


if __name__ == "__main__":
    main()
