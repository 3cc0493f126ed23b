"""``tts-sim search``: one search in the simulator; writes the best graph (JSON + PNG) and the
full result, and prints the held-out accuracy, FLOPs, latency and the search's own cost."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

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
from tts_sim.registry import parse_set_options
from tts_sim.search.breakeven import DEFAULT_AGENT_COST_MODEL, agent_cost_spec
from tts_sim.search.constraints import ConstraintReport, constraint_report
from tts_sim.search.objectives import parse_objective
from tts_sim.search.prior import DEFAULT_PRIOR_SETTING, PRIOR_SETTINGS, check_setting


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for the best graph under a budget (simulated)")
    add_common(p)
    p.add_argument("--budget", default="42",
                   help="budget units (18), reference graph (ref:8), GPU-seconds (0.5gpu-s) or dollars ($0.002) "
                        "per query; the last two need --cluster")
    p.add_argument("--searcher", default="agent-reinforce", help="a registered searcher (see --list-searchers)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="options",
                   help="a searcher option (repeatable), checked against the searcher's config; "
                        "--list-searchers shows each searcher's options and defaults")
    p.add_argument("--list-searchers", action="store_true", help="list the registered searchers and their options")
    p.add_argument("--evals", type=positive_int, default=30, help="evaluations the searcher may spend")
    p.add_argument("--prior", default=DEFAULT_PRIOR_SETTING, metavar="|".join(PRIOR_SETTINGS),
                   help="prior knowledge handed to the searcher: none (default: only the space and the costs) or "
                        "published (the task's published single-model accuracies and its kind)")
    p.add_argument("--agent-cost-model", default=DEFAULT_AGENT_COST_MODEL, metavar="MODEL",
                   help="model whose FLOPs (2 x params per token) price the agent's tokens in the search cost "
                        f"(default: {DEFAULT_AGENT_COST_MODEL})")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--objective", default="accuracy",
                   help="accuracy | weighted:W[:p95] (accuracy - W x latency) | p95<=5 (latency limit, s)")
    p.add_argument("--agent", help="agent of a searcher that has one (default: the searcher's own); chat = an "
                                   "OpenAI-compatible endpoint")
    p.add_argument("--agent-url", help="OpenAI-compatible base URL for --agent chat (or TTS_SIM_AGENT_BASE_URL)")
    p.add_argument("--agent-model", help="chat model name (or TTS_SIM_AGENT_MODEL); key: TTS_SIM_AGENT_API_KEY")
    p.add_argument("--pool", help="comma-separated models the search may use (default: the paper's pool)")
    p.add_argument("--max-nodes", type=positive_int, default=8, help="worker nodes, the output node excluded")
    p.add_argument("--output-model", help="model of the output node (default: llama-3.2-3b)")
    p.add_argument("--price-per-hour", type=float, default=0.0, help="dollars per device-hour, for $ budgets")
    p.add_argument("-o", "--out", help="output folder (default: runs/search-TASK-BUDGET-SEARCHER-sSEED)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cluster_options(p)
    p.set_defaults(func=cmd_search, queries=300)


def _searcher_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` options plus the agent flags, for searchers whose config has an ``agent`` field."""
    from tts_sim.search.searcher import SEARCHERS

    options: dict[str, Any] = parse_set_options(args.options)
    agent_options = {k: v for k, v in (("base_url", args.agent_url), ("model", args.agent_model)) if v}
    if agent_options and args.agent != "chat":
        raise ConfigError("--agent-url/--agent-model need --agent chat")
    if args.agent is None:
        return options
    if "agent" not in SEARCHERS.options(args.searcher):
        with_agent = [n for n in SEARCHERS.names() if "agent" in SEARCHERS.options(n)]
        raise ConfigError(f"--agent applies to {', '.join(with_agent)}, not {args.searcher!r}")
    options["agent"] = args.agent
    if agent_options:
        options["agent_options"] = agent_options
    return options


def list_searchers() -> str:
    """The registered searchers with their options (type, default), one block per searcher."""
    from tts_sim.search.searcher import SEARCHERS

    rows = []
    for name in SEARCHERS.names():
        opts = SEARCHERS.options(name)
        rows.append((name, ", ".join(f"{k}={v[1]!r} ({v[0]})" for k, v in opts.items()) or "-"))
    return table(["searcher", "options (--set KEY=VALUE)"], rows)


