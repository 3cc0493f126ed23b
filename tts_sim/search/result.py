"""What a search returns: every evaluation (``Trial``), the chosen graph, its held-out evaluation,
and the search's cost. JSON round trip with ``save`` / ``load`` (``validate`` reads the top-k)."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.jsonio import read_json

SCHEMA = "tts-sim/search-result"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Trial:
    """One evaluation a searcher paid for."""

    index: int  # 0-based, in evaluation order
    graph: Graph
    score: float  # the objective's search-time score
    accuracy: float
    ci_low: float
    ci_high: float
    n_questions: int
    flops: float  # per query
    units: float
    latency: dict[str, Any] | None
    wall_s: float  # evaluator time
    phase: str = ""  # which step of the searcher asked for it
    full: bool = True  # scored on the whole search split (pre-tests use fewer questions)

    @property
    def graph_key(self) -> str:
        return graph_key(self.graph)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["graph"] = self.graph.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Trial:
        d = dict(data)
        d["graph"] = Graph.from_dict(d["graph"], catalog)
        return cls(**d)


@dataclass
class SearchCost:
    """What the search spent. Agent tokens are estimates (chars / 4) unless ``tokens_estimated`` is False."""

    evaluations: int = 0
    cache_hits: int = 0
    penalised: int = 0  # infeasible proposals answered with a penalty, not evaluated
    questions_scored: int = 0
    simulated_flops: float = 0.0  # sum over evaluations of FLOPs per query x questions
    wall_s: float = 0.0
    evaluator_s: float = 0.0
    agent_calls: int = 0
    agent_prompt_tokens: int = 0
    agent_completion_tokens: int = 0
    tokens_estimated: bool = True
    agent_fallbacks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    searcher: str
    seed: int
    config: dict[str, Any]
    trials: list[Trial]
    best: Graph
    best_index: int | None  # the trial that chose ``best`` (None if the searcher returned an unevaluated graph)
    heldout: Evaluation | None
    cost: SearchCost
    agent_log: list[dict[str, Any]] = field(default_factory=list)
    expected_accuracy: float | None = None  # noise-free accuracy of ``best`` when the evaluator offers it
    versions: dict[str, str] = field(default_factory=dict)
    #: ``tts_sim.search.breakeven.BreakEven.to_dict()`` (full cost, break-even against the presets);
    #: None when the evaluator has no noise-free score.
    breakeven: dict[str, Any] | None = None

    @property
    def best_trial(self) -> Trial | None:
        return self.trials[self.best_index] if self.best_index is not None else None

    def top_k(self, k: int) -> list[Trial]:
        """The ``k`` best distinct graphs by search-time score (full-split trials first)."""
        ranked = sorted(self.trials, key=lambda t: (not t.full, -t.score, t.flops, t.index))
        out: list[Trial] = []
        seen: set[str] = set()
        for t in ranked:
            if t.graph_key not in seen:
                seen.add(t.graph_key)
                out.append(t)
            if len(out) == k:
                break
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "version": SCHEMA_VERSION,
            "searcher": self.searcher, "seed": self.seed, "config": self.config,
            "best": self.best.to_dict(), "best_index": self.best_index,
            "heldout": self.heldout.to_dict(per_question=True) if self.heldout else None,
            "expected_accuracy": self.expected_accuracy,
            "cost": self.cost.to_dict(), "breakeven": self.breakeven, "versions": self.versions,
            "trials": [t.to_dict() for t in self.trials], "agent_log": self.agent_log,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Any, catalog: ModelCatalog | None = DEFAULT_CATALOG,
                  origin: str = "result") -> SearchResult:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"{origin}: not a tts-sim search result")
        if data.get("version") != SCHEMA_VERSION:
            raise ConfigError(f"{origin}: search result version {data.get('version')!r} unsupported "
                              f"(this tts-sim reads {SCHEMA_VERSION})")
        try:
            return cls(
                searcher=str(data["searcher"]), seed=int(data["seed"]), config=dict(data["config"]),
                trials=[Trial.from_dict(t, catalog) for t in data["trials"]],
                best=Graph.from_dict(data["best"], catalog), best_index=data["best_index"],
                heldout=evaluation_from_dict(data["heldout"], catalog) if data["heldout"] else None,
                cost=SearchCost(**data["cost"]), agent_log=list(data.get("agent_log", [])),
                expected_accuracy=data.get("expected_accuracy"), versions=dict(data.get("versions", {})),
                breakeven=data.get("breakeven"),
            )
        except TtsSimError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: malformed search result ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, path: str | Path, catalog: ModelCatalog | None = DEFAULT_CATALOG) -> SearchResult:
        return cls.from_dict(read_json(path, "search result"), catalog, origin=str(path))


def evaluation_from_dict(data: Mapping[str, Any], catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Evaluation:
    """Inverse of ``Evaluation.to_dict``."""
    lat = data.get("latency")
    return Evaluation(
        graph=Graph.from_dict(data["graph"], catalog), task=str(data["task"]), accuracy=float(data["accuracy"]),
        ci_low=float(data["ci_low"]), ci_high=float(data["ci_high"]), n_questions=int(data["n_questions"]),
        flops=float(data["flops"]), budget_units=float(data["budget_units"]),
        per_question=tuple(float(x) for x in data.get("per_question", ())),
        questions=tuple(int(q) for q in data.get("questions", ())),
        latency=LatencyStats(**lat) if lat else None, source=str(data.get("source", "simulated")),
        meta=dict(data.get("meta", {})),
    )


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("tts-sim", "numpy", "scikit-optimize", "optuna"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
