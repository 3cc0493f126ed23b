"""How well does the simulator predict real per-query latency on this CPU?

1. Measure SmolLM2-135M latency tables (prefill by prompt length x batch, decode step by context x
   batch) with ONNX Runtime on this machine (device ``cpu``), before and again after step 2 (the
   machine is shared: the two are averaged and their ratio is reported as the load drift).
2. Run a few held-out graphs for real (single, parallel(2), chain(2), parallel(3), every node
   SmolLM2-135M) on ``--questions`` generated ``add`` questions each, one query at a time,
   question-major (each question through every graph) so load changes hit all graphs alike.
3. Predict each graph's per-query latency with the ``ClusterSimulator`` on cluster ``cpu`` with a
   ``TablePredictor`` built from those tables (roofline fallback fitted to them), closed loop with
   one query in flight, and a ``TaskSpec`` whose A and B are the measured mean direct-prompt and
   completion tokens of that graph's runs (the simulator gives every call the same token counts).
4. Also per query: the simulator's service-time model fed each call's real token counts (the longest
   prompt and the longest completion of each batched call), which isolates the latency tables and
   predictor from the simulator's "every call has the mean token counts" assumption.

Prints the relative errors (predicted - measured) / measured and writes everything to ``--out``.

    python benchmarks/bench_latency_error.py --questions 10 --max-new-tokens 64 --out bench_latency_error.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace

import numpy as np


def _graphs(model: str) -> dict:
    from tts_sim.presets import chain, parallel, single

    return {"single": single(model), "parallel(2)": parallel(2, model, model), "chain(2)": chain(2, model, model),
            "parallel(3)": parallel(3, model, model)}


def _predict(graph, spec, predictor, n_queries: int, max_batch: int) -> float:
    from tts_sim.cluster import ClosedLoop, ClusterSimulator

    sim = ClusterSimulator("cpu", predictor=predictor, max_batch=max_batch)
    return sim.simulate(graph, spec, ClosedLoop(1), n_queries).latency.mean_s


def _service_model(run, predictor, max_batch: int) -> float:
    """The simulator's service time of each level's call with the call's real tokens: prefill of the
    longest prompt of the batch, then as many decode steps as its longest completion."""
    from tts_sim.cluster import ClusterSimulator

    sim = ClusterSimulator("cpu", predictor=predictor, max_batch=max_batch)
    calls: dict[tuple[int, str], list] = {}
    for t in run.nodes:
        calls.setdefault((t.level, t.backend_model), []).append(t)
    total = 0.0
    for (_, model), ts in sorted(calls.items()):
        total += sim.service_s(model, 0, max(t.prompt_tokens for t in ts), max(t.completion_tokens for t in ts),
                               len(ts))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quantization", default="fp32")
    ap.add_argument("--threads", type=int, default=1, help="1 is steadier on a shared 2-core machine")
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--offset", type=int, default=200, help="first question index of the held-out questions")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--prompt-lengths", default="16,32,64,128,256,512")
    ap.add_argument("--contexts", default="32,64,128,256,512")
    ap.add_argument("--batch-sizes", default="1,2,3,4")
    ap.add_argument("--max-batch-tokens", type=int, default=512, help="skip larger prefill rows (not needed here)")
    ap.add_argument("--graphs", default="single,parallel(2),chain(2),parallel(3)")
    ap.add_argument("--out", default="bench_latency_error.json")
    args = ap.parse_args()

    from backends.onnxruntime import OnnxRuntimeBackend
    from tts_sim.backend import GenerationRequest
    from tts_sim.cluster import TablePredictor, fit_roofline
    from tts_sim.profile import LatencyTable
    from tts_sim.profiling import measure_latency_table
    from tts_sim.real import RealEvaluator
    from tts_sim.tasks import TaskSpec
    from tts_sim.tasks.simple import addition_questions

    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    backend = OnnxRuntimeBackend(quantization=args.quantization, threads=args.threads, max_batch=args.max_batch,
                                 progress=print)
    engine = backend.engine(args.model)
    info = backend.info(args.model)
    warm = GenerationRequest(({"role": "user", "content": "What is 2 + 2?"},), max_new_tokens=8)
    backend.generate(args.model, [warm, warm])  # warm-up: first runs allocate and optimise

    def measure() -> LatencyTable:
        return measure_latency_table(engine, args.model, device="cpu", backend=info.backend,
                                     quantization=info.quantization, provider=info.provider,
                                     prompt_lengths=ints(args.prompt_lengths), batch_sizes=ints(args.batch_sizes),
                                     contexts=ints(args.contexts), repeats=3, steps=8,
                                     max_batch_tokens=args.max_batch_tokens)

    t0 = time.perf_counter()
    before = measure()
    print(f"latency table measured in {time.perf_counter() - t0:.0f} s")

    questions = addition_questions(args.offset + args.questions)[args.offset:]
    spec0 = TaskSpec("add", "math", 40, 32)
    ev = RealEvaluator("add", backend, spec=spec0, questions=questions, max_new_tokens=args.max_new_tokens,
                       temperature=args.temperature, seed=1)
    wanted = [g.strip() for g in args.graphs.split(",")]
    graphs = {k: v for k, v in _graphs(args.model).items() if k in wanted}
    runs: dict[str, list] = {name: [] for name in graphs}
    t0 = time.perf_counter()
    for q in range(len(questions)):  # question-major: load drift hits every graph alike
        for name, graph in graphs.items():
            ev.evaluate(graph, [q])
            runs[name].extend(ev.runs)
        print(f"question {q + 1}/{len(questions)}: " + ", ".join(f"{n} {runs[n][-1].wall_s:.2f} s" for n in graphs))
    runs_s = time.perf_counter() - t0
    after = measure()
    drift = float(np.median([a[2] / b[2] for a, b in zip(after.prefill + after.decode, before.prefill + before.decode,
                                                             strict=True)]))
    table = replace(before, prefill=before.prefill + after.prefill, decode=before.decode + after.decode)
    roofline = fit_roofline([table])
    predictor = TablePredictor([table], roofline)  # repeated rows are averaged
    print(f"table measured before and after the runs (median ratio after/before: {drift:.2f}); fitted roofline: "
          f"compute_eff {roofline.compute_eff:.3f}, bandwidth_eff {roofline.bandwidth_eff:.3f}, "
          f"overhead {roofline.overhead_s * 1e3:.2f} ms")

    rows, per_query_errors, results = [], [], {}
    for name, graph in graphs.items():
        rs = runs[name]
        walls = np.array([r.wall_s for r in rs])
        direct = [t.prompt_tokens for r in rs for t in r.nodes if t.kind == "direct"]
        completion = [t.completion_tokens for r in rs for t in r.nodes]
        spec = replace(spec0, prompt_tokens=float(np.mean(direct)), answer_tokens=float(np.mean(completion)))
        predicted = _predict(graph, spec, predictor, len(rs), args.max_batch)
        q_errors = [(_service_model(r, predictor, args.max_batch) - r.wall_s) / r.wall_s for r in rs]
        per_query_errors += q_errors
        err_mean = (predicted - walls.mean()) / walls.mean()
        err_p50 = (predicted - float(np.median(walls))) / float(np.median(walls))
        rows.append((name, len(rs), spec.prompt_tokens, spec.answer_tokens, walls.mean(), float(np.median(walls)),
                     predicted, err_mean, err_p50, float(np.median(np.abs(q_errors)))))
        results[name] = {"measured_wall_s": walls.tolist(), "predicted_mean_s": predicted,
                         "A": spec.prompt_tokens, "B": spec.answer_tokens, "rel_error_mean": err_mean,
                         "rel_error_p50": err_p50, "per_query_rel_errors": q_errors,
                         "accuracy": float(np.mean([r.correct for r in rs])),
                         "truncated_calls": sum(t.finish_reason == "length" for r in rs for t in r.nodes),
                         "calls": sum(len(r.nodes) for r in rs), "runs": [r.to_dict() for r in rs]}

    print()
    print(f"{'graph':<12} {'n':>3} {'A':>6} {'B':>6} {'meas mean':>9} {'meas p50':>9} {'pred':>7} "
          f"{'err mean':>9} {'err p50':>8} {'real-token |err| p50':>21}")
    for name, n, a, b, mean, p50, pred, em, ep, eq in rows:
        print(f"{name:<12} {n:>3} {a:>6.1f} {b:>6.1f} {mean:>9.2f} {p50:>9.2f} {pred:>7.2f} {100 * em:>+8.1f}% "
              f"{100 * ep:>+7.1f}% {100 * eq:>20.1f}%")
    graph_errs = np.abs([r[7] for r in rows])
    summary = {
        "median_abs_rel_error_graph_mean_latency": float(np.median(graph_errs)),
        "median_abs_rel_error_graph_p50_latency": float(np.median(np.abs([r[8] for r in rows]))),
        "median_abs_rel_error_per_query": float(np.median(np.abs(per_query_errors))),
        "mean_rel_error_per_query": float(np.mean(per_query_errors)),
    }
    pct = {k: 100 * v for k, v in summary.items()}
    print(f"\nmedian |relative error| over graphs: mean latency {pct['median_abs_rel_error_graph_mean_latency']:.1f}%, "
          f"p50 latency {pct['median_abs_rel_error_graph_p50_latency']:.1f}%; "
          f"per query (service model, real tokens): median |err| {pct['median_abs_rel_error_per_query']:.1f}%, "
          f"mean signed err {pct['mean_rel_error_per_query']:+.1f}%")
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (2 vCPUs shared with other jobs)")
    print(f"graph runs took {runs_s:.0f} s")
    out = {"summary": summary, "graphs": results, "table": {"prefill": table.prefill, "decode": table.decode},
           "table_drift_after_over_before": drift,
           "roofline": {"compute_eff": roofline.compute_eff, "bandwidth_eff": roofline.bandwidth_eff,
                        "overhead_s": roofline.overhead_s},
           "config": vars(args), "backend": {"provider": info.provider, "device": info.device,
                                              "version": info.version, "quantization": info.quantization},
           "load_average": {"before": load_before, "after": load_after}, "python": platform.python_version(),
           "total_s": time.perf_counter() - t_start}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out} ({out['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
