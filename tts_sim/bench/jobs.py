"""The bench's units of work and what a worker does with them.

A ``Job`` is one search (searcher x cell x seed) or one exhaustive optimum (a cell whose space is
enumerable). ``execute(job, settings)`` runs in a worker process and returns one JSON-ready row:
the search's held-out *expected* (noise-free) accuracy, its anytime curve (held-out expected
accuracy of the best-so-far graph after k evaluations), cost, break-even against the fixed presets
(``tts_sim.search.breakeven``; the report re-prices agent tokens with its ``agent_cost_model``) and
chosen graph. A search job runs under one prior setting (``Job.prior``). Every searcher sees
the same question splits, seeds and noise (``run_search`` fixes the noise per seed and graph).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tts_sim.errors import ConfigError

#: Version of a result row's meaning: 2 = search jobs run under a prior setting (key suffix
#: ``|prior=SETTING`` for searchers that use one) and carry the break-even.
ROW_VERSION = 2
_EVALUATORS: dict[tuple, Any] = {}  # per worker process: building one fits the quality model
_PROFILES: dict[str | None, Any] = {}  # loaded before the pool forks, so workers inherit them


@dataclass(frozen=True)
class Job:
    kind: str  # "search" | "optimum"
    task: str
    budget: float
    space: str  # "main" | "small"
    searcher: str = ""
    seed: int = 0
    prior: str = ""  # the prior setting the search is given ("" for a searcher that uses none: run under "none")
    label: str = ""  # how the report names the run (``BenchConfig.runs``); default the searcher's name
    world: str = ""  # the world it runs in ("" = the default world: keys of default-world benches are unchanged)

    @property
    def name(self) -> str:
        return self.label or self.searcher

    @property
    def key(self) -> str:
        world = f"|world={self.world}" if self.world else ""
        if self.kind in ("optimum", "reference"):
            return f"{self.kind}|{self.task}|{self.budget:g}|{self.space}{world}"
        tail = f"|prior={self.prior}" if self.prior else ""
        return f"search|{self.searcher}|{self.task}|{self.budget:g}|{self.space}|{self.seed}{tail}{world}"

    @property
    def cell(self) -> tuple[str, float, str]:
        return (self.task, self.budget, self.space)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def world_profile_path(settings: dict[str, Any], world: str = "") -> str | None:
    """The profile file of ``world`` (``settings["world_profiles"]``; the default world: ``profile``)."""
    return settings.get("world_profiles", {}).get(world or "default", settings.get("profile"))


def evaluator_for(task: str, settings: dict[str, Any], world: str = "") -> Any:
    """The ``SimulatedEvaluator`` of ``task`` in ``world`` under ``settings`` (cached per process)."""
    from tts_sim.sim.evaluator import SimulatedEvaluator

    path = world_profile_path(settings, world)
    key = (task, path, settings.get("cluster"))
    ev = _EVALUATORS.get(key)
    if ev is None:
        ev = SimulatedEvaluator(task, profile=profile_for(path), cluster=settings.get("cluster"))
        _EVALUATORS[key] = ev
    return ev


def profile_for(path: str | None) -> Any:
    """The profile at ``path`` (the embedded default scenario when None), loaded once per process."""
    profile = _PROFILES.get(path)
    if profile is None:
        if path:
            from tts_sim.sim.profiles import load_profile

            profile = load_profile(path)
        else:
            from tts_sim.sim.scenario import load_default_profile

            profile = load_default_profile()
        _PROFILES[path] = profile
    return profile


def splits(n_pool: int, settings: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(search, held-out) question indices: ``search_questions`` shuffled by ``split_seed``, then up to
    ``heldout_questions`` of the rest. The same for every searcher and seed."""
    from tts_sim.core.evaluation import split_questions

    n_search = int(settings["search_questions"])
    if n_search >= n_pool:
        raise ConfigError(f"search_questions={n_search} leaves no held-out question of a pool of {n_pool}")
    search, rest = split_questions(n_pool, n_search, int(settings["split_seed"]))
    return search, rest[: int(settings["heldout_questions"])]


def space_for(job: Job, settings: dict[str, Any]) -> Any:
    from tts_sim.search import SearchSpace
    from tts_sim.tasks import get_task

    opts = settings["spaces"][job.space]
    return SearchSpace(get_task(job.task), job.budget, max_nodes=int(opts["max_nodes"]), pool=tuple(opts["pool"]),
                       output_model=str(opts["output_model"]))


