"""How well does the simulator predict real per-query latency on this CPU?

1. Measure SmolLM2-135M latency tables (prefill by prompt length x batch, decode step by context x
   batch) with ONNX Runtime on this machine (device ``cpu``), before and again after step 2 (the
   machine is shared: the two are averaged and their ratio is reported as the load drift).
2. Run a few held-out graphs for real (single, parallel(2), chain(2), parallel(3), every node
   SmolLM2-135M) on ``--questions`` generated ``add`` questions each, one query at a time,
   question-major (each question through every graph) so load changes hit all graphs alike.
3. Profile token statistics the way ``tts-sim profile`` does (``run_profile`` without latency
   tables: answer banks and fusion calls on ``--profile-questions`` questions disjoint from the
   held-out ones): A, B, completion-length histograms per prompt kind, template overheads.
4. Predict each graph's per-query latency (mean and p50) with the ``ClusterSimulator`` on cluster
   ``cpu`` with a ``TablePredictor`` built from those tables (roofline fallback fitted to them),
   closed loop with one query in flight, under several token models:
   - ``paper-runAB``: the paper's counts (every call A + d*B prompt tokens and B reply tokens) with A
     and B the measured means of that graph's own runs (in-sample: the simulator before the token model,
     as this benchmark measured it first);
   - ``paper-profileAB``: the paper's counts with the profile's A and B (what ``validate`` did before);
   - ``profile-mean``: the profile's ``TokenModel`` with every reply at its kind's mean;
   - ``profile-sampled``: the profile's ``TokenModel``, reply lengths drawn per request (a batch
     decodes for its longest reply): what ``validate`` and ``SimulatedEvaluator`` now use;
   - ``runs-sampled``: a ``TokenModel`` from the held-out runs' own tokens (in-sample: isolates the
     token model's structure from how well the profile's statistics transfer).
5. Also per query: the simulator's service-time model fed each call's real token counts (the longest
   prompt and the longest completion of each batched call), which isolates the latency tables and
   predictor from the simulator's token assumptions.

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
    from tts_sim.core.presets import chain, parallel, single

    return {"single": single(model), "parallel(2)": parallel(2, model, model), "chain(2)": chain(2, model, model),
            "parallel(3)": parallel(3, model, model)}


def _predict(graph, spec, predictor, n_queries: int, max_batch: int, tokens=None):
    from tts_sim.sim.cluster import ClosedLoop, ClusterSimulator

    sim = ClusterSimulator("cpu", predictor=predictor, max_batch=max_batch, tokens=tokens)
    return sim.simulate(graph, spec, ClosedLoop(1), n_queries, seed=0).latency


def _bootstrap(walls: np.ndarray, n: int = 4000, level: float = 0.9) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the measured mean and p50 over resampled questions (how far a graph's
    measured latency on this few questions can stray: reply lengths are random and heavy-tailed)."""
    rng = np.random.default_rng(0)
    draws = walls[rng.integers(0, len(walls), size=(n, len(walls)))]
    q = [(1 - level) / 2, (1 + level) / 2]
    return {"mean": tuple(np.quantile(draws.mean(axis=1), q).tolist()),
            "p50": tuple(np.quantile(np.median(draws, axis=1), q).tolist())}


def _run_token_stats(runs) -> dict:
    """Token statistics of held-out runs, in a profile's ``token_stats`` format."""
    hist: dict[str, dict[int, int]] = {}
    overheads: dict[str, list[float]] = {}
    for r in runs:
        trace = r.trace
        direct = [t.prompt_tokens for t in r.nodes if t.kind == "direct"]
        for t in r.nodes:
            h = hist.setdefault(t.kind, {})
            h[t.completion_tokens] = h.get(t.completion_tokens, 0) + 1
            if t.predecessors and direct:
                extra = t.prompt_tokens - direct[0] - sum(trace[p].completion_tokens for p in t.predecessors)
                overheads.setdefault(t.kind, []).append(extra)
    stats: dict = {"answer_tokens_histogram": hist.pop("direct", {}), "answer_tokens_histogram_by_kind": hist}
    if overheads:
        stats["fusion_overhead_tokens_by_kind"] = {k: float(np.mean(v)) for k, v in overheads.items()}
    return stats


