"""The ``Searcher`` protocol, the searcher registry and ``run_search``, the single entry point.

A searcher only proposes graphs: its ``run(ctx)`` calls ``ctx.evaluate`` (and ``ctx.agent_call``)
until ``ctx.done``, and returns None (the driver then picks the best trial by search-time score) or
a graph of its own choosing. ``run_search`` splits the questions, builds the ``SearchContext``,
resumes from a checkpoint, and evaluates the returned graph on the held-out split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from tts_sim.core.evaluation import Evaluator, split_questions
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
from tts_sim.registry import Registry
from tts_sim.search.breakeven import (
    DEFAULT_AGENT_COST_MODEL,
    agent_cost_spec,
    break_even,
    preset_reference,
    search_cost,
)
from tts_sim.search.checkpoint import Checkpoint
from tts_sim.search.context import SearchContext, SearchExhausted
from tts_sim.search.enumerate import ExpectedScorer
from tts_sim.search.objectives import Objective, parse_objective
from tts_sim.search.prior import NONE, Prior, make_prior
from tts_sim.search.result import SearchResult, Trial, package_versions
from tts_sim.search.space import SearchSpace


@runtime_checkable
class Searcher(Protocol):
    @property
    def name(self) -> str:
        """What results call the searcher (a class attribute or a field satisfies it)."""
        ...

    def config(self) -> dict[str, Any]:
        """The options that, with the seed, determine the search (recorded in results)."""
        ...

    def run(self, ctx: SearchContext) -> Graph | None:
        """Propose graphs through ``ctx`` until ``ctx.done``; return None to let the driver pick."""
        ...


class BaseSearcher:
    """Convenience base: ``config()`` from dataclass fields and a ``search(...)`` shortcut."""

    name: ClassVar[str] = "base"
    #: Whether the searcher reads ``ctx.prior`` (``uses_prior``): one that does not runs only under
    #: the ``none`` setting (``check_prior``), once per bench.
    uses_prior: ClassVar[bool] = False

    def config(self) -> dict[str, Any]:
        """Dataclass fields as plain values; an ``agent_options`` entry whose name mentions a key (API
        keys) is left out, so results and checkpoints never record secrets."""
        if not is_dataclass(self):
            return {}
        out = {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else getattr(v, "name", str(v)))
               for k, v in asdict(self).items()}
        if isinstance(out.get("agent_options"), dict):
            out["agent_options"] = {k: v for k, v in out["agent_options"].items() if "key" not in k.lower()}
        return out

    def run(self, ctx: SearchContext) -> Graph | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self) -> BaseSearcher:
        """A searcher is its own config: building it returns it."""
        return self

    def search(self, space: SearchSpace, evaluator: Evaluator, max_evals: int, seed: int = 0,
               **kwargs: Any) -> SearchResult:
        searcher: Searcher = self
        return run_search(searcher, space, evaluator, max_evals, seed, **kwargs)


#: Searcher config dataclasses by name (entry-point group ``tts_sim.searchers``): a searcher's dataclass
#: fields are its options, and ``build()`` returns the searcher itself.
SEARCHERS: Registry[type] = Registry("searchers")


def uses_prior(searcher: Any) -> bool:
    """Whether ``searcher`` (an object or its class) reads ``ctx.prior``: its ``uses_prior`` attribute,
    False when it declares none."""
    return bool(getattr(searcher, "uses_prior", False))


def check_prior(searcher: Any, setting: str) -> None:
    """One-line ``ConfigError`` when a prior other than ``none`` is given to a searcher that does not
    use one (it would be ignored)."""
    if setting != NONE and not uses_prior(searcher):
        raise ConfigError(f"searcher {getattr(searcher, 'name', searcher)!r} does not use a prior: "
                          f"--prior {setting} is not supported for it (use --prior none)")


def make_searcher(name: str, **options: Any) -> Searcher:
    """The searcher registered as ``name``, built with ``options`` (one-line error on a bad option)."""
    searcher: Searcher = SEARCHERS.build(name, options)
    return searcher


def resolve_questions(n: int, search_questions: Sequence[int] | None, heldout_questions: Sequence[int] | None,
                      split_seed: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Disjoint search / held-out splits: given ones are checked; missing ones default to a
    half-half split of the pool (fixed ``split_seed``, so every searcher sees the same questions)."""
    if search_questions is None and heldout_questions is None:
        if n < 2:
            raise ConfigError(f"the evaluator has {n} question(s); a search needs at least 2")
        return split_questions(n, n // 2, split_seed)
    search = tuple(int(q) for q in search_questions) if search_questions is not None else ()
    if heldout_questions is None:
        taken = set(search)
        heldout = tuple(q for q in range(n) if q not in taken)
    else:
        heldout = tuple(int(q) for q in heldout_questions)
    if search_questions is None:
        taken = set(heldout)
        search = tuple(q for q in range(n) if q not in taken)
    for name, qs in (("search", search), ("held-out", heldout)):
        if not qs:
            raise ConfigError(f"the {name} question split is empty")
        bad = [q for q in qs if not 0 <= q < n]
        if bad:
            raise ConfigError(f"{name} question {bad[0]} is outside the evaluator's pool 0..{n - 1}")
    overlap = set(search) & set(heldout)
    if overlap:
        raise ConfigError(f"search and held-out splits share question {min(overlap)}: they must be disjoint")
    return search, heldout


def run_search(
    searcher: str | Searcher,
    space: SearchSpace,
    evaluator: Evaluator,
    max_evals: int,
    seed: int = 0,
    *,
    search_questions: Sequence[int] | None = None,
    heldout_questions: Sequence[int] | None = None,
    objective: str | Objective | None = None,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: Callable[[Trial], None] | None = None,
    options: Mapping[str, Any] | None = None,
    prior: str | Prior | None = None,
    agent_cost_model: str = DEFAULT_AGENT_COST_MODEL,
) -> SearchResult:
    """Run one search and report the held-out evaluation of the graph it returns.

    ``searcher`` is a registry name (built with ``options``) or a searcher object. A ``checkpoint``
    path is written after every evaluation and agent reply; if the file exists, the search resumes
    from it (it must come from the same config and seed). ``prior`` (``none`` by default, or
    ``published``; ``tts_sim.search.prior``; only ``none`` for a searcher that does not use one) is
    handed to the searcher through the context and recorded in the config. The result states the
    search's full cost and its break-even against the fixed presets, agent tokens priced as FLOPs of
    ``agent_cost_model`` (``tts_sim.search.breakeven``)."""
    if isinstance(searcher, str):
        searcher = make_searcher(searcher, **dict(options or {}))
    elif options:
        raise ConfigError("options apply to a searcher given by name, not to a searcher object")
    if isinstance(max_evals, bool) or not isinstance(max_evals, int) or max_evals < 1:
        raise ConfigError(f"max_evals must be a positive integer, got {max_evals!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    task_name = getattr(evaluator.task, "name", evaluator.task)
    if task_name != space.task.name:
        raise ConfigError(f"the evaluator scores task {task_name!r} but the space is for {space.task.name!r}")
    objective = parse_objective(objective)
    prior = make_prior(prior, space.task)
    check_prior(searcher, prior.setting)
    agent_spec = agent_cost_spec(agent_cost_model, space.catalog)
    search_qs, heldout_qs = resolve_questions(evaluator.n_questions, search_questions, heldout_questions)
    config = {
        "searcher": searcher.name, "options": searcher.config(), "seed": seed, "max_evals": max_evals,
        "space": space.describe(), "objective": objective.to_dict(), "evaluator": type(evaluator).__name__,
        "search_questions": len(search_qs), "heldout_questions": len(heldout_qs),
        "questions_key": questions_fingerprint(search_qs, heldout_qs), "prior": prior.setting,
    }
    ckpt = Checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    ctx = SearchContext(space, evaluator, max_evals, seed, search_qs, objective, config=config,
                        checkpoint=ckpt, progress=progress, prior=prior)
    try:
        returned = searcher.run(ctx)
    except SearchExhausted:
        returned = None
    best_index: int | None
    if returned is None:
        best_trial = ctx.best_trial()
        if best_trial is None:
            raise ConfigError(f"searcher {searcher.name!r} evaluated no graph")
        best, best_index = best_trial.graph, best_trial.index
    else:
        best = space.repair(returned)
        space.check(best)
        key = graph_key(best)
        matches = [t for t in ctx.trials if t.graph_key == key and t.full]
        best_index = matches[0].index if matches else None
    heldout = ctx.final_evaluation(best, heldout_qs)
    expected = evaluator.expected(best, heldout_qs).accuracy if isinstance(evaluator, ExpectedScorer) else None
    ctx.cost.wall_s = ctx.elapsed_s
    breakeven = None
    if isinstance(evaluator, ExpectedScorer) and expected is not None:
        reference = preset_reference(space, evaluator, heldout_qs, expected)
        breakeven = break_even(space.flops(best), expected, reference, search_cost(ctx.cost, agent_spec)).to_dict()
    return SearchResult(searcher=searcher.name, seed=seed, config=config, trials=list(ctx.trials), best=best,
                        best_index=best_index, heldout=heldout, cost=ctx.cost, agent_log=ctx.agent_log,
                        expected_accuracy=expected, versions=package_versions(), breakeven=breakeven)


def questions_fingerprint(search: Sequence[int], heldout: Sequence[int]) -> str:
    """A short fingerprint of the question splits (checkpoints refuse a different split)."""
    from tts_sim.search.context import stable_int

    return format(stable_int(tuple(search), tuple(heldout)), "x")
