"""``tts-sim validate``: run the top graphs of a search for real and compare with the simulator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tts_sim.cli.options import add_quiet, non_negative_float, positive_int, probability, progress_printer
from tts_sim.errors import ConfigError
from tts_sim.jsonio import read_json


def register(subparsers: argparse._SubParsersAction) -> None:
    from tts_sim.cli.options import add_common, non_negative_int
    from tts_sim.cli.profile import add_backend_options

    p = subparsers.add_parser("validate", help="run the top graphs for real: predicted vs measured accuracy/latency")
    p.add_argument("paths", nargs="+", metavar="RESULT_OR_GRAPH",
                   help="search result JSON, graph JSON, or a JSON list of graphs")
    p.add_argument("--top-k", type=positive_int, default=5, help="graphs to validate (best search scores first)")
    add_common(p, task=False)
    p.add_argument("--task", help="task (default: the search result's)")
    p.add_argument("--profile", metavar="PROFILE",
                   help="profile for the predictions: a file, 'scenario' (default) or 'measured:TASK'; one "
                        "measured for the real model (`tts-sim profile`) is best")
    p.add_argument("--data", help="the task's data file (tasks without packaged data)")
    p.add_argument("--questions", type=positive_int, default=20, help="held-out questions run per graph")
    p.add_argument("--offset", type=non_negative_int, default=0,
                   help="skip this many held-out questions (those not in the profile)")
    p.add_argument("--model-map", help="CATALOG=REAL,... : which real model runs each catalog model")
    p.add_argument("--substitute", metavar="MODEL", help="run every model of the graphs as MODEL (e.g. smollm2-135m)")
    add_real_run_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--report", metavar="FILE.md", help="write a Markdown report")
    p.add_argument("-o", "--out", metavar="FILE.json", help="write the full JSON report")
    add_quiet(p)
    add_backend_options(p)
    p.set_defaults(func=cmd_validate)


def add_real_run_options(p: argparse.ArgumentParser) -> None:
    """What ``validate`` and ``fidelity`` share: the backend's served names, the sampling settings
    (``real.validate.sampling_settings``) and the predicted latency's cluster and token lengths
    (``real.validate.latency_simulator``)."""
    p.add_argument("--served-name", action="append", metavar="REAL=SERVED",
                   help="name under which the backend serves a real model (openai servers)")
    p.add_argument("--max-new-tokens", type=positive_int, help="default: the profile's, else 256")
    p.add_argument("--temperature", type=non_negative_float, help="default: the profile's, else 0.7")
    p.add_argument("--top-p", type=probability, help="default: the profile's, else 1.0")
    p.add_argument("--cluster", default="cpu", help="simulated cluster for predicted latency")
    p.add_argument("--tokens", choices=("sampled", "mean", "paper"), default="sampled",
                   help="token lengths of predicted latency: the profile's reply-length distribution sampled per "
                        "request or its means, with template overheads; or the paper's A + d*B and B. "
                        "Profiles without token statistics always give the paper's")


def served_names(args: argparse.Namespace) -> dict[str, str]:
    """``--served-name REAL=SERVED`` options as a mapping."""
    from tts_sim.real.profiling.run import parse_models

    return parse_models(args.served_name) if args.served_name else {}


def _task_from(paths: list[str]) -> str:
    data = read_json(paths[0], "candidate file")  # names a missing or corrupted file before asking for --task
    if isinstance(data, dict):
        config, heldout = _dict_at(data, "config"), _dict_at(data, "heldout")
        space = _dict_at(config, "space")
        task = heldout.get("task") or config.get("task") or space.get("task")
        if isinstance(task, str) and task:
            return task
    raise ConfigError("pass --task (the first file does not name its task)")


def _dict_at(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def cmd_validate(args: argparse.Namespace) -> None:
    from tts_sim.cli.options import catalog_from, emit, profile_from
    from tts_sim.cli.profile import make_backend
    from tts_sim.real.evaluator import RealEvaluator
    from tts_sim.real.validate import (
        build_model_map,
        engine_batching,
        latency_simulator,
        load_candidates,
        parse_model_map,
        sampling_settings,
        task_spec_for,
        validate_graphs,
    )
    from tts_sim.sim.scenario import load_default_profile
    from tts_sim.tasks.questions import load_questions

    catalog = catalog_from(args)
    task = args.task or _task_from(args.paths)
    candidates = load_candidates(args.paths, args.top_k, catalog)
    model_map = build_model_map([c.graph for c in candidates], parse_model_map(args.model_map), args.substitute)
    unknown = sorted({m for m in model_map.values() if m not in catalog})
    if unknown:
        raise ConfigError(f"real model {unknown[0]!r} is not in the model catalog")
    served = served_names(args)

    profile = profile_from(args) or load_default_profile()
    spec, has_stats = task_spec_for(profile, task)

    excluded = set(profile.tasks[task].question_ids) if task in profile.tasks else set()
    pool = [q for q in load_questions(task, args.data) if q.id not in excluded][args.offset:]
    heldout = pool[:args.questions]
    if len(heldout) < args.questions:
        raise ConfigError(f"{task}: only {len(heldout)} held-out questions left (asked for {args.questions})")

    max_new, temperature, top_p = sampling_settings(profile, args.max_new_tokens, args.temperature, args.top_p)
    backend = make_backend(args)
    real = RealEvaluator(task, backend, spec=spec, questions=heldout, catalog=catalog,
                         model_map={m: served.get(r, r) for m, r in model_map.items()}, max_new_tokens=max_new,
                         temperature=temperature, top_p=top_p, seed=args.seed,
                         progress=progress_printer(args))
    simulated, lengths = latency_simulator(profile, spec, cluster=args.cluster, tokens=args.tokens,
                                           n_questions=args.questions, catalog=catalog, **engine_batching(backend))
    config: dict[str, Any] = {"backend": args.backend, "n_questions": len(heldout), "max_new_tokens": max_new,
                              "temperature": temperature, "top_p": top_p, "seed": args.seed, "top_k": args.top_k,
                              "task_tokens": {"A": spec.prompt_tokens, "B": spec.answer_tokens,
                                              "measured": has_stats,
                                              "lengths": lengths},
                              "heldout_question_ids": [q.id for q in heldout], "served_names": served}
    report = validate_graphs(candidates, real, simulated, model_map=model_map, seed=args.seed, catalog=catalog,
                             progress=progress_printer(args), config=config)
    if args.report:
        Path(args.report).write_text(report.to_markdown())
    data = report.to_dict()
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=1, default=str) + "\n")
    emit(args, data, report.to_text() + (f"\nreport: {args.report}" if args.report else ""))
