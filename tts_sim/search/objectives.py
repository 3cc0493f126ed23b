"""Search objectives and Pareto fronts.

An objective turns an ``Evaluation`` into one score, higher is better:

- ``Accuracy``: accuracy under the FLOPs budget (the paper's objective);
- ``WeightedAccuracyLatency``: accuracy minus ``weight`` per second of latency (mean/p50/p95/p99);
- ``LatencyLimit``: accuracy where the latency percentile meets ``limit_s``; violators score below
  every compliant graph (penalised by how far they exceed the limit). An ``overloaded`` latency
  (the cluster cannot keep up with the load, so percentiles grow with the queries simulated)
  is infeasible whatever its percentiles: it scores below every compliant graph too.

``parse_objective`` reads the CLI forms ``accuracy``, ``weighted:W[:METRIC]``, ``p95<=5``.
Budgets in the user's terms (units, ``ref:b``, GPU-seconds, dollars) are parsed in
``tts_sim.core.budget``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tts_sim.core.evaluation import Evaluation
from tts_sim.errors import ConfigError

if TYPE_CHECKING:
    from tts_sim.search.result import SearchResult, Trial

METRICS = ("mean", "p50", "p95", "p99")


@runtime_checkable
class Objective(Protocol):
    """Read-only ``name`` and ``needs_latency``: frozen dataclasses and plain attributes both satisfy it."""

    @property
    def name(self) -> str: ...

    @property
    def needs_latency(self) -> bool: ...

    def score(self, evaluation: Evaluation) -> float: ...

    def describe(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


def _latency(evaluation: Evaluation, metric: str, who: str) -> float:
    if evaluation.latency is None:
        raise ConfigError(f"objective {who} needs latency, but the evaluator returned none (give it a cluster)")
    return float(getattr(evaluation.latency, f"{metric}_s"))


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ConfigError(f"latency metric {metric!r} unknown (known: {', '.join(METRICS)})")
    return metric


@dataclass(frozen=True)
class Accuracy:
    name: str = "accuracy"
    needs_latency: bool = False

    def score(self, evaluation: Evaluation) -> float:
        return float(evaluation.accuracy)

    def describe(self) -> str:
        return "maximise accuracy within the FLOPs budget"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True)
class WeightedAccuracyLatency:
    """``accuracy - weight * latency`` (latency in seconds of the chosen percentile)."""

    weight: float = 0.02
    metric: str = "p95"
    name: str = "weighted"
    needs_latency: bool = True

    def __post_init__(self) -> None:
        _check_metric(self.metric)
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ConfigError(f"latency weight must be a non-negative number, got {self.weight!r}")

    def score(self, evaluation: Evaluation) -> float:
        return float(evaluation.accuracy) - self.weight * _latency(evaluation, self.metric, self.name)

    def describe(self) -> str:
        return (f"maximise accuracy - {self.weight:g} x {self.metric} latency in seconds "
                f"(higher accuracy, lower latency) within the FLOPs budget")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "metric": self.metric}


@dataclass(frozen=True)
class LatencyLimit:
    """Accuracy subject to ``metric <= limit_s``; a violator scores ``accuracy - 1 - excess`` where
    ``excess`` is the relative overshoot, so it ranks below every compliant graph."""

    limit_s: float = 5.0
    metric: str = "p95"
    name: str = "latency-limit"
    needs_latency: bool = True

    def __post_init__(self) -> None:
        _check_metric(self.metric)
        if not (math.isfinite(self.limit_s) and self.limit_s > 0):
            raise ConfigError(f"latency limit must be a positive number of seconds, got {self.limit_s!r}")

    def score(self, evaluation: Evaluation) -> float:
        lat = _latency(evaluation, self.metric, self.name)
        acc = float(evaluation.accuracy)
        if getattr(evaluation.latency, "overloaded", False):  # meaningless percentiles: infeasible
            return acc - 1.0 - max(lat / self.limit_s - 1.0, 0.0)
        return acc if lat <= self.limit_s else acc - 1.0 - (lat / self.limit_s - 1.0)

    def describe(self) -> str:
        return (f"maximise accuracy within the FLOPs budget subject to {self.metric} latency <= {self.limit_s:g} s "
                f"(graphs over the limit are penalised)")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "limit_s": self.limit_s, "metric": self.metric}


_LIMIT = re.compile(r"^\s*(mean|p50|p95|p99)\s*<=\s*([0-9.eE+-]+)\s*s?\s*$")


def parse_objective(text: str | Objective | None) -> Objective:
    """``accuracy`` | ``weighted:W[:METRIC]`` | ``METRIC<=SECONDS`` (e.g. ``p95<=5``)."""
    if text is None:
        return Accuracy()
    if not isinstance(text, str):
        return text
    t = text.strip().lower()
    if t in ("accuracy", "acc"):
        return Accuracy()
    m = _LIMIT.match(t)
    if m:
        return LatencyLimit(_number(m.group(2), text), m.group(1))
    if t.startswith("weighted"):
        parts = t.split(":")
        weight = _number(parts[1], text) if len(parts) > 1 and parts[1] else 0.02
        return WeightedAccuracyLatency(weight, parts[2] if len(parts) > 2 else "p95")
    raise ConfigError(f"unknown objective {text!r} (expected 'accuracy', 'weighted:W[:p95]' or 'p95<=SECONDS')")


def objective_from_dict(data: Mapping[str, Any]) -> Objective:
    name = data.get("name")
    if name == "accuracy":
        return Accuracy()
    if name == "weighted":
        return WeightedAccuracyLatency(float(data["weight"]), str(data["metric"]))
    if name == "latency-limit":
        return LatencyLimit(float(data["limit_s"]), str(data["metric"]))
    raise ConfigError(f"unknown objective {name!r} in result file")


def _number(text: str, whole: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"objective {whole!r}: {text!r} is not a number") from None


# ----- Pareto front ----------------------------------------------------------------------------
def pareto_front(trials: SearchResult | Iterable[Trial], *, use_latency: bool | None = None,
                 metric: str = "p95") -> list[Trial]:
    """Non-dominated trials over (FLOPs down, latency down, accuracy up), ordered by FLOPs.

    Latency is used when every trial has it (or when ``use_latency`` says so); one entry per graph."""
    items = list(trials.trials if hasattr(trials, "trials") else trials)
    unique: dict[str, Trial] = {}
    for t in items:
        unique.setdefault(t.graph_key, t)
    items = list(unique.values())
    if use_latency is None:
        use_latency = bool(items) and all(t.latency is not None for t in items)
    _check_metric(metric)

    def point(t: Trial) -> tuple[float, ...]:
        if not use_latency:
            return (t.flops, -t.accuracy)
        if t.latency is None:
            raise ConfigError(f"pareto front over latency: trial {t.graph_key} has no latency")
        return (t.flops, float(t.latency[f"{metric}_s"]), -t.accuracy)

    pts = [point(t) for t in items]
    front = [t for t, p in zip(items, pts, strict=True)
             if not any(_dominates(q, p) for q in pts)]
    return sorted(front, key=lambda t: (t.flops, -t.accuracy))


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


# ----- budgets in the user's terms -------------------------------------------------------------
