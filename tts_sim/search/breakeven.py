"""A search's full cost and its break-even against the paper's fixed presets.

Full cost (``search_cost``): the simulated FLOPs of every evaluation (FLOPs per query x questions
scored, pre-tests included) plus the agent's tokens priced as FLOPs of an agent model the user
names (``2 * M`` FLOPs per token, M the model's parameter count as the FLOPs formula uses it;
default ``llama-3.1-70b``).

Presets (``preset_graphs``): for every pool model, a single direct call, ``parallel(w)`` and
``chain(d)`` for w, d = 1 .. the space's ``max_nodes``, aggregated by the space's output model
(``tts_sim.core.presets``), at any cost (not only within the budget). Each is scored by its
expected (noise-free) accuracy on the held-out questions.

Break-even (``break_even``): let P be the cheapest preset (FLOPs per query) whose expected accuracy
is at least the found graph's. If P costs more per query than the found graph, the search is repaid
after ``search FLOPs / (FLOPs(P) - FLOPs(found))`` served queries (``verdict="queries"``); if P costs
as much or less, never (``verdict="never"``: a fixed preset is as accurate for no more compute). If
no preset reaches the found accuracy (``verdict="none"``), the report gives the accuracy gained over
the most accurate preset per 1e18 FLOPs (EFLOP) of search cost instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tts_sim.core.flops import graph_flops
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.core.models import ModelCatalog, ModelSpec
from tts_sim.core.presets import chain, parallel, single
from tts_sim.errors import ConfigError
from tts_sim.search.space import SearchSpace

DEFAULT_AGENT_COST_MODEL = "llama-3.1-70b"
FLOPS_PER_PARAM_TOKEN = 2.0
EFLOP = 1e18
#: A preset "reaches" the found accuracy when it is at most this far below (float noise only).
ACCURACY_TOLERANCE = 1e-9


def agent_cost_spec(name: str, catalog: ModelCatalog) -> ModelSpec:
    """The catalog's spec of the model agent tokens are priced as (one-line error if unknown)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"agent cost model must be a model name, got {name!r}")
    try:
        return catalog[name]
    except ConfigError as exc:
        raise ConfigError(f"agent cost model: {exc}") from None


@dataclass(frozen=True)
class SearchCostFlops:
    """A search's full cost in FLOPs."""

    evaluations: int
    evaluation_flops: float  # simulated FLOPs of every evaluation (per query x questions)
    agent_tokens: int
    agent_model: str
    agent_flops: float  # agent_tokens x 2 x M of agent_model

    @property
    def total(self) -> float:
        return self.evaluation_flops + self.agent_flops

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_flops": self.total}


def search_cost(cost: Any, agent: ModelSpec) -> SearchCostFlops:
    """Full cost of a search from its ``SearchCost`` (or that cost's dict)."""
    c = cost if isinstance(cost, Mapping) else cost.to_dict()
    tokens = int(c.get("agent_prompt_tokens", 0)) + int(c.get("agent_completion_tokens", 0))
    return SearchCostFlops(int(c.get("evaluations", 0)), float(c.get("simulated_flops", 0.0)), tokens, agent.name,
                           FLOPS_PER_PARAM_TOKEN * agent.m_flops * tokens)


@dataclass(frozen=True)
class PresetPoint:
    name: str
    flops: float  # per query
    accuracy: float  # expected, on the held-out questions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PresetPoint:
        return cls(str(data["name"]), float(data["flops"]), float(data["accuracy"]))


@dataclass(frozen=True)
class PresetReference:
    """What the found graph is compared with: the cheapest preset that reaches its accuracy (None
    when none does) and the most accurate preset (the cheapest among equals)."""

    match: PresetPoint | None
    best: PresetPoint
    n_presets: int

    def to_dict(self) -> dict[str, Any]:
        return {"match": self.match.to_dict() if self.match else None, "best": self.best.to_dict(),
                "n_presets": self.n_presets}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PresetReference:
        match = data.get("match")
        return cls(PresetPoint.from_dict(match) if match else None, PresetPoint.from_dict(data["best"]),
                   int(data["n_presets"]))


def preset_graphs(space: SearchSpace) -> list[tuple[str, Graph]]:
    """Single, parallel and chain presets of every pool model (see the module docstring), each
    graph once (``parallel 1`` and ``chain 1`` are the same graph)."""
    out: list[tuple[str, Graph]] = []
    seen: set[str] = set()
    cat, om = space.catalog, space.output_model
    for m in space.pool:
        candidates = [(f"single {m}", single(m, cat))]
        candidates += [(f"parallel {w} x {m}", parallel(w, m, om, cat)) for w in range(1, space.max_nodes + 1)]
        candidates += [(f"chain {d} x {m}", chain(d, m, om, cat)) for d in range(1, space.max_nodes + 1)]
        for name, g in candidates:
            key = graph_key(g)
            if key not in seen:
                seen.add(key)
                out.append((name, g))
    return out