def cmd_search(args: argparse.Namespace) -> None:
    if args.list_searchers:
        print(list_searchers())
        return
    parse_objective(args.objective)  # a bad objective fails before any work (or progress bar) starts
    check_setting(args.prior)
    from tts_sim.core.budget import ComputeRate, parse_budget
    from tts_sim.core.draw import draw_graph
    from tts_sim.core.models import DEFAULT_OUTPUT_MODEL, PAPER_POOL
    from tts_sim.search import SearchSpace, run_search
    from tts_sim.sim.cluster import parse_cluster
    from tts_sim.sim.evaluator import SimulatedEvaluator
    from tts_sim.tasks import get_task

    catalog = catalog_from(args)
    agent_cost_spec(args.agent_cost_model, catalog)  # an unknown model fails before any work starts
    task = get_task(args.task)
    cluster = parse_cluster(args.cluster) if args.cluster else None
    rate = ComputeRate.from_cluster(cluster, args.price_per_hour) if cluster else None
    budget = parse_budget(args.budget, task, rate, catalog)
    pool = tuple(m.strip() for m in args.pool.split(",") if m.strip()) if args.pool else PAPER_POOL
    space = SearchSpace(task, budget, pool=pool, max_nodes=args.max_nodes,
                        output_model=args.output_model or DEFAULT_OUTPUT_MODEL, catalog=catalog)
    if args.objective != "accuracy" and cluster is None:
        raise ConfigError(f"objective {args.objective!r} uses latency: give --cluster")
    from tts_sim.search.searcher import check_prior, make_searcher

    searcher = make_searcher(args.searcher, **_searcher_options(args))
    check_prior(searcher, args.prior)  # before the evaluator is built
    evaluator = SimulatedEvaluator(task, profile=profile_from(args), cluster=cluster,
                                   arrival=arrival_from(args) if cluster else None, n_queries=args.queries,
                                   catalog=catalog, **sim_options(args))
    out = Path(args.out or f"runs/search-{task.name}-{args.budget}-{args.searcher}-s{args.seed}".replace("$", "usd"))
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, legacy = out / "checkpoint.jsonl", out / "checkpoint.json"  # journal; the old format's name
    if args.fresh:
        checkpoint.unlink(missing_ok=True)
        legacy.unlink(missing_ok=True)
    elif legacy.exists() and not checkpoint.exists():
        legacy.replace(checkpoint)  # Checkpoint reads the old format and converts it to a journal

    if not args.quiet:  # "resuming from ...: N evaluations" is worth a line even without -v
        logging.getLogger("tts_sim.search").setLevel(logging.INFO)
    bar = None
    if not args.quiet and not args.json:
        from tqdm import tqdm

        from tts_sim.search.checkpoint import Checkpoint

        state = Checkpoint(checkpoint).load() if checkpoint.exists() else None
        recorded = min(len(state.trials), args.evals) if state is not None else 0  # a resume starts where it was
        bar = tqdm(total=args.evals, initial=recorded, desc=f"{args.searcher} on {task.name}", unit="eval",
                   file=sys.stderr, leave=False, disable=None)  # None: a bar on a terminal only (stderr stays clean)

    def progress(trial: Any) -> None:
        if bar is not None:
            bar.n = max(bar.n, trial.index + 1)  # replayed trials never move it back
            bar.set_postfix(score=f"{trial.score:.3f}", units=f"{trial.units:.1f}", refresh=False)
            bar.refresh()

    try:
        result = run_search(searcher, space, evaluator, args.evals, args.seed, objective=args.objective,
                            checkpoint=checkpoint, progress=progress, prior=args.prior,
                            agent_cost_model=args.agent_cost_model)
    finally:
        if bar is not None:
            bar.close()
    assert result.heldout is not None  # run_search always scores the returned graph on the held-out split
    result.save(out / "result.json")
    result.best.save(out / "best_graph.json")
    assert result.heldout is not None  # run_search always evaluates the best graph on the held-out questions
    draw_graph(result.best, out / "best_graph.png",
               title=f"{result.searcher} on {task.name}, budget {budget:.1f} units: held-out accuracy "
                     f"{result.heldout.accuracy:.3f}", catalog=catalog)
    report = constraint_report(result.best, result.heldout, space, parse_objective(args.objective),
                               [t.latency for t in result.trials])
    data = result.to_dict()
    data["constraints"] = report.to_dict()
    emit(args, data, _summary(result, budget, out, report))
    if report.latency_met is False:
        print(f"tts-sim: warning: the latency limit {report.latency_limit} was missed "
              f"(held-out {report.latency_value_s:.3f} s)", file=sys.stderr)


def _summary(result: Any, budget: float, out: Path, report: ConstraintReport) -> str:
    h, cost = result.heldout, result.cost
    rows = [
        ("searcher / seed / prior", f"{result.searcher} / {result.seed} / {result.config.get('prior', 'none')}"),
        ("budget (units)", f"{budget:.2f}"),
        ("held-out accuracy", f"{h.accuracy:.3f}  [{h.ci_low:.3f}, {h.ci_high:.3f}] 95% CI, {h.n_questions} questions"),
    ]
    if result.expected_accuracy is not None:
        rows.append(("held-out accuracy (expected)", f"{result.expected_accuracy:.3f}"))
    rows += [
        ("FLOPs / query", f"{h.flops:.4g} ({h.budget_units:.2f} units)"),
        ("graph", f"{len(result.best.executed)} nodes, width {result.best.width}, depth {result.best.depth}"),
    ]
    if h.latency:
        lat = h.latency
        rows.append(("latency p50 / p95 (s)", f"{lat.p50_s:.3f} / {lat.p95_s:.3f} on {lat.cluster} ({lat.predictor}, "
                     f"{lat.scheduler or 'static'} batching)"))
        rows.append(("load", f"{load_text(lat)}" + (f"; OVERLOADED: {lat.overload_reason}" if lat.overloaded else "")))
    rows += report.lines()
    tokens = f"{cost.agent_prompt_tokens} + {cost.agent_completion_tokens}" + (" (estimated)" if cost.tokens_estimated
                                                                               else "")
    rows += [
        ("search cost", f"{cost.evaluations} evaluations ({cost.cache_hits} cache hits, {cost.penalised} penalised), "
                        f"{cost.wall_s:.2f} s wall"),
        ("simulated FLOPs spent", f"{cost.simulated_flops:.4g}"),
        ("agent calls / tokens", f"{cost.agent_calls} / {tokens}, {cost.agent_fallbacks} fallbacks"),
    ]
    if result.breakeven is not None:
        be = result.breakeven
        full = be["cost"]
        rows += [
            ("search cost (FLOPs)", f"{full['total_flops']:.4g} = {full['evaluation_flops']:.4g} evaluations + "
                                    f"{full['agent_flops']:.4g} agent ({full['agent_tokens']} tokens as "
                                    f"{full['agent_model']})"),
            ("break-even", be["text"]),
        ]
    rows += [
        ("wrote", f"{out}/best_graph.json, best_graph.png, result.json"),
    ]
    return result.best.to_text() + "\n\n" + table(["result", "value"], rows)
