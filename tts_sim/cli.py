"""The ``tts-sim`` command line. Every command takes ``--json`` for scripts; bad input gives one
line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tts_sim.argtypes import positive_float, positive_int
from tts_sim.errors import ConfigError, TtsSimError

QUANTIZATIONS = ("fp32", "int8", "int4", "int8-dynamic")  # backends.onnxruntime.QUANTIZATIONS, without importing it

Handler = Callable[[argparse.Namespace], Any]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


# ----- output helpers -----------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([line, rule, *body])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) >= 1e4 or (value and abs(value) < 1e-2):
            return f"{value:.4g}"
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=_json_default) if getattr(args, "json", False) else text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def catalog_from(args: argparse.Namespace):
    from tts_sim.models import DEFAULT_CATALOG, ModelCatalog, load_models

    path = getattr(args, "models_file", None)
    return load_models(path, ModelCatalog()) if path else DEFAULT_CATALOG


def profile_from(args: argparse.Namespace):
    from tts_sim.profile import Profile

    path = getattr(args, "profile", None)
    return Profile.load(path) if path else None


def arrival_from(args: argparse.Namespace):
    from tts_sim.cluster import ClosedLoop, OpenLoop

    if getattr(args, "concurrency", None):
        return ClosedLoop(args.concurrency)
    return OpenLoop(args.qps)


def add_common(p: argparse.ArgumentParser, task: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--models-file", metavar="FILE", help="TOML/JSON file of extra models")
    if task:
        p.add_argument("--task", default="math", help="task name (math, mmlu, humaneval, gsm8k, ...)")


def add_cluster_options(p: argparse.ArgumentParser, default_cluster: str | None = None) -> None:
    p.add_argument("--cluster", default=default_cluster, help="e.g. 2xH100, 1xA100-80GB,2xL4, cpu")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--qps", type=positive_float, default=1.0, help="open-loop Poisson arrival rate")
    load.add_argument("--concurrency", type=positive_int, help="closed loop: queries in flight")
    p.add_argument("--queries", type=positive_int, default=1000, help="queries to simulate")
    p.add_argument("--profile", metavar="FILE", help="profile file (default: the embedded scenario)")


# ----- models ---------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> None:
    cat = catalog_from(args)
    specs = cat.specs()
    rows = [(s.name, s.family, f"{s.params / 1e9:.2f}B", s.layers, s.hidden, f"{s.heads}/{s.kv_heads}",
             s.head_dim, f"{s.weight_bytes / 2**30:.2f}", s.source) for s in specs]
    emit(args, [s.to_dict() for s in specs],
         table(["model", "family", "params", "layers", "hidden", "heads/kv", "head_dim", "weights GiB", "source"],
               rows))


# ----- graph ----------------------------------------------------------------------------------
def cmd_graph_check(args: argparse.Namespace) -> None:
    from tts_sim.flops import budget_units, graph_flops
    from tts_sim.graph import Graph
    from tts_sim.tasks import get_task

    cat = catalog_from(args)
    g = Graph.load(args.graph, cat)
    task = get_task(args.task)
    flops = graph_flops(g, task, cat)
    units = budget_units(flops, task, cat)
    dead = [n.id for n in g.nodes if n.id not in g.levels]
    data = {"valid": True, "nodes": len(g.nodes), "executed": len(g.executed), "not_executed": dead,
            "width": g.width, "depth": g.depth, "flops": flops, "budget_units": units, "task": task.name}
    if args.budget is not None:
        data["budget"] = args.budget
        data["feasible"] = units <= args.budget + 1e-9
    text = (f"valid graph: {len(g.executed)} executed nodes (width {g.width}, depth {g.depth})\n"
            f"FLOPs on {task.name}: {flops:.4g} = {units:.2f} budget units")
    if dead:
        text += f"\nwarning: not executed (no path to the output): {', '.join(dead)}"
    if args.budget is not None:
        text += f"\nbudget {args.budget:g}: {'feasible' if data['feasible'] else 'OVER BUDGET'}"
    emit(args, data, text)


def cmd_graph_show(args: argparse.Namespace) -> None:
    from tts_sim.graph import Graph

    g = Graph.load(args.graph, catalog_from(args))
    emit(args, g.to_dict(), g.to_text())


def cmd_graph_draw(args: argparse.Namespace) -> None:
    from tts_sim.draw import draw_graph
    from tts_sim.graph import Graph

    cat = catalog_from(args)
    g = Graph.load(args.graph, cat)
    out = Path(args.output or Path(args.graph).with_suffix(".png"))
    draw_graph(g, out, catalog=cat)
    emit(args, {"png": str(out)}, f"wrote {out}")


def cmd_graph_preset(args: argparse.Namespace) -> None:
    from tts_sim import presets

    cat = catalog_from(args)
    if args.shape == "single":
        g = presets.single(args.model, cat)
    else:
        width = 1 if args.shape == "chain" else args.width
        depth = 1 if args.shape == "parallel" else args.depth
        g = presets.grid(width, depth, args.model, args.output_model, cat)
    if args.output:
        g.save(args.output)
    emit(args, g.to_dict(), f"wrote {args.output}" if args.output else g.to_json())


# ----- simulate -------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> None:
    from tts_sim.graph import Graph
    from tts_sim.simulated import SimulatedEvaluator

    cat = catalog_from(args)
    g = Graph.load(args.graph, cat)
    ev = SimulatedEvaluator(args.task, profile=profile_from(args), cluster=args.cluster,
                            arrival=arrival_from(args) if args.cluster else None, n_queries=args.queries,
                            catalog=cat)
    n = min(args.questions or ev.n_questions, ev.n_questions)
    result = ev.evaluate(g, range(n), seed=args.seed)
    exp = ev.expected(g, range(n))
    lat = result.latency
    rows = [
        ("accuracy (one sampled run)", f"{result.accuracy:.3f}  [{result.ci_low:.3f}, {result.ci_high:.3f}] 95% CI"),
        ("accuracy (expected)", f"{exp.accuracy:.3f}"),
        ("questions", result.n_questions),
        ("FLOPs / query", f"{result.flops:.4g}"),
        ("budget units", f"{result.budget_units:.2f}"),
        ("profile", result.meta["profile"]),
    ]
    if lat:
        rows += [
            ("cluster", lat.cluster),
            ("load", f"closed loop, {args.concurrency} in flight" if args.concurrency else f"{args.qps:g} queries/s"),
            ("latency p50 / p95 / p99 (s)", f"{lat.p50_s:.3f} / {lat.p95_s:.3f} / {lat.p99_s:.3f}"),
            ("latency mean (s)", f"{lat.mean_s:.3f}"),
            ("throughput (queries/s)", f"{lat.throughput_qps:.3f}"),
            ("utilisation", ", ".join(f"{k} {v:.0%}" for k, v in lat.utilisation.items())),
            ("latency predictor", lat.predictor),
        ]
    data = result.to_dict()
    data["expected_accuracy"] = exp.accuracy
    emit(args, data, table(["metric", "value"], rows))


# ----- sweep ----------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> None:
    from tts_sim.sweep import width_depth_sweep

    result = width_depth_sweep(
        task=args.task, model=args.model, max_width=args.max_width, max_depth=args.max_depth,
        output_model=args.output_model, cluster=args.cluster,
        arrival=arrival_from(args) if args.cluster else None, n_queries=args.queries,
        profile=profile_from(args), catalog=catalog_from(args), out_dir=Path(args.out) if args.out else None,
    )
    emit(args, result.to_dict(), result.to_text())


# ----- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from tts_sim.models import DEFAULT_OUTPUT_MODEL, REFERENCE_MODEL

    parser = _Parser(prog="tts-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("models", help="list the model catalog, or prepare a real model")
    add_common(p, task=False)
    p.set_defaults(func=cmd_models)
    msub = p.add_subparsers(dest="models_command", parser_class=_Parser)
    _register_models_prepare(msub)

    p = sub.add_parser("graph", help="check, show, draw or write graphs")
    gsub = p.add_subparsers(dest="graph_command", required=True, parser_class=_Parser)
    q = gsub.add_parser("check", help="validate a graph and print its FLOPs and budget units")
    q.add_argument("graph")
    q.add_argument("--budget", type=positive_float, help="budget in units to check against")
    add_common(q)
    q.set_defaults(func=cmd_graph_check)
    q = gsub.add_parser("show", help="print a graph, one line per node")
    q.add_argument("graph")
    add_common(q, task=False)
    q.set_defaults(func=cmd_graph_show)
    q = gsub.add_parser("draw", help="draw a graph as a PNG")
    q.add_argument("graph")
    q.add_argument("-o", "--output", help="PNG path (default: GRAPH with .png)")
    add_common(q, task=False)
    q.set_defaults(func=cmd_graph_draw)
    q = gsub.add_parser("preset", help="write one of the paper's fixed shapes")
    q.add_argument("shape", choices=["parallel", "chain", "grid", "single"])
    q.add_argument("--model", default=REFERENCE_MODEL)
    q.add_argument("--width", type=positive_int, default=3)
    q.add_argument("--depth", type=positive_int, default=3)
    q.add_argument("--output-model", default=DEFAULT_OUTPUT_MODEL)
    q.add_argument("-o", "--output", help="write the graph JSON here (else print it)")
    add_common(q, task=False)
    q.set_defaults(func=cmd_graph_preset)

    p = sub.add_parser("simulate", help="predict a graph's accuracy, FLOPs and latency")
    p.add_argument("graph")
    add_common(p)
    add_cluster_options(p)
    p.add_argument("--questions", type=positive_int, help="score on the first N questions (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("sweep", help="accuracy/FLOPs/latency heat-maps over graph shapes")
    p.add_argument("kind", choices=["width-depth"])
    add_common(p)
    p.add_argument("--model", default=REFERENCE_MODEL)
    p.add_argument("--output-model", default=DEFAULT_OUTPUT_MODEL)
    p.add_argument("--max-width", type=positive_int, default=6)
    p.add_argument("--max-depth", type=positive_int, default=6)
    p.add_argument("--out", help="folder for the PNG heat-maps and the JSON")
    add_cluster_options(p)
    p.set_defaults(func=cmd_sweep)

    for register in _extra_commands():
        register(sub)
    return parser


def _register_models_prepare(msub: argparse._SubParsersAction) -> None:
    p = msub.add_parser("prepare", help="convert a GGUF / Hugging Face model to ONNX")
    p.add_argument("name", help="smollm2-135m, gemma-3-270m, or a .gguf file / HF folder")
    p.add_argument("--quantization", "-q", choices=QUANTIZATIONS, default="fp32",
                   help="int8/int4: weight-only (MatMulNBits); int8-dynamic: quantize_dynamic (mixes batch rows)")
    p.add_argument("--engine", choices=("onnx", "genai"), default="onnx",
                   help="onnx: optimum export; genai: onnxruntime-genai model builder (fused attention, fastest; "
                        "fp32/int8/int4)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="genai: build for this device")
    p.add_argument("--cache-dir", help="default: $TTS_SIM_CACHE or ~/.cache/tts-sim/models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_prepare)


def cmd_models_prepare(args: argparse.Namespace) -> None:
    from backends.onnxruntime import prepare_model

    progress = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    path = prepare_model(args.name, args.quantization, Path(args.cache_dir) if args.cache_dir else None,
                         progress=progress, engine=args.engine, execution_provider=args.device)
    emit(args, {"model_dir": str(path)}, f"ready: {path}")


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Commands living next to their feature (search, bench, profile, validate)."""
    import importlib

    found = []
    for module in ("tts_sim.search.cli", "tts_sim.bench.cli", "tts_sim.profiling.cli", "tts_sim.validate_cli"):
        try:
            found.append(importlib.import_module(module).register)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    return found


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except TtsSimError as exc:
        print(f"tts-sim: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # unreadable files, bad values deep inside a library
        if os.environ.get("TTS_SIM_DEBUG"):
            raise
        print(f"tts-sim: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tts-sim: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