def execute(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` and return its result row (called in a worker)."""
    t0 = time.perf_counter()
    run = {"optimum": _optimum, "reference": _reference}.get(job.kind, _search)
    row = run(job, settings)
    row.update({"world": job.world or "default", "key": job.key,
                "job": job.to_dict(), "v": ROW_VERSION, "settings": settings["fingerprint"],
                "wall_s": time.perf_counter() - t0, "pid": os.getpid()})
    return row


def _search(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    from tts_sim.core.identity import graph_key
    from tts_sim.search import run_search

    ev = evaluator_for(job.task, settings, job.world)
    space = space_for(job, settings)
    search_qs, heldout_qs = splits(ev.n_questions, settings)
    result = run_search(job.searcher, space, ev, int(settings["evals"]), job.seed, search_questions=search_qs,
                        heldout_questions=heldout_qs, objective=settings.get("objective"),
                        options=settings.get("searcher_options", {}).get(job.searcher), prior=job.prior or None)
    assert result.heldout is not None  # run_search always scores the returned graph on the held-out split
    known = {graph_key(result.best): result.expected_accuracy} if result.expected_accuracy is not None else {}
    curve = anytime_curve(result.trials, ev, heldout_qs, int(settings["evals"]), known)
    final = result.expected_accuracy if result.expected_accuracy is not None else curve[-1]
    assert result.heldout is not None  # run_search always evaluates the best graph on the held-out questions
    return {
        "kind": "search", "searcher": job.name, "searcher_name": job.searcher, "prior": job.prior or None,
        "task": job.task, "budget": job.budget, "space": job.space,
        "seed": job.seed, "heldout_expected": float(final), "heldout_sampled": float(result.heldout.accuracy),
        "heldout_n": len(heldout_qs), "search_n": len(search_qs), "curve": curve,
        "evaluations": result.cost.evaluations, "best_index": result.best_index,
        "best_units": float(space.units(result.best)), "best_nodes": len(result.best.executed),
        "best_graph": result.best.to_dict(), "pretest_evaluations": sum(1 for t in result.trials if not t.full),
        "cost": result.cost.to_dict(), "breakeven": result.breakeven,
    }


def anytime_curve(trials: Sequence[Any], evaluator: Any, heldout: Sequence[int], evals: int,
                  known: dict[str, float] | None = None) -> list[float]:
    """Held-out expected accuracy of the best-so-far graph after k = 1..``evals`` evaluations.

    Best-so-far follows the driver's rule (``SearchContext.best_trial``): the highest search-time
    score among full-split trials (among all trials while none is full), ties to fewer FLOPs, then
    the earlier trial. A search that stopped early keeps its last value."""
    from tts_sim.core.identity import graph_key

    cache = dict(known or {})
    curve: list[float] = []
    best_full = best_any = None
    for t in trials[:evals]:
        rank = (-t.score, t.flops, t.index)
        if t.full and (best_full is None or rank < best_full[0]):
            best_full = (rank, t)
        if best_any is None or rank < best_any[0]:
            best_any = (rank, t)
        chosen = (best_full or best_any)[1]
        key = graph_key(chosen.graph)
        if key not in cache:
            cache[key] = float(evaluator.expected(chosen.graph, heldout).accuracy)
        curve.append(cache[key])
    if not curve:
        raise ConfigError("a search made no evaluation: no anytime curve")
    return curve + [curve[-1]] * (evals - len(curve))


def _optimum(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    from tts_sim.search import enumerate_graphs, optimum

    ev = evaluator_for(job.task, settings, job.world)
    space = space_for(job, settings)
    _, heldout_qs = splits(ev.n_questions, settings)
    limit = int(settings["regret_limit"])
    graphs = enumerate_graphs(space, limit)
    best, value = optimum(space, ev, heldout_qs, limit)
    return {"kind": "optimum", "task": job.task, "budget": job.budget, "space": job.space,
            "heldout_expected": value, "heldout_n": len(heldout_qs), "n_graphs": len(graphs),
            "best_graph": best.to_dict(), "best_units": float(space.units(best))}


def _reference(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    """The reference optimum of a main cell (``tts_sim.search.reference``), cached on disk by profile
    checksum, task, budget, space, held-out questions and effort."""
    from tts_sim.cache import cache_root
    from tts_sim.search.reference import cached_reference, local_search, reference_key

    ev = evaluator_for(job.task, settings, job.world)
    space = space_for(job, settings)
    _, heldout_qs = splits(ev.n_questions, settings)
    evals = int(settings["reference_evals"])
    checksum = profile_for(world_profile_path(settings, job.world)).checksum or "uncached"
    key = reference_key(checksum, job.task, job.budget, settings["spaces"][job.space], heldout_qs, evals, 0)

    def compute() -> dict[str, Any]:
        best, value, scored = local_search(space, ev, heldout_qs, evals)
        return {"value": value, "scored": scored, "best_graph": best.to_dict(),
                "best_units": float(space.units(best)), "best_nodes": len(best.executed)}

    data = cached_reference(cache_root(), key, compute) if checksum != "uncached" else {**compute(), "cached": False}
    return {"kind": "reference", "task": job.task, "budget": job.budget, "space": job.space,
            "heldout_expected": float(data["value"]), "heldout_n": len(heldout_qs), "scored": data["scored"],
            "cached": data["cached"], "best_graph": data["best_graph"], "best_units": data["best_units"],
            "best_nodes": data["best_nodes"], "cache_key": key}
