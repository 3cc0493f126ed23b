"""``tts-sim graph check|show|draw|preset``: validate, print, draw or write graphs."""

from __future__ import annotations

import argparse
from pathlib import Path

from tts_sim.cli.options import add_common, catalog_from, emit, positive_float, positive_int
from tts_sim.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from tts_sim.core.models import DEFAULT_OUTPUT_MODEL, REFERENCE_MODEL

    p = sub.add_parser("graph", help="check, show, draw or write graphs")
    gsub = p.add_subparsers(dest="graph_command", required=True, parser_class=type(p))
    q = gsub.add_parser("check", help="validate a graph and print its FLOPs and budget units")
    q.add_argument("graph")
    q.add_argument("--budget", type=positive_float, help="budget in units to check against")
    add_common(q)
    q.set_defaults(func=cmd_check)
    q = gsub.add_parser("show", help="print a graph, one line per node")
    q.add_argument("graph")
    add_common(q, task=False)
    q.set_defaults(func=cmd_show)
    q = gsub.add_parser("draw", help="draw a graph as a PNG")
    q.add_argument("graph")
    q.add_argument("-o", "--out", help="PNG path (default: GRAPH with .png, never overwritten without --force)")
    q.add_argument("--force", action="store_true", help="overwrite an existing PNG")
    add_common(q, task=False)
    q.set_defaults(func=cmd_draw)
    q = gsub.add_parser("preset", help="write one of the paper's fixed shapes")
    q.add_argument("shape", choices=["parallel", "chain", "grid", "single"])
    q.add_argument("--model", default=REFERENCE_MODEL, help="model of the worker nodes")
    q.add_argument("--width", type=positive_int, default=3, help="parallel/grid width")
    q.add_argument("--depth", type=positive_int, default=3, help="chain/grid depth")
    q.add_argument("--output-model", default=DEFAULT_OUTPUT_MODEL, help="model of the output node")
    q.add_argument("-o", "--out", help="write the graph JSON here (else print it)")
    add_common(q, task=False)
    q.set_defaults(func=cmd_preset)


def cmd_check(args: argparse.Namespace) -> None:
    from tts_sim.core.flops import budget_units, graph_flops
    from tts_sim.core.graph import Graph
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


def cmd_show(args: argparse.Namespace) -> None:
    from tts_sim.core.graph import Graph

    g = Graph.load(args.graph, catalog_from(args))
    emit(args, g.to_dict(), g.to_text())


def cmd_draw(args: argparse.Namespace) -> None:
    from tts_sim.core.draw import draw_graph
    from tts_sim.core.graph import Graph

    cat = catalog_from(args)
    g = Graph.load(args.graph, cat)
    out = Path(args.out or Path(args.graph).with_suffix(".png"))
    if args.out is None and out.exists() and not args.force:
        raise ConfigError(f"{out} exists: pass -o FILE, or --force to overwrite it")
    draw_graph(g, out, catalog=cat)
    emit(args, {"png": str(out)}, f"wrote {out}")


def cmd_preset(args: argparse.Namespace) -> None:
    from tts_sim.core import presets

    cat = catalog_from(args)
    if args.shape == "single":
        g = presets.single(args.model, cat)
    else:
        width = 1 if args.shape == "chain" else args.width
        depth = 1 if args.shape == "parallel" else args.depth
        g = presets.grid(width, depth, args.model, args.output_model, cat)
    if args.out:
        g.save(args.out)
    emit(args, g.to_dict(), f"wrote {args.out}" if args.out else g.to_json())
