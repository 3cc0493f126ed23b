"""``tts-sim sweep width-depth``: the paper's accuracy / FLOPs / latency heat-maps over graph shapes."""

from __future__ import annotations

import argparse
from pathlib import Path

from tts_sim.cli.options import (
    add_cluster_options,
    add_common,
    arrival_from,
    catalog_from,
    emit,
    positive_int,
    profile_from,
    sim_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    from tts_sim.core.models import DEFAULT_OUTPUT_MODEL, REFERENCE_MODEL

    p = sub.add_parser("sweep", help="accuracy/FLOPs/latency heat-maps over graph shapes")
    p.add_argument("kind", choices=["width-depth"])
    add_common(p)
    p.add_argument("--model", default=REFERENCE_MODEL, help="model of every worker node")
    p.add_argument("--output-model", default=DEFAULT_OUTPUT_MODEL, help="model of the output node")
    p.add_argument("--max-width", type=positive_int, default=6)
    p.add_argument("--max-depth", type=positive_int, default=6)
    p.add_argument("-o", "--out", help="folder for the PNG heat-maps and sweep.json")
    add_cluster_options(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> None:
    from tts_sim.sim.sweep import width_depth_sweep

    options = sim_options(args)
    result = width_depth_sweep(
        task=args.task, model=args.model, max_width=args.max_width, max_depth=args.max_depth,
        output_model=args.output_model, cluster=args.cluster,
        arrival=arrival_from(args) if args.cluster else None, n_queries=args.queries,
        profile=profile_from(args), catalog=catalog_from(args), out_dir=Path(args.out) if args.out else None,
        **options,
    )
    emit(args, result.to_dict(), result.to_text())
