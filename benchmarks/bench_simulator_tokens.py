"""Speed and memory of the cluster simulator with per-request sampled reply lengths (``TokenModel``).

Same graph, cluster and arrivals as bench_simulator.py (target: 1,000 queries of the 6-node graph on
2xH100 in at most 100 ms); reply lengths drawn per request from a 60-value histogram around the
task's B, template overheads on every prompt with predecessors. Memory: tracemalloc peak at 1k, 10k
and 30k queries (the service-time caches grow with the distinct (prompt, reply, batch) triples seen,
which the histogram bounds, not with the number of queries).

    python benchmarks/bench_simulator_tokens.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np
from bench_simulator import ARRIVALS, GRAPH, TASK

from tts_sim.sim.cluster import ClusterSimulator, LengthDistribution, TokenModel


def token_model() -> TokenModel:
    rng = np.random.default_rng(0)
    lengths = LengthDistribution.from_samples(rng.integers(150, 400, 60).tolist())
    return TokenModel({"*": lengths}, {"fuse": 40.0, "synthesise": 36.0, "refine": 42.0}, 5.0, sampled=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tokens = token_model()
    for label, arrival in ARRIVALS.items():
        row = []
        for name, tm in (("paper counts", None), ("sampled lengths", tokens)):
            times = []
            for _ in range(args.repeat):
                sim = ClusterSimulator("2xH100", tokens=tm)
                gc.collect()
                t = time.perf_counter()
                r = sim.simulate(GRAPH, TASK, arrival, 1000, seed=0)
                times.append(time.perf_counter() - t)
            row.append(f"{name} best {min(times) * 1e3:5.1f} ms median {statistics.median(times) * 1e3:5.1f} ms "
                       f"(p50 {r.latency.p50_s:6.2f} s)")
        print(f"{label:36s} " + " | ".join(row))
    for label in ("open-loop 1 qps", "closed-loop 16 clients"):
        peaks = []
        for n in (1000, 10000, 30000):
            sim = ClusterSimulator("2xH100", tokens=tokens)
            gc.collect()
            tracemalloc.start()
            sim.simulate(GRAPH, TASK, ARRIVALS[label], n, seed=0)
            peaks.append(f"{n // 1000}k {tracemalloc.get_traced_memory()[1] / 1024:.0f} KiB")
            tracemalloc.stop()
        print(f"sampled lengths, tracemalloc peak, {label}: " + ", ".join(peaks))


if __name__ == "__main__":
    main()
