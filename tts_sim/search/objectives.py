"""Search objectives, Pareto fronts, and budgets in the user's terms.

An objective turns an ``Evaluation`` into one score, higher is better:

- ``Accuracy``: accuracy under the FLOPs budget (the paper's objective);
- ``WeightedAccuracyLatency``: accuracy minus ``weight`` per second of latency (mean/p50/p95/p99);
- ``LatencyLimit``: accuracy where the latency percentile meets ``limit_s``; violators score below
  every compliant graph (penalised by how far they exceed the limit). An ``overloaded`` latency
  (the cluster cannot keep up with the load, so percentiles grow with the queries simulated)
  is infeasible whatever its percentiles: it scores below every compliant graph too.

``parse_objective`` reads the CLI forms ``accuracy``, ``weighted:W[:METRIC]``, ``p95<=5``.
Budgets may be given as GPU-seconds or dollars per query on a cluster: ``ComputeRate`` converts
them to budget units (compute-bound estimate: FLOPs / (peak FLOP/s x utilisation)).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tts_sim.core.evaluation import Evaluation
from tts_sim.core.flops import unit_flops
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import BudgetError, ConfigError
from tts_sim.tasks import TaskSpec

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
@dataclass(frozen=True)
class ComputeRate:
    """Effective compute of one device-second and its price.

    ``flops_per_s`` = peak FLOP/s x utilisation; ``price_per_hour`` in dollars per device-hour."""

    flops_per_s: float
    price_per_hour: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.flops_per_s) and self.flops_per_s > 0):
            raise ConfigError(f"compute rate must be a positive FLOP/s, got {self.flops_per_s!r}")
        if not (math.isfinite(self.price_per_hour) and self.price_per_hour >= 0):
            raise ConfigError(f"price per device-hour must be >= 0, got {self.price_per_hour!r}")

    @classmethod
    def from_cluster(cls, cluster: Any, price_per_hour: float | Mapping[str, float] = 0.0,
                     utilisation: float = 0.4) -> ComputeRate:
        """From a ``ClusterSpec`` (or one ``DeviceSpec``): mean peak FLOP/s of its devices x
        ``utilisation``; ``price_per_hour`` is one price for every device or a price per device name."""
        devices = list(getattr(cluster, "devices", [cluster]))
        if not devices or not all(hasattr(d, "peak_flops") for d in devices):
            raise ConfigError("compute rate: expected a cluster spec or device spec with peak_flops")
        if not 0 < utilisation <= 1:
            raise ConfigError(f"utilisation must lie in (0, 1], got {utilisation!r}")
        if isinstance(price_per_hour, Mapping):
            missing = [d.name for d in devices if d.name not in price_per_hour]
            if missing:
                raise ConfigError(f"no price per device-hour given for {missing[0]}")
            price = sum(float(price_per_hour[d.name]) for d in devices) / len(devices)
        else:
            price = float(price_per_hour)
        peak = sum(float(d.peak_flops) for d in devices) / len(devices)
        return cls(peak * utilisation, price, str(cluster) if hasattr(cluster, "devices") else str(devices[0].name))

    def gpu_seconds(self, flops: float) -> float:
        return flops / self.flops_per_s

    def dollars(self, flops: float) -> float:
        return self.gpu_seconds(flops) * self.price_per_hour / 3600.0


_BUDGET = re.compile(r"^\s*(?:(ref:)\s*(\d+)|\$\s*([0-9.eE+-]+)|([0-9.eE+-]+)\s*(units?|u|gpu-?s|usd|\$)?)\s*$")


def parse_budget(text: str | float, task: TaskSpec, rate: ComputeRate | None = None,
                 catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Budget units from the user's terms: ``18`` or ``18units`` (budget units), ``ref:8`` (the
    original code's reference graph of 8 LLaMA-1B nodes), ``0.5gpu-s`` (device-seconds per query on
    ``rate``), ``$0.002`` or ``0.002usd`` (dollars per query on ``rate``)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _positive_units(float(text), text)
    if not isinstance(text, str):
        raise ConfigError(f"budget must be a number or text, got {type(text).__name__}")
    m = _BUDGET.match(text.lower())
    if not m:
        raise ConfigError(f"cannot read budget {text!r} (expected e.g. 18, ref:8, 0.5gpu-s or $0.002)")
    ref, ref_b, dollars_a, number, unit = m.groups()
    if ref:
        from tts_sim.core.flops import reference_budget_units

        return reference_budget_units(int(ref_b), task, catalog)
    value = _number(dollars_a if dollars_a is not None else number, str(text))
    if dollars_a is None and unit in (None, "unit", "units", "u"):
        return _positive_units(value, text)
    if rate is None:
        raise ConfigError(f"budget {text!r} is in GPU-seconds or dollars: it needs a cluster (compute rate)")
    if dollars_a is not None or unit in ("usd", "$"):
        return units_from_dollars(value, task, rate, catalog)
    return units_from_gpu_seconds(value, task, rate, catalog)


def _positive_units(value: float, text: Any) -> float:
    if not (math.isfinite(value) and value > 0):
        raise BudgetError(f"budget {text!r} must be a positive, finite number of units")
    return value


def units_from_gpu_seconds(gpu_seconds: float, task: TaskSpec, rate: ComputeRate,
                           catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Budget units that ``gpu_seconds`` device-seconds per query buy on ``rate``."""
    if not (math.isfinite(gpu_seconds) and gpu_seconds > 0):
        raise BudgetError(f"GPU-seconds per query must be positive, got {gpu_seconds!r}")
    return gpu_seconds * rate.flops_per_s / unit_flops(task, catalog)


def units_from_dollars(dollars: float, task: TaskSpec, rate: ComputeRate,
                       catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Budget units that ``dollars`` per query buy on ``rate`` (needs a price per device-hour)."""
    if not (math.isfinite(dollars) and dollars > 0):
        raise BudgetError(f"dollars per query must be positive, got {dollars!r}")
    if rate.price_per_hour <= 0:
        raise ConfigError("a dollar budget needs a price per device-hour (price_per_hour > 0)")
    return units_from_gpu_seconds(dollars / rate.price_per_hour * 3600.0, task, rate, catalog)