def _service_model(run, predictor, max_batch: int) -> float:
    """The simulator's service time of each level's call with the call's real tokens: prefill of the
    longest prompt of the batch, then as many decode steps as its longest completion."""
    from tts_sim.sim.cluster import ClusterSimulator

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
    ap.add_argument("--engine", default="onnx", choices=("onnx", "genai"),
                    help="genai: onnxruntime-genai model builder graph (fused attention)")
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
    ap.add_argument("--profile-questions", type=int, default=30,
                    help="questions (from index 0, disjoint from the held-out ones) for the token statistics")
    ap.add_argument("--profile-samples", type=int, default=4, help="direct answers per profile question")
    ap.add_argument("--fusion-records", type=int, default=60, help="fusion calls for the token statistics")
    ap.add_argument("--sim-queries", type=int, default=2000, help="simulated queries per prediction")
    ap.add_argument("--out", default="bench_latency_error.json")
    args = ap.parse_args()

    from tts_sim.backends.onnxruntime import OnnxRuntimeBackend
    from tts_sim.core.backend import GenerationRequest
    from tts_sim.core.profile import LatencyTable
    from tts_sim.real.evaluator import RealEvaluator
    from tts_sim.real.profiling import measure_latency_table
    from tts_sim.real.profiling.run import ProfileConfig, measured_task_spec, run_profile
    from tts_sim.sim.cluster import TablePredictor, TokenModel, fit_roofline, token_model_from_profile
    from tts_sim.tasks import TaskSpec
    from tts_sim.tasks.simple import addition_questions

    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    backend = OnnxRuntimeBackend(quantization=args.quantization, threads=args.threads, max_batch=args.max_batch,
                                 engine=args.engine,
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

    if args.profile_questions > args.offset:
        raise SystemExit("--profile-questions must not reach the held-out questions (--offset)")
    t0 = time.perf_counter()
    pconfig = ProfileConfig(task="add", models={args.model: args.model}, questions=args.profile_questions,
                            samples=args.profile_samples, fusion_records=args.fusion_records,
                            max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=3,
                            batch=args.max_batch, latency=False)
    profile = run_profile(backend, pconfig, questions=addition_questions(args.profile_questions)).profile
    token_stats = profile.metadata["token_stats"]["add"]
    print(f"token statistics profiled in {time.perf_counter() - t0:.0f} s: A {token_stats['prompt_tokens']:.1f}, "
          f"B {token_stats['answer_tokens']:.1f}, overhead by kind "
          f"{ {k: round(v, 1) for k, v in token_stats.get('fusion_overhead_tokens_by_kind', {}).items()} }, "
          f"per input {token_stats.get('fusion_overhead_tokens_per_input', 0.0):.1f}")

    questions = addition_questions(args.offset + args.questions)[args.offset:]
    spec0 = TaskSpec("add", "math", 40, 32)
    profile_spec = measured_task_spec(profile, "add", spec0)
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

    all_runs = [r for rs in runs.values() for r in rs]
    variants = {  # name -> (task spec or None for the graph's own run means, token model)
        "paper-runAB": (None, TokenModel()),
        "paper-profileAB": (profile_spec, TokenModel()),
        "profile-mean": (profile_spec, token_model_from_profile(profile, "add", sampled=False)),
        "profile-sampled": (profile_spec, token_model_from_profile(profile, "add", sampled=True)),
        "runs-sampled": (None, TokenModel.from_stats(_run_token_stats(all_runs), sampled=True)),
    }
    rows, per_query_errors, results = [], [], {}
    errors: dict[str, dict[str, list]] = {v: {"mean": [], "p50": [], "inside": []} for v in variants}
    for name, graph in graphs.items():
        rs = runs[name]
        walls = np.array([r.wall_s for r in rs])
        m_mean, m_p50 = float(walls.mean()), float(np.median(walls))
        ci = _bootstrap(walls)
        direct = [t.prompt_tokens for r in rs for t in r.nodes if t.kind == "direct"]
        completion = [t.completion_tokens for r in rs for t in r.nodes]
        run_spec = replace(spec0, prompt_tokens=float(np.mean(direct)), answer_tokens=float(np.mean(completion)))
        q_errors = [(_service_model(r, predictor, args.max_batch) - r.wall_s) / r.wall_s for r in rs]
        per_query_errors += q_errors
        predictions = {}
        for variant, (spec, tokens) in variants.items():
            lat = _predict(graph, spec or run_spec, predictor, args.sim_queries, args.max_batch, tokens)
            e_mean, e_p50 = (lat.mean_s - m_mean) / m_mean, (lat.p50_s - m_p50) / m_p50
            errors[variant]["mean"].append(e_mean)
            errors[variant]["p50"].append(e_p50)
            inside = (ci["mean"][0] <= lat.mean_s <= ci["mean"][1], ci["p50"][0] <= lat.p50_s <= ci["p50"][1])
            errors[variant]["inside"].append(inside)
            predictions[variant] = {"mean_s": lat.mean_s, "p50_s": lat.p50_s, "p95_s": lat.p95_s,
                                    "rel_error_mean": e_mean, "rel_error_p50": e_p50,
                                    "inside_measured_90ci": {"mean": inside[0], "p50": inside[1]}}
            rows.append((name, variant, len(rs), m_mean, m_p50, lat.mean_s, lat.p50_s, e_mean, e_p50, inside))
        results[name] = {"measured_wall_s": walls.tolist(), "predictions": predictions, "measured_90ci": ci,
                         "A": run_spec.prompt_tokens, "B": run_spec.answer_tokens,
                         "per_query_rel_errors": q_errors,
                         "real_token_median_abs_rel_error": float(np.median(np.abs(q_errors))),
                         "accuracy": float(np.mean([r.correct for r in rs])),
                         "truncated_calls": sum(t.finish_reason == "length" for r in rs for t in r.nodes),
                         "calls": sum(len(r.nodes) for r in rs), "runs": [r.to_dict() for r in rs]}

    print("\nmeasured 90% bootstrap intervals over questions: "
          + "; ".join(f"{n} mean [{r['measured_90ci']['mean'][0]:.2f}, {r['measured_90ci']['mean'][1]:.2f}] "
                      f"p50 [{r['measured_90ci']['p50'][0]:.2f}, {r['measured_90ci']['p50'][1]:.2f}]"
                      for n, r in results.items()))
    print(f"{'graph':<12} {'tokens':<16} {'n':>3} {'meas mean':>9} {'meas p50':>9} {'pred mean':>9} {'pred p50':>9} "
          f"{'err mean':>9} {'err p50':>8}  (* outside the measured 90% interval)")
    for name, variant, n, mm, mp, pm, pp, em, ep, inside in rows:
        print(f"{name:<12} {variant:<16} {n:>3} {mm:>9.2f} {mp:>9.2f} {pm:>9.2f} {pp:>9.2f} {100 * em:>+8.1f}%"
              f"{' ' if inside[0] else '*'}{100 * ep:>+7.1f}%{' ' if inside[1] else '*'}")
    summary = {
        "median_abs_rel_error_per_query": float(np.median(np.abs(per_query_errors))),
        "mean_rel_error_per_query": float(np.mean(per_query_errors)),
        "by_token_model": {v: {"median_abs_rel_error_graph_mean_latency": float(np.median(np.abs(e["mean"]))),
                               "median_abs_rel_error_graph_p50_latency": float(np.median(np.abs(e["p50"]))),
                               "max_abs_rel_error_graph_p50_latency": float(np.max(np.abs(e["p50"]))),
                               "graphs_inside_measured_90ci": {"mean": sum(i[0] for i in e["inside"]),
                                                               "p50": sum(i[1] for i in e["inside"]),
                                                               "of": len(e["inside"])}}
                           for v, e in errors.items()},
    }
    print("\nmedian |relative error| over graphs (mean latency / p50 latency; worst p50):")
    for v, e in summary["by_token_model"].items():
        print(f"  {v:<16} {100 * e['median_abs_rel_error_graph_mean_latency']:5.1f}% / "
              f"{100 * e['median_abs_rel_error_graph_p50_latency']:5.1f}%; "
              f"worst {100 * e['max_abs_rel_error_graph_p50_latency']:5.1f}%; inside the measured 90% interval: "
              f"mean {e['graphs_inside_measured_90ci']['mean']}/{e['graphs_inside_measured_90ci']['of']}, "
              f"p50 {e['graphs_inside_measured_90ci']['p50']}/{e['graphs_inside_measured_90ci']['of']}")
    print("per query (service model, real tokens): median |err| "
          f"{100 * summary['median_abs_rel_error_per_query']:.1f}%, "
          f"mean signed err {100 * summary['mean_rel_error_per_query']:+.1f}%")
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (2 vCPUs shared with other jobs)")
    print(f"graph runs took {runs_s:.0f} s")
    out = {"summary": summary, "graphs": results, "token_stats": token_stats,
           "table": {"prefill": table.prefill, "decode": table.decode},
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
