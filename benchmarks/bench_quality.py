"""Time ``QualityModel.predict`` for a 6-node graph on 500 questions (target: <= 5 ms).

Run: ``python benchmarks/bench_quality.py [--profile scenario] [--task math] [--repeat 200] [--fits 3]``
(``--profile measured:mul-words --task mul-words``: a shipped measured profile, on its models). Prints the median
and best time per call, and for context the time of ``expected``, of the 95% prediction interval
(fit uncertainty by draws from the likelihood: the first call samples them, no disk cache here; later
calls reuse them) and of building the model from the profile (smoothing +
maximum-likelihood fit, uncached: best of ``--fits``; the issue's target is <= 2 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

from tts_sim.core.graph import Graph
from tts_sim.sim.profiles import load_profile
from tts_sim.sim.quality import QualityModel

SCENARIO_MODELS = ("llama-3.2-1b", "gemma-3-1b", "llama-3.2-3b")


def six_node_graph(models: tuple[str, ...] = SCENARIO_MODELS) -> Graph:
    """Three sources of different models, a fuser, a refining assistant, an output node (models
    ``models[0..2]``, cycled when fewer)."""
    m = [models[i % len(models)] for i in range(3)]
    nodes = [("a", "assistant", m[0]), ("b", "assistant", m[1]),
             ("c", "assistant", m[2]), ("f", "fuser", m[2]),
             ("r", "assistant", m[0]), ("out", "assistant", m[2])]
    edges = [("a", "f"), ("b", "f"), ("c", "f"), ("c", "r"), ("f", "out"), ("r", "out")]
    return Graph.build(nodes, edges, "out")


def _time(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="scenario", help="scenario, measured:TASK or a file")
    ap.add_argument("--task", default="math")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--fits", type=int, default=3, help="uncached model builds to time (best reported)")
    args = ap.parse_args()

    profile = load_profile(args.profile)
    profile.checksum = ""  # no fit cache: time the fit itself
    fit_times = []
    for _ in range(max(1, args.fits)):
        t0 = time.perf_counter()
        qm = QualityModel.from_profile(profile, args.task)
        fit_times.append(time.perf_counter() - t0)
    graph = six_node_graph(SCENARIO_MODELS if args.profile == "scenario" else qm.models)
    questions = list(range(min(500, qm.n_questions)))
    qm.predict(graph, questions, seed=0)  # warm-up (builds the graph's node plan once)

    seeds = iter(range(10**9))
    times = _time(lambda: qm.predict(graph, questions, seed=next(seeds)), args.repeat)
    exp_times = _time(lambda: qm.expected(graph, questions), 5)
    iv_first = _time(lambda: qm.prediction_interval(graph, questions), 1)[0]  # samples the draws (no cache)
    iv_times = _time(lambda: qm.prediction_interval(graph, questions), 3)
    med = statistics.median(times) * 1e3
    print(f"task {args.task}: {len(questions)} questions, 6-node graph, {args.repeat} calls")
    print(f"predict   median {med:.3f} ms, best {min(times) * 1e3:.3f} ms  (target <= 5 ms: "
          f"{'met' if med <= 5 else 'MISSED'})")
    print(f"expected  median {statistics.median(exp_times) * 1e3:.1f} ms (default replicates)")
    print(f"prediction interval (fit uncertainty, 32 draws): first {iv_first:.2f} s (sampling the draws: "
          f"no cache here), then median {statistics.median(iv_times):.2f} s")
    print(f"from_profile (smoothing + MLE fit, uncached) best {min(fit_times):.2f} s, median "
          f"{statistics.median(fit_times):.2f} s over {len(fit_times)}  (target <= 2 s: "
          f"{'met' if min(fit_times) <= 2 else 'MISSED'})")


if __name__ == "__main__":
    main()
