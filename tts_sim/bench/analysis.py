"""From result rows to statistics: per-cell mean +- 95% CI over seeds (final held-out expected
accuracy, anytime curves, regret where an optimum row exists), paired tests of a reference searcher
(Agent-REINFORCE) against each other searcher over seeds (same questions, same seeds), win/loss
counts, and the issue's expected check ("at equal evaluations Agent-REINFORCE beats random search
and BO on most task x budget cells"), with diagnostics for the cells where it does not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_sim.bench.config import MAIN, label_parts
from tts_sim.stats import mean_ci, paired_test

Cell = tuple[str, float, str]  # task, budget, space
REFERENCE = "agent-reinforce"
RANDOM = "random"
BO = ("bo-gp", "bo-forest", "tpe")
ALPHA = 0.05


@dataclass
class BreakEvenStats:
    """Break-even of one searcher on one cell over seeds (``tts_sim.search.breakeven``)."""

    seeds: int
    cost_flops: float  # mean full search cost (evaluations + agent tokens as FLOPs of the agent model)
    agent_flops: float  # mean agent share of it
    repaid: int  # seeds whose graph saves FLOPs against the cheapest preset as accurate
    never: int  # seeds where a preset at least as accurate costs no more per query
    unmatched: int  # seeds where no preset reaches the graph's accuracy
    median_queries: float | None  # median break-even over the repaid seeds
    gain_per_eflop: float | None  # mean accuracy over the best preset per EFLOP (unmatched seeds)


@dataclass
class SearcherStats:
    """One searcher on one cell, over seeds."""

    searcher: str
    cell: Cell
    seeds: list[int]
    final: tuple[float, float, float]  # mean, low, high of held-out expected accuracy
    sampled: float  # mean of the sampled (noisy) held-out accuracy
    curve: np.ndarray  # (evals,) mean best-so-far held-out expected accuracy
    curve_low: np.ndarray
    curve_high: np.ndarray
    evaluations: float  # mean evaluations used
    pretests: float  # mean pre-test evaluations (fewer questions)
    nodes: float  # mean executed nodes of the returned graph
    budget_use: float  # mean units of the returned graph / budget
    wall_s: float  # mean wall time per search
    regret: tuple[float, float, float] | None = None
    found_optimum: int = 0  # seeds whose returned graph is as good as the optimum (regret <= 1e-9)
    after_pretests: float | None = None  # mean best-so-far held-out value when the pre-tests end
    breakeven: BreakEvenStats | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class Paired:
    """Reference minus ``other`` on one cell, paired by seed."""

    cell: Cell
    other: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    losses: int
    ties: int
    reference: str = REFERENCE

    @property
    def verdict(self) -> str:
        if self.n < 2 or self.p_value >= ALPHA:
            return "tie"
        return "win" if self.mean_diff > 0 else "loss"


@dataclass
class Analysis:
    cells: list[Cell]
    searchers: list[str]
    stats: dict[tuple[Cell, str], SearcherStats]
    optimum: dict[Cell, dict[str, Any]]
    paired: list[Paired]
    heldout_n: dict[str, int]  # task -> held-out questions
    search_n: dict[str, int]
    reference: str | None
    check: dict[str, Any] = field(default_factory=dict)  # the expected check of the first reference
    cost: dict[str, dict[str, float]] = field(default_factory=dict)  # searcher -> mean cost per search
    #: Every Agent-REINFORCE run label (one per prior setting); ``reference`` is the first.
    references: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # reference label -> its expected check

    def get(self, cell: Cell, searcher: str) -> SearcherStats | None:
        return self.stats.get((cell, searcher))

    @property
    def main_cells(self) -> list[Cell]:
        return [c for c in self.cells if c[2] == MAIN]


def cell_name(cell: Cell) -> str:
    task, budget, space = cell
    return f"{task} @ {budget:g}" + ("" if space == MAIN else f" ({space} space)")


def _ci(values: Sequence[float]) -> tuple[float, float, float]:
    return tuple(float(v) for v in mean_ci(values))  # type: ignore[return-value]


def comparable(reference: str, other: str) -> bool:
    """Whether a paired test of ``reference`` against ``other`` compares like with like: ``other``
    ran under the same prior setting or ignores the prior (a plain name). Another reference label is
    compared only with the first reference (Agent-REINFORCE with vs without the prior)."""
    ref_prior, other_prior = label_parts(reference)[1], label_parts(other)[1]
    return other_prior is None or ref_prior is None or other_prior == ref_prior


def analyse(rows: Iterable[dict[str, Any]], searchers: Sequence[str] | None = None,
            cells: Sequence[Cell] | None = None, agent_cost_model: str | None = None) -> Analysis:
    """Statistics of the rows (``searchers`` / ``cells`` fix the order and restrict the set; labels
    ``NAME[prior=SETTING]`` are searchers of their own). Each Agent-REINFORCE label is a reference,
    tested against every comparable label (``comparable``) and against the other references.
    ``agent_cost_model`` prices agent tokens in the break-even (default: the search's default)."""
    rows = list(rows)
    searches = [r for r in rows if r.get("kind") == "search"]
    optimum = {(r["task"], float(r["budget"]), r["space"]): r for r in rows if r.get("kind") == "optimum"}
    order_s = list(searchers) if searchers is not None else list(dict.fromkeys(r["searcher"] for r in searches))
    order_c = list(cells) if cells is not None else list(dict.fromkeys(
        (r["task"], float(r["budget"]), r["space"]) for r in searches))
    by: dict[tuple[Cell, str], list[dict[str, Any]]] = defaultdict(list)
    for r in searches:
        cell = (r["task"], float(r["budget"]), r["space"])
        if cell in order_c and r["searcher"] in order_s:
            by[(cell, r["searcher"])].append(r)
    stats = {key: _stats(key, sorted(rs, key=lambda r: r["seed"]), optimum.get(key[0])) for key, rs in by.items()}
    agent = _agent_spec(agent_cost_model)
    for key, rs in by.items():
        stats[key].breakeven = breakeven_stats(rs, agent)
    heldout_n = {r["task"]: int(r["heldout_n"]) for r in searches}
    search_n = {r["task"]: int(r["search_n"]) for r in searches}
    references = [s for s in order_s if label_parts(s)[0] == REFERENCE] or order_s[:1]
    reference = references[0] if references else None
    pairs = [(ref, s) for ref in references for s in order_s if s != ref
             and (ref == reference if s in references else comparable(ref, s))]
    paired = [p for c in order_c for ref, s in pairs for p in [_paired(c, ref, s, by)] if p is not None]
    analysis = Analysis(order_c, order_s, stats, {c: optimum[c] for c in order_c if c in optimum}, paired,
                        heldout_n, search_n, reference, references=references)
    analysis.checks = {ref: expected_check(analysis, ref) for ref in references}
    analysis.check = analysis.checks[reference] if reference else expected_check(analysis)
    analysis.cost = cost_per_searcher([r for rs in by.values() for r in rs], order_s)
    return analysis


def _agent_spec(name: str | None) -> Any:
    from tts_sim.core.models import DEFAULT_CATALOG
    from tts_sim.search.breakeven import DEFAULT_AGENT_COST_MODEL, agent_cost_spec

    return agent_cost_spec(name or DEFAULT_AGENT_COST_MODEL, DEFAULT_CATALOG)


def breakeven_stats(rows: Sequence[dict[str, Any]], agent: Any) -> BreakEvenStats | None:
    """Break-even over the rows that carry one, agent tokens priced as FLOPs of ``agent``."""
    from tts_sim.search.breakeven import PresetReference, break_even, search_cost

    found = [r for r in rows if r.get("breakeven")]
    if not found:
        return None
    bes = [break_even(float(r["breakeven"]["found_flops"]), float(r["breakeven"]["found_accuracy"]),
                      PresetReference.from_dict(r["breakeven"]["reference"]), search_cost(r.get("cost", {}), agent))
           for r in found]
    queries = [b.queries for b in bes if b.verdict == "queries" and b.queries is not None]
    gains = [b.gain_per_eflop for b in bes if b.verdict == "none" and b.gain_per_eflop is not None]
    return BreakEvenStats(
        seeds=len(bes), cost_flops=float(np.mean([b.cost.total for b in bes])),
        agent_flops=float(np.mean([b.cost.agent_flops for b in bes])), repaid=len(queries),
        never=sum(b.verdict == "never" for b in bes), unmatched=sum(b.verdict == "none" for b in bes),
        median_queries=float(np.median(queries)) if queries else None,
        gain_per_eflop=float(np.mean(gains)) if gains else None)


def cost_per_searcher(rows: Sequence[dict[str, Any]], searchers: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean per search, over every cell and seed: worker wall time (search + held-out scoring),
    evaluations, cache hits, penalised proposals, agent calls."""
    out: dict[str, dict[str, float]] = {}
    for s in searchers:
        rs = [r for r in rows if r["searcher"] == s]
        if not rs:
            continue
        cost = [r.get("cost", {}) for r in rs]
        out[s] = {"searches": float(len(rs)), "wall_s": float(np.mean([r["wall_s"] for r in rs])),
                  "search_wall_s": float(np.mean([c.get("wall_s", 0.0) for c in cost])),
                  "evaluations": float(np.mean([r["evaluations"] for r in rs])),
                  "cache_hits": float(np.mean([c.get("cache_hits", 0) for c in cost])),
                  "penalised": float(np.mean([c.get("penalised", 0) for c in cost])),
                  "agent_calls": float(np.mean([c.get("agent_calls", 0) for c in cost]))}
    return out


def _stats(key: tuple[Cell, str], rs: list[dict[str, Any]], opt: dict[str, Any] | None) -> SearcherStats:
    cell, searcher = key
    finals = [float(r["heldout_expected"]) for r in rs]
    curves = np.array([r["curve"] for r in rs], dtype=float)
    low, high = [], []
    for k in range(curves.shape[1]):
        _, lo, hi = mean_ci(curves[:, k].tolist())
        low.append(lo)
        high.append(hi)
    regret = found = None
    if opt is not None:
        values = [float(opt["heldout_expected"]) - f for f in finals]
        regret = _ci(values)
        found = sum(v <= 1e-9 for v in values)
    pre = [r["curve"][r["pretest_evaluations"] - 1] for r in rs
           if 0 < r.get("pretest_evaluations", 0) <= len(r["curve"])]
    return SearcherStats(
        searcher=searcher, cell=cell, seeds=[int(r["seed"]) for r in rs], final=_ci(finals),
        after_pretests=float(np.mean(pre)) if pre else None,
        sampled=float(np.mean([r["heldout_sampled"] for r in rs])), curve=curves.mean(axis=0),
        curve_low=np.array(low), curve_high=np.array(high),
        evaluations=float(np.mean([r["evaluations"] for r in rs])),
        pretests=float(np.mean([r.get("pretest_evaluations", 0) for r in rs])),
        nodes=float(np.mean([r["best_nodes"] for r in rs])),
        budget_use=float(np.mean([r["best_units"] for r in rs])) / cell[1],
        wall_s=float(np.mean([r["wall_s"] for r in rs])), regret=regret, found_optimum=found or 0)


def _paired(cell: Cell, ref: str, other: str, by: dict) -> Paired | None:
    a = {r["seed"]: float(r["heldout_expected"]) for r in by.get((cell, ref), [])}
    b = {r["seed"]: float(r["heldout_expected"]) for r in by.get((cell, other), [])}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    x, y = [a[s] for s in seeds], [b[s] for s in seeds]
    t = paired_test(x, y)
    d = np.subtract(x, y)
    return Paired(cell, other, len(seeds), t["mean_diff"], t["ci_low"], t["ci_high"], t["p_value"],
                  int((d > 1e-12).sum()), int((d < -1e-12).sum()), int((np.abs(d) <= 1e-12).sum()), ref)


def expected_check(analysis: Analysis, ref: str | None = None) -> dict[str, Any]:
    """Does the reference (``ref``, default the first) beat random search and BO (bo-gp, bo-forest,
    tpe) run under the same prior on most main cells, at equal evaluations (the end of the anytime
    curve: every searcher had the same evaluation budget)?

    A cell counts as beaten when the reference's mean held-out expected accuracy is above the
    opponent's; the paired test says whether the gap is significant."""
    ref = ref if ref is not None else analysis.reference
    opponents = [s for s in analysis.searchers if label_parts(s)[0] in (RANDOM, *BO) and s != ref
                 and comparable(ref or "", s)]
    cells = [c for c in analysis.main_cells if analysis.get(c, ref or "") is not None]
    if ref is None or label_parts(ref)[0] != REFERENCE or not opponents or not cells:
        return {"applicable": False, "reason": "needs agent-reinforce, random or a BO searcher, and a main cell"}
    paired = {(p.cell, p.other): p for p in analysis.paired if p.reference == ref}
    per_opponent: dict[str, dict[str, int]] = {}
    beats_all = 0
    lost_cells: list[dict[str, Any]] = []
    for o in opponents:
        per_opponent[o] = {"higher_mean": 0, "significant_wins": 0, "significant_losses": 0, "cells": 0}
    for c in cells:
        ok = True
        for o in opponents:
            p = paired.get((c, o))
            if p is None:
                continue
            tally = per_opponent[o]
            tally["cells"] += 1
            tally["higher_mean"] += int(p.mean_diff > 0)
            tally["significant_wins"] += int(p.verdict == "win")
            tally["significant_losses"] += int(p.verdict == "loss")
            ok = ok and p.mean_diff > 0
        beats_all += int(ok)
        if not ok:
            lost_cells.append(_diagnose(analysis, c, opponents, ref))
    n = len(cells)
    return {
        "applicable": True, "reference": ref, "opponents": opponents, "cells": n, "beats_all": beats_all,
        "holds": beats_all > n / 2, "per_opponent": per_opponent, "lost_cells": lost_cells,
        "anytime": anytime_lead(analysis, cells, opponents, ref),
    }


def _diagnose(analysis: Analysis, cell: Cell, opponents: list[str], reference: str) -> dict[str, Any]:
    """Facts about a cell where the reference does not beat every opponent."""
    ref = analysis.get(cell, reference)
    assert ref is not None
    present = [st for s in analysis.searchers if (st := analysis.get(cell, s)) is not None]
    best = max(present, key=lambda st: st.final[0])
    beaten_by = [o for o in opponents if (st := analysis.get(cell, o)) is not None and st.final[0] >= ref.final[0]]
    sig = [p.other for p in analysis.paired if p.cell == cell and p.reference == reference and p.other in beaten_by
           and p.verdict == "loss"]
    return {"cell": cell_name(cell), "beaten_by": beaten_by, "significant": sig,
            "ref_mean": ref.final[0], "best": best.searcher, "best_mean": best.final[0],
            "ref_evaluations": ref.evaluations, "ref_pretests": ref.pretests, "ref_nodes": ref.nodes,
            "ref_budget_use": ref.budget_use, "best_nodes": best.nodes, "best_budget_use": best.budget_use}


def anytime_lead(analysis: Analysis, cells: list[Cell], opponents: list[str], reference: str | None = None
                 ) -> dict[int, dict[str, int]]:
    """At a few evaluation counts k: on how many cells the reference's mean best-so-far curve is
    above each opponent's."""
    ref = reference or analysis.reference or ""
    length = min(len(st.curve) for st in analysis.stats.values()) if analysis.stats else 0
    ks = sorted({k for k in (5, 10, 20, length) if 1 <= k <= length})
    out: dict[int, dict[str, int]] = {}
    for k in ks:
        row = {}
        for o in opponents:
            row[o] = sum(1 for c in cells if (a := analysis.get(c, ref)) is not None
                         and (b := analysis.get(c, o)) is not None and a.curve[k - 1] > b.curve[k - 1])
        out[k] = row
    return out


def half_width(ci: tuple[float, float, float]) -> float:
    mean, low, high = ci
    return 0.0 if math.isnan(low) else (high - low) / 2
