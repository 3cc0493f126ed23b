"""Budgets in the user's terms: units, the reference graph ``ref:b``, GPU-seconds or dollars per query.

``ComputeRate`` converts GPU-seconds and dollars on a cluster to budget units (a compute-bound
estimate: FLOPs / (peak FLOP/s x utilisation)); ``parse_budget`` reads the CLI forms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tts_sim.core.flops import unit_flops
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import BudgetError, ConfigError
from tts_sim.tasks import TaskSpec


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


def _number(text: str, whole: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BudgetError(f"cannot read budget {whole!r}: {text!r} is not a number") from None
