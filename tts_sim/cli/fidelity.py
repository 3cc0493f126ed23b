"""``tts-sim fidelity``: held-out graphs for real on held-out questions vs the simulator's predictions."""

from __future__ import annotations

import argparse
import shlex
import time
from typing import Any

from tts_sim.cli.options import add_quiet
from tts_sim.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    from tts_sim.cli.options import add_common, non_negative_int, positive_int
    from tts_sim.cli.profile import add_backend_options
    from tts_sim.cli.validate import add_real_run_options

    p = subparsers.add_parser("fidelity", help="run held-out graphs for real: predicted vs measured accuracy "
                                               "(with intervals) and latency, summary figures, JSON/Markdown/PNG")
    add_common(p, task=False)
    p.add_argument("--profile", required=True, metavar="PROFILE",
                   help="the profile whose predictions are checked: a file or 'measured:TASK' (a measured one: it "
                        "names its questions)")
    p.add_argument("--task", help="task (default: the profile's, when it has exactly one)")
    p.add_argument("--data", help="the task's data file (tasks without packaged data)")
    g = p.add_argument_group("graphs (held out: give a file, draw some, or both)")
    g.add_argument("--graphs", action="append", metavar="FILE",
                   help="a graph JSON file or a JSON list of graphs (repeatable)")
    g.add_argument("--generate", type=non_negative_int, default=0, metavar="N",
                   help="draw N distinct random graphs over the profile's models (seeded by --seed)")
    g.add_argument("--max-width", type=positive_int, default=6, help="widest level of a drawn graph")
    g.add_argument("--max-depth", type=non_negative_int, default=3, help="deepest drawn graph (levels before the "
                                                                         "output node)")
    q = p.add_argument_group("questions (held out: none may be one the profile was measured on)")
    q.add_argument("--questions", type=positive_int, default=150, help="questions run per graph")
    q.add_argument("--offset", type=non_negative_int,
                   help="first question (index into the task's data) (default: the first window of --questions "
                        "that the profile never saw)")
    q.add_argument("--latency-questions", type=non_negative_int, default=30, metavar="N",
                   help="run the first N questions of each graph one at a time: their wall times are the measured "
                        "latency")
    q.add_argument("--batch", type=positive_int, default=16,
                   help="questions run together after those (one backend call per level and model)")
    add_real_run_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (graphs drawn, sampling, intervals)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for fidelity_TASK.json/.md/.png and the journal a killed run resumes from")
    p.add_argument("--repredict", metavar="REPORT",
                   help="no real runs: predict the graphs of this finished fidelity_TASK.json again with --profile "
                        "(e.g. after the quality model changed), keeping its measurements; writes to --out")
    add_quiet(p)
    add_backend_options(p)
    p.set_defaults(func=cmd_fidelity)


def _task(args: argparse.Namespace, profile: Any) -> str:
    if args.task:
        return str(args.task)
    if len(profile.tasks) == 1:
        return str(next(iter(profile.tasks)))
    raise ConfigError(f"pass --task (the profile has {len(profile.tasks)} tasks: "
                      f"{', '.join(sorted(profile.tasks)) or 'none'})")


