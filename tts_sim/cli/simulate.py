"""``tts-sim simulate``: predict a graph's accuracy, FLOPs and latency on a simulated cluster."""

from __future__ import annotations

import argparse

from tts_sim.cli.options import (
    add_cluster_options,
    add_common,
    arrival_from,
    catalog_from,
    emit,
    load_text,
    positive_int,
    profile_from,
    sim_options,
    table,
)
from tts_sim.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="predict a graph's accuracy, FLOPs and latency")
    p.add_argument("graph")
    add_common(p)
    add_cluster_options(p)
    p.add_argument("--questions", type=positive_int, help="score on the first N questions (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled run")
    p.add_argument("--trace", metavar="FILE",
                   help="write the simulated timeline (Trace Event Format JSON: Perfetto, chrome://tracing)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> None:
    from tts_sim.core.graph import Graph
    from tts_sim.sim.evaluator import SimulatedEvaluator

    cat = catalog_from(args)
    options = sim_options(args)
    if args.trace and not args.cluster:
        raise ConfigError("--trace needs --cluster (it writes the simulated timeline)")
    g = Graph.load(args.graph, cat)
    if args.cluster:
        from tts_sim.sim.cluster import parse_cluster

        parse_cluster(args.cluster)  # a bad spec fails before the profile is loaded and fitted
    ev = SimulatedEvaluator(args.task, profile=profile_from(args), cluster=args.cluster,
                            arrival=arrival_from(args) if args.cluster else None, n_queries=args.queries,
                            catalog=cat, **options)
    n = min(args.questions or ev.n_questions, ev.n_questions)
    result = ev.evaluate(g, range(n), seed=args.seed)
    exp = ev.expected(g, range(n))
    interval = ev.accuracy_interval(g, range(n))
    lat = result.latency
    rows = [
        ("accuracy (one sampled run)", f"{result.accuracy:.3f}  [{result.ci_low:.3f}, {result.ci_high:.3f}] 95% CI"),
        ("accuracy (expected)", f"{exp.accuracy:.3f}"),
        ("accuracy 95% prediction interval", f"[{interval.low:.3f}, {interval.high:.3f}]  ({interval.includes})"),
        ("questions", result.n_questions),
        ("FLOPs / query", f"{result.flops:.4g}"),
        ("budget units", f"{result.budget_units:.2f}"),
        ("profile", result.meta["profile"]),
    ]
    if lat:
        rows += [
            ("cluster", lat.cluster),
            ("load", load_text(lat)),
            ("scheduler", lat.scheduler),
            ("latency p50 / p95 / p99 (s)", f"{lat.p50_s:.3f} / {lat.p95_s:.3f} / {lat.p99_s:.3f}"),
            ("latency mean (s)", f"{lat.mean_s:.3f}"),
            ("throughput (queries/s)", f"{lat.throughput_qps:.3f}"),
            ("overloaded", f"YES: {lat.overload_reason} (percentiles grow with --queries)" if lat.overloaded
             else "no"),
            ("utilisation", ", ".join(f"{k} {v:.0%}" for k, v in lat.utilisation.items())),
            ("KV cache peak", ", ".join(f"{k} {v:.1%}" for k, v in lat.kv_peak.items())),
            ("preemptions", lat.preemptions),
            ("prefill tokens (saved by prefix caching)", f"{lat.prefill_tokens} ({lat.prefill_tokens_saved})"),
            ("latency predictor", lat.predictor),
        ]
        if args.trace:
            from tts_sim.sim.cluster.trace import write_trace

            assert ev.simulator is not None  # --trace needs --cluster (checked above)
            run = ev.simulator.simulate(g, ev.task, ev.arrival, args.queries, seed=args.seed or 0, record=True)
            rows.append(("trace", str(write_trace(run, args.trace))))
    data = result.to_dict()
    data["expected_accuracy"] = exp.accuracy
    data["accuracy_interval"] = interval.to_dict()
    emit(args, data, table(["metric", "value"], rows))
