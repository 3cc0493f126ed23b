"""Speed and memory of the cluster simulator: 1,000 queries of a 6-node graph on 2xH100, both schedulers.

Target (issue 11): at most 100 ms for the 1,000 queries under ``continuous`` (and ``static``),
and memory flat in the number of queries (tracemalloc peak, 1k vs 10k queries). Times are wall
and CPU (process) time: on a shared machine the CPU time is the steadier figure. The latency
predictor is the roofline with the device catalogue's calibration (what the CLI builds), or with
``--predictor default`` the uncalibrated one.

    python benchmarks/bench_simulator.py [--repeat 7] [--queries 1000] [--scheduler static,continuous]
                                         [--predictor calibrated|default]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc

from tts_sim.core.graph import Graph
from tts_sim.sim.cluster import ClosedLoop, ClusterSimulator, OpenLoop, RooflinePredictor
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


PREDICTORS = {"calibrated": RooflinePredictor(use_catalogue=True), "default": RooflinePredictor()}


def time_run(scheduler: str, arrival, n: int, repeat: int, predictor: RooflinePredictor
             ) -> tuple[float, float, float, object]:
    """Best and median wall time, best CPU time; a fresh simulator each time (its caches are timed too)."""
    times, cpu = [], []
    for _ in range(repeat):
        sim = ClusterSimulator("2xH100", predictor, scheduler=scheduler)
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        result = sim.simulate(GRAPH, TASK, arrival, n, seed=0)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(times), statistics.median(times), min(cpu), result


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
    parser.add_argument("--scheduler", default="static,continuous", help="comma-separated scheduler names")
    parser.add_argument("--predictor", choices=sorted(PREDICTORS), default="calibrated")
    args = parser.parse_args()
    predictor = PREDICTORS[args.predictor]
    print(f"graph: 6 nodes, {len(GRAPH.executed)} executed; task {TASK.name}; cluster 2xH100; {args.predictor} "
          f"roofline; {args.queries} queries; best/median of {args.repeat}; load average {os.getloadavg()[0]:.2f}")
    for scheduler in args.scheduler.split(","):
        print(f"--- {scheduler}")
        for label, arrival in ARRIVALS.items():
            best, median, cpu, r = time_run(scheduler, arrival, args.queries, args.repeat, predictor)
            calls = r.n_node_calls
            over = " OVERLOADED" if r.latency.overloaded else ""
            print(f"{label:36s} best {best * 1e3:6.1f} ms  median {median * 1e3:6.1f} ms  cpu {cpu * 1e3:6.1f} ms  "
                  f"{calls / best / 1e3:5.0f}k node calls/s  p50 {r.latency.p50_s:7.2f} s  "
                  f"util {max(r.latency.utilisation.values()):.2f}{over}")
        for label in ("open-loop 1 qps", "closed-loop 16 clients"):
            small, large = (peak_bytes(ClusterSimulator("2xH100", predictor, scheduler=scheduler), ARRIVALS[label], n)
                            for n in (1000, 10000))
            print(f"tracemalloc peak, {label}: 1k queries {small / 1024:.0f} KiB, "
                  f"10k queries {large / 1024:.0f} KiB (ratio {large / small:.2f})")


if __name__ == "__main__":
    main()