_TABLES: weakref.WeakKeyDictionary[Any, dict[tuple, list[PresetPoint]]] = weakref.WeakKeyDictionary()


def preset_table(space: SearchSpace, evaluator: Any, questions: Sequence[int]) -> list[PresetPoint]:
    """Every preset's FLOPs per query and expected accuracy on ``questions`` (cached per evaluator)."""
    qs = tuple(int(q) for q in questions)
    key = (space.task.name, space.pool, space.max_nodes, space.output_model, id(space.catalog), qs)
    try:
        tables = _TABLES.setdefault(evaluator, {})
    except TypeError:  # an evaluator that cannot be weakly referenced: no cache
        tables = {}
    if key not in tables:
        score = getattr(evaluator, "expected_accuracy", None)
        points = []
        for name, g in preset_graphs(space):
            acc = float(score(g, qs)) if callable(score) else float(evaluator.expected(g, qs).accuracy)
            points.append(PresetPoint(name, graph_flops(g, space.task, space.catalog), acc))
        tables[key] = points
    return tables[key]


def reference_for(points: Sequence[PresetPoint], accuracy: float) -> PresetReference:
    """The presets to compare a graph of expected accuracy ``accuracy`` with."""
    if not points:
        raise ConfigError("break-even: no preset to compare with")
    reaching = [p for p in points if p.accuracy >= accuracy - ACCURACY_TOLERANCE]
    match = min(reaching, key=lambda p: (p.flops, -p.accuracy, p.name)) if reaching else None
    best = min(points, key=lambda p: (-p.accuracy, p.flops, p.name))
    return PresetReference(match, best, len(points))


def preset_reference(space: SearchSpace, evaluator: Any, questions: Sequence[int], accuracy: float
                     ) -> PresetReference:
    return reference_for(preset_table(space, evaluator, questions), accuracy)


@dataclass(frozen=True)
class BreakEven:
    verdict: str  # "queries" | "never" | "none"
    queries: float | None  # served queries until the search is repaid (verdict "queries")
    found_flops: float
    found_accuracy: float
    savings_per_query: float | None  # FLOPs per query saved against the matching preset
    gain_per_eflop: float | None  # verdict "none": accuracy over the best preset per 1e18 search FLOPs
    cost: SearchCostFlops
    reference: PresetReference

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "queries": self.queries, "found_flops": self.found_flops,
                "found_accuracy": self.found_accuracy, "savings_per_query": self.savings_per_query,
                "gain_per_eflop": self.gain_per_eflop, "cost": self.cost.to_dict(),
                "reference": self.reference.to_dict(), "text": self.text()}

    def text(self) -> str:
        if self.verdict == "queries":
            m = self.reference.match
            assert m is not None and self.queries is not None
            return (f"{self.queries:,.0f} queries (saves {self.savings_per_query:.3g} FLOPs/query against "
                    f"{m.name}, {m.accuracy:.3f})")
        if self.verdict == "never":
            m = self.reference.match
            assert m is not None
            return (f"never: {m.name} reaches {m.accuracy:.3f} for {m.flops:.3g} FLOPs/query "
                    f"(found graph {self.found_flops:.3g})")
        b = self.reference.best
        return (f"none (no preset reaches {self.found_accuracy:.3f}; best {b.name} {b.accuracy:.3f}): "
                f"{self.gain_per_eflop:+.4f} accuracy per EFLOP of search")


def break_even(found_flops: float, found_accuracy: float, reference: PresetReference,
               cost: SearchCostFlops) -> BreakEven:
    """The break-even of a search whose graph costs ``found_flops`` per query and reaches
    ``found_accuracy`` (see the module docstring)."""
    match = reference.match
    if match is None:
        gain = found_accuracy - reference.best.accuracy
        per = gain / (cost.total / EFLOP) if cost.total > 0 else float("inf")
        return BreakEven("none", None, found_flops, found_accuracy, None, per, cost, reference)
    savings = match.flops - found_flops
    if savings <= 0:
        return BreakEven("never", None, found_flops, found_accuracy, savings, None, cost, reference)
    return BreakEven("queries", cost.total / savings, found_flops, found_accuracy, savings, None, cost, reference)
