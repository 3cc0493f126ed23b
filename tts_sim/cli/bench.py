"""``tts-sim bench``: the baseline comparison suite. Flags and defaults come from ``BenchConfig``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from tts_sim.bench.config import FULL_WORLDS, BenchConfig, builtin_searchers, parse_seeds
from tts_sim.cli.options import add_quiet, emit, positive_int, table
from tts_sim.errors import ConfigError

_LISTS = {"searchers": str, "priors": str, "searcher_options": str,
          "tasks": str, "budgets": float, "pool": str, "regret_budgets": float, "regret_pool": str, "worlds": str}
_INTS = {"evals", "search_questions", "heldout_questions", "split_seed", "max_nodes", "regret_max_nodes",
         "regret_limit", "workers", "reference_evals"}
_NON_NEGATIVE = {"split_seed", "reference_evals"}


def register(subparsers: argparse._SubParsersAction) -> None:

    p = subparsers.add_parser("bench", help="compare searchers over tasks x budgets x seeds (JSONL, report, plots)",
                              description="Compare searchers over tasks x budgets x seeds on the simulator: "
                                          "results stream to OUT/results.jsonl (resumable), then OUT/report.md "
                                          "and PNG plots.")
    for f in fields(BenchConfig):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        flag = "--" + f.name.replace("_", "-")
        shown = ",".join(str(v) if not isinstance(v, float) else f"{v:g}" for v in default) \
            if isinstance(default, tuple) else default
        if f.name == "seeds" and isinstance(default, tuple):
            shown = f"{len(default)}"
        help_text = f.metadata.get("help", "") + (f" (default: {shown})" if default is not None else "")
        if f.name in _LISTS or f.name == "seeds":
            p.add_argument(flag, nargs="+", metavar="X", help=help_text)
        elif f.name in _INTS:
            kind = positive_int if f.name not in _NON_NEGATIVE else int
            p.add_argument(flag, type=kind, help=help_text)
        else:
            p.add_argument(flag, help=help_text)
    p.add_argument("--resume", dest="resume", action="store_true", default=True,
                   help="skip jobs already in OUT/results.jsonl (default)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh (deletes old results)")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from OUT/results.jsonl")
    p.add_argument("--full", action="store_true",
                   help="the whole grid: every built-in searcher (adds bo-forest) in the default world and an "
                        "ensemble of 5 (--worlds default ensemble:5), unless --searchers / --worlds say otherwise "
                        "(estimated 1-1.5 hours on 2 cores)")
    add_quiet(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_bench)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """A ``BenchConfig`` from the parsed flags (unset flags keep the dataclass defaults)."""
    values: dict[str, Any] = {}
    for f in fields(BenchConfig):
        raw = getattr(args, f.name, None)
        if raw is None:
            continue
        if f.name == "seeds":
            items = _split(raw)
            values["seeds"] = parse_seeds(items[0]) if len(items) == 1 else tuple(_number(int, s, "seed")
                                                                                  for s in items)
        elif f.name in _LISTS:
            items = _split(raw)
            if f.name == "regret_budgets" and [s.lower() for s in items] == ["none"]:
                values[f.name] = ()
                continue
            values[f.name] = tuple(_number(_LISTS[f.name], s, f.name.replace("_", " ").rstrip("s")) for s in items)
        else:
            values[f.name] = raw
    if getattr(args, "full", False):
        values.setdefault("searchers", builtin_searchers())
        values.setdefault("worlds", FULL_WORLDS)
    return BenchConfig(**values)


def _split(raw: list[str]) -> list[str]:
    return [s.strip() for item in raw for s in item.split(",") if s.strip()]


def _number(kind: type, text: str, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"bench: {what} {text!r} is not a {'number' if kind is float else 'valid value'}") from None


def cmd_bench(args: argparse.Namespace) -> None:
    from tts_sim.bench.analysis import analyse
    from tts_sim.bench.report import summary_rows, write_report
    from tts_sim.bench.robust import robust_markdown
    from tts_sim.bench.runner import RESULTS, last_wall, plan_jobs, read_rows, run_bench, verify_settings

    config = config_from_args(args)
    out = Path(config.out)
    if args.report_only:
        jobs = plan_jobs(config)
        verify_settings(out, config)
        rows, _ = read_rows(out / RESULTS)
        if not rows:
            raise ConfigError(f"no results in {out / RESULTS}: run the bench first")
        keys = {j.key for j in jobs}
        rows = [r for r in rows if r["key"] in keys]
        wall, ran, skipped, failed = last_wall(out), 0, len(rows), []
    else:
        run = run_bench(config, resume=args.resume, progress=False if args.quiet else None)
        if run.dropped_partial_line:
            print(f"bench: dropped a truncated last line of {out / RESULTS} (its job ran again)", file=sys.stderr)
        rows, wall, ran, skipped, failed = run.rows, run.wall_s, run.ran, run.skipped, run.failed
        jobs = plan_jobs(config)
    if failed and not rows:  # nothing to report: say why in one line instead of drawing empty plots
        raise ConfigError(f"all {len(failed)} bench jobs failed (first: {failed[0]})")
    labels = {j.key: j.name for j in jobs}  # a row run under another set of priors gets this bench's label
    rows = [{**r, "searcher": labels[r["key"]]} if r["key"] in labels else r for r in rows]
    worlds = config.world_names()
    main_rows = [r for r in rows if r.get("world", "default") == worlds[0]]  # the main report: the first world
    analysis = analyse(main_rows, config.labels(), config.cells(), config.agent_cost_model)
    robust, robust_data = robust_markdown(rows, config.labels(), worlds, out)
    report = write_report(analysis, config, out, wall_s=wall, jobs=len(jobs), extra=robust)
    check = analysis.check
    data = {
        "out": str(out), "report": str(report), "results": str(out / RESULTS), "wall_s": wall, "jobs": len(jobs),
        "ran": ran, "skipped": skipped, "failed": failed, "config": config.to_dict(), "check": check,
        "checks": analysis.checks, "robust": robust_data,
        "cells": [{"task": st.cell[0], "budget": st.cell[1], "space": st.cell[2], "searcher": st.searcher,
                   "seeds": st.n, "heldout_expected_mean": st.final[0], "ci_low": st.final[1], "ci_high": st.final[2],
                   "regret_mean": st.regret[0] if st.regret else None, "evaluations_mean": st.evaluations,
                   "breakeven": asdict(st.breakeven) if st.breakeven else None}
                  for st in analysis.stats.values()],
    }
    lines = [table(["cell", *analysis.searchers], [[c.replace("**", "") for c in r] for r in summary_rows(analysis)])]
    for ref, c in analysis.checks.items():
        if c.get("applicable"):
            verdict = "holds" if c["holds"] else "DOES NOT hold"
            lines.append(f"\nexpected check: {ref} beats {', '.join(c['opponents'])} on "
                         f"{c['beats_all']}/{c['cells']} main cells -> {verdict}")
    timing = ("report only" if args.report_only else "") + (f"{', ' if args.report_only else ''}"
                                                          f"{wall:.1f} s wall" if wall is not None else "")
    lines.append(f"\n{len(jobs)} jobs ({ran} run, {skipped} already done); {timing}")
    lines.append(f"report: {report}\nresults: {out / RESULTS}")
    emit(args, data, "\n".join(lines))
    if failed:
        raise ConfigError(f"{len(failed)} of {len(jobs)} bench jobs failed (first: {failed[0]})")