def cmd_fidelity(args: argparse.Namespace) -> None:
    from tts_sim.cli.options import catalog_from, emit, profile_from
    from tts_sim.cli.profile import make_backend
    from tts_sim.cli.validate import served_names
    from tts_sim.core.prompts import PROMPTS_VERSION
    from tts_sim.real.executor import GraphExecutor
    from tts_sim.real.fidelity import FidelityPlan, assemble, heldout_graphs, heldout_questions, measure
    from tts_sim.real.fidelity.run import check_models, journal_path, model_pool, write_outputs
    from tts_sim.real.validate import (
        engine_batching,
        latency_simulator,
        load_candidates,
        sampling_settings,
        task_spec_for,
    )
    from tts_sim.tasks.questions import load_questions

    catalog = catalog_from(args)
    profile = profile_from(args)
    if profile is None:
        raise ConfigError("fidelity needs --profile")
    if args.repredict:
        _repredict(args, profile, catalog)
        return
    task = _task(args, profile)
    tp = profile.task(task)
    if not tp.question_ids:
        raise ConfigError(f"profile {profile.label!r} does not name its {task} questions: cannot tell held-out "
                          f"ones apart (profile with `tts-sim profile`)")
    if not args.graphs and not args.generate:
        raise ConfigError("no graphs: give --graphs FILE and/or --generate N")
    questions = heldout_questions(load_questions(task, args.data), tp.question_ids, args.offset, args.questions, task)
    served = served_names(args)
    spec, has_stats = task_spec_for(profile, task)
    max_new, temperature, top_p = sampling_settings(profile, args.max_new_tokens, args.temperature, args.top_p)

    given = [c.graph for c in load_candidates(args.graphs, 10**9, catalog)] if args.graphs else []  # scored first
    backend = make_backend(args)
    simulated, lengths = latency_simulator(profile, spec, cluster=args.cluster, tokens=args.tokens,
                                           n_questions=max(args.latency_questions, 1),
                                           catalog=catalog, **engine_batching(backend))
    pool = model_pool(simulated)
    graphs = given + heldout_graphs(args.generate, pool, args.seed, max_width=args.max_width,
                                    max_depth=args.max_depth, exclude=given, catalog=catalog)
    check_models(graphs, pool)
    profiled_models = profile.metadata.get("models", {})
    model_map = {m: served.get(r, r) for m in pool
                 for r in [str(profiled_models.get(m, {}).get("backend_model", m))]}
    plan = FidelityPlan(task, tuple(graphs), tuple(questions), min(args.latency_questions, len(questions)),
                        args.batch, args.seed)
    executor = GraphExecutor(backend, task, model_map=model_map, max_new_tokens=max_new, temperature=temperature,
                             top_p=top_p, seed=args.seed)
    # what the measurements depend on (not the profile itself: a refitted one re-predicts from the same journal):
    # the plan, the sampling, what serves each model (engine version, device, quantisation), the prompts and
    # whether one level's models run at once (the wall times depend on it)
    served_by = {m: _info(backend, m) for m in sorted(set(model_map.values()))}
    journal_config = plan.journal_config(backend=args.backend, model_map=model_map, max_new_tokens=max_new,
                                         temperature=temperature, top_p=top_p, served_by=served_by,
                                         prompts_version=PROMPTS_VERSION,
                                         concurrent_models=executor.parallel_models)
    t0 = time.perf_counter()
    done = measure(plan, executor, journal_path(args.out, task), journal_config, quiet=args.quiet)
    measure_s = time.perf_counter() - t0

    command = "tts-sim " + shlex.join(getattr(args, "argv", []) or [])
    config: dict[str, Any] = {
        **journal_config, "questions_text": f"{questions[0].id} .. {questions[-1].id}",
        "cluster": args.cluster, "scheduler": simulated.simulator.scheduler.describe(), "token_lengths": lengths,
        "task_tokens_measured": has_stats,
        "interval_text": "95% prediction interval of a run on this many held-out questions: the fusion fit's "
                         "coefficient uncertainty (draws from the records' likelihood) + the questions' sampling noise",
        "graphs_given": len(given), "graphs_generated": args.generate, "max_width": args.max_width,
        "max_depth": args.max_depth}
    t0 = time.perf_counter()
    report = assemble(plan, done, simulated, profile=profile.label, command=command, config=config)
    report.config["timings"] = {"measure_s": round(measure_s, 3), "predict_s": round(time.perf_counter() - t0, 3),
                                "note": "measure_s: this invocation's real runs (a resumed run counts only "
                                        "what it ran)"}
    paths = write_outputs(report, args.out)
    emit(args, report.to_dict(), report.to_text() + "\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))


def _repredict(args: argparse.Namespace, profile: Any, catalog: Any) -> None:
    """``--repredict``: the report's measurements with this profile's accuracy predictions."""
    from tts_sim.cli.options import emit
    from tts_sim.jsonio import read_json
    from tts_sim.real.fidelity import FidelityReport
    from tts_sim.real.fidelity.run import check_models, repredict, write_outputs
    from tts_sim.real.validate import task_spec_for
    from tts_sim.sim.quality import QualityModel

    if args.graphs or args.generate:
        raise ConfigError("--repredict takes its graphs from the report: drop --graphs/--generate")
    report = FidelityReport.from_dict(read_json(args.repredict, "fidelity report"), f"fidelity report {args.repredict}")
    if args.task and args.task != report.task:
        raise ConfigError(f"fidelity report {args.repredict} is of task {report.task!r}, not {args.task!r}")
    if report.task not in profile.tasks:
        raise ConfigError(f"profile {profile.label!r} has no task {report.task!r} (it has: "
                          f"{', '.join(sorted(profile.tasks)) or 'none'})")
    spec, _ = task_spec_for(profile, report.task)
    quality = QualityModel.from_profile(profile, spec, catalog)
    check_models([r.graph for r in report.rows], sorted(quality.models))
    command = "tts-sim " + shlex.join(getattr(args, "argv", []) or [])
    seed = report.config.get("seed", 0)
    new = repredict(report, quality, profile=profile.label, command=command, seed=seed if isinstance(seed, int) else 0)
    paths = write_outputs(new, args.out)
    emit(args, new.to_dict(), new.to_text() + "\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))


def _info(backend: Any, model: str) -> dict[str, str]:
    info = backend.info(model)
    return {"backend": info.backend, "version": info.version, "provider": info.provider, "device": info.device,
            "quantization": info.quantization}
