"""Latency predictors: service times of prefill and decode steps of a model on a device.

``RooflinePredictor``: a forward pass takes its compute time (FLOPs / (peak x compute_eff)) and
its memory time (bytes / (bandwidth x bandwidth_eff)) combined by ``combine`` (the longer of the
two, or, with an ``overlap`` p < inf, their p-norm: where the two are close, as in a prefill of a
few hundred tokens, kernels neither saturate compute nor bandwidth), plus a fixed overhead (kernel
launches, scheduling) per forward pass. FLOPs follow the paper's formula (tts_sim/flops.py):
a prefill of Np tokens costs 2*M*Np + 2*L*D*Np*(Np+1), the decode step at context c costs
2*M + 4*L*D*c (summing it over c = Np+1..Np+Nd gives the paper's decode FLOPs exactly). Bytes are
the weights once per pass plus the KV cache (written by prefill, read by each decode step).
So prefill is compute-bound and decode bandwidth-bound for any realistic batch.

Factors per device: a predictor's own ``compute_eff``/``bandwidth_eff``/``overhead_s``/``overlap`` apply unless
``per_device`` names the device (factors fitted to its measured tables by ``fit_roofline``) or
``use_catalogue`` is on and the device's catalogue entry carries a ``Calibration`` (fitted to
published measurements, tts_sim/sim/cluster/calibration.py). On a tensor-parallel group
(``DeviceSpec.tp`` > 1) FLOPs and bytes are split over the group and the all-reduces of
tts_sim/sim/cluster/tensor_parallel.py are added.

``TablePredictor``: measured ``LatencyTable`` rows where (model, device) was profiled, else a
fallback roofline; ``fit_roofline`` calibrates the roofline's factors on measured tables.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.optimize import least_squares

from tts_sim.core.devices import DeviceSpec, get_device
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog, ModelSpec
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.registry import Registry
from tts_sim.sim.cluster.tensor_parallel import allreduce_s

ROOFLINE = "roofline"
PROFILE_TABLE = "profile-table"


@runtime_checkable
class LatencyPredictor(Protocol):
    """Predicts service times; ``source`` says which kind of prediction a pair gets."""

    @property
    def name(self) -> str:
        """What reports call the predictor (a read-only attribute satisfies it)."""
        ...

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        """Seconds to prefill ``batch`` prompts of ``prompt_tokens`` tokens each (whole batch)."""
        ...

    def decode_step_s(self, model: ModelSpec, device: DeviceSpec, context_tokens: float, batch: int) -> float:
        """Seconds for one decode step: one new token for each of ``batch`` sequences."""
        ...

    def source(self, model: ModelSpec, device: DeviceSpec) -> str:
        """``"roofline"`` or ``"profile-table"``."""
        ...

    # Optional (read with ``getattr``; 0 without it): ``switch_s(model, device) -> float``, what a
    # batch of ``model`` costs beyond its steps when the device's previous batch was another model's.


#: Latency predictor config dataclasses by name (entry-point group ``tts_sim.latency_predictors``).
LATENCY_PREDICTORS: Registry[type] = Registry("latency_predictors")


def prefill_work(model: ModelSpec, prompt_tokens: float, batch: int, weight_bytes: float,
                 kv_bytes_per_token: float) -> tuple[float, float]:
    """(FLOPs, bytes moved) of prefilling ``batch`` prompts: weights read once, KV cache written."""
    n = prompt_tokens
    flops = batch * (2.0 * model.m_flops * n + 2.0 * model.layers * model.hidden * n * (n + 1))
    return flops, weight_bytes + batch * n * kv_bytes_per_token


def decode_work(model: ModelSpec, context_tokens: float, batch: int, weight_bytes: float,
                kv_bytes_per_token: float) -> tuple[float, float]:
    """(FLOPs, bytes moved) of one decode step at context ``c``: weights and the batch's KV cache read."""
    c = context_tokens
    flops = batch * (2.0 * model.m_flops + 4.0 * model.layers * model.hidden * c)
    return flops, weight_bytes + batch * c * kv_bytes_per_token


@dataclass(frozen=True)
class RooflinePredictor:
    """``combine(compute time, memory time, overlap)`` + ``overhead_s`` per forward pass.

    Defaults are uncalibrated but typical of serving engines (about half of peak FLOP/s in
    prefill, three quarters of bandwidth in decode); calibrate them with ``fit_roofline``.
    ``bytes_per_param`` overrides the model's weight precision (e.g. 1.0 for int8 weights) and
    ``kv_bytes_per_param`` its KV-cache precision.
    """

    compute_eff: float = 0.5
    bandwidth_eff: float = 0.75
    overhead_s: float = 5e-4
    bytes_per_param: float | None = None
    kv_bytes_per_param: float | None = None
    name: str = ROOFLINE
    #: (device name in lower case, compute_eff, bandwidth_eff, overhead_s): fitted per device
    per_device: tuple[tuple[str, float, float, float], ...] = ()
    #: apply the device catalogue's calibration where a device has one (and ``per_device`` does not)
    use_catalogue: bool = False
    #: p of ``combine`` (inf: the max of compute and memory time), on every device but those whose catalogue
    #: calibration applies (``use_catalogue`` and not in ``per_device``: they take the catalogue's)
    overlap: float = math.inf

    def __post_init__(self) -> None:
        for attr in ("compute_eff", "bandwidth_eff"):
            value = getattr(self, attr)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"roofline {attr} must be a positive number, got {value!r}")
        if not (math.isfinite(self.overhead_s) and self.overhead_s >= 0):
            raise ConfigError(f"roofline overhead_s must be >= 0, got {self.overhead_s!r}")
        if isinstance(self.overlap, bool) or not (isinstance(self.overlap, (int, float)) and self.overlap >= 1):
            raise ConfigError(f"roofline overlap must be >= 1 (inf: no overlap penalty), got {self.overlap!r}")
        for attr in ("bytes_per_param", "kv_bytes_per_param"):
            value = getattr(self, attr)
            if value is not None and not value > 0:
                raise ConfigError(f"roofline {attr} must be positive, got {value!r}")
        for entry in self.per_device:
            if len(entry) != 4:
                raise ConfigError(f"roofline per_device entries are (device, compute_eff, bandwidth_eff, overhead_s), "
                                  f"got {entry!r}")
            name, ce, be, oh = entry
            if not (ce > 0 and be > 0 and oh >= 0 and math.isfinite(ce + be + oh)):
                raise ConfigError(f"roofline factors for device {name!r} must be positive, got {(ce, be, oh)!r}")

    def weight_bytes(self, model: ModelSpec) -> float:
        bpp = self.bytes_per_param if self.bytes_per_param is not None else model.bytes_per_param
        return model.params * bpp

    def kv_bytes_per_token(self, model: ModelSpec) -> float:
        if self.kv_bytes_per_param is None:
            return model.kv_bytes_per_token
        return model.kv_bytes_per_token / model.bytes_per_param * self.kv_bytes_per_param

    def factors(self, device: DeviceSpec) -> tuple[float, float, float]:
        """(compute_eff, bandwidth_eff, overhead_s) used on ``device``."""
        return self._resolve(device)[:3]

    def overlap_for(self, device: DeviceSpec) -> float:
        """p of ``combine`` on ``device``: the catalogue's where its calibration applies, else the own."""
        return self._resolve(device)[3]

    def _resolve(self, device: DeviceSpec) -> tuple[float, float, float, float]:
        """(compute_eff, bandwidth_eff, overhead_s, overlap) on ``device``: its ``per_device`` factors
        (with the own overlap), else the catalogue's calibration when used, else the own ones."""
        if self.per_device:
            key = device.name.lower()
            for name, ce, be, oh in self.per_device:
                if name == key:
                    return ce, be, oh, self.overlap
        cal = device.calibration
        if self.use_catalogue and cal is not None:
            return cal.compute_eff, cal.bandwidth_eff, cal.overhead_s, cal.overlap
        return self.compute_eff, self.bandwidth_eff, self.overhead_s, self.overlap

    def kernels_s(self, device: DeviceSpec, flops: float, nbytes: float) -> float:
        """Seconds of one forward pass's kernels (``flops`` and ``nbytes``), without the fixed overhead."""
        return self._time(device, flops, nbytes, with_overhead=False)

    def _time(self, device: DeviceSpec, flops: float, nbytes: float, with_overhead: bool = True) -> float:
        ce, be, oh, p = self._resolve(device)
        seconds = combine(flops / (device.peak_flops * ce), nbytes / (device.mem_bw * be), p)
        return seconds + oh if with_overhead else seconds

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        _check(prompt_tokens, batch, "prompt")
        seconds = self._time(device, *prefill_work(model, prompt_tokens, batch, self.weight_bytes(model),
                                                   self.kv_bytes_per_token(model)))
        return seconds if device.tp == 1 else seconds + allreduce_s(model, device, batch * prompt_tokens)

    def decode_step_s(self, model: ModelSpec, device: DeviceSpec, context_tokens: float, batch: int) -> float:
        _check(context_tokens, batch, "context")
        seconds = self._time(device, *decode_work(model, context_tokens, batch, self.weight_bytes(model),
                                                  self.kv_bytes_per_token(model)))
        return seconds if device.tp == 1 else seconds + allreduce_s(model, device, batch)

    def source(self, model: ModelSpec, device: DeviceSpec) -> str:
        return ROOFLINE


def combine(compute: float, memory: float, p: float) -> float:
    """Seconds of a pass with ``compute`` and ``memory`` seconds (both >= 0): the max for p = inf
    (perfect overlap), else the p-norm (p = 1: the sum, no overlap)."""
    if compute < 0 or memory < 0:
        raise ConfigError(f"compute and memory seconds must be >= 0, got {compute!r} and {memory!r}")
    hi = compute if compute > memory else memory
    if p == math.inf or hi <= 0 or hi == math.inf:
        return hi
    return hi * ((compute / hi) ** p + (memory / hi) ** p) ** (1.0 / p)


def _check(tokens: float, batch: int, what: str) -> None:
    if not tokens >= 0:
        raise ConfigError(f"{what} tokens must be >= 0, got {tokens!r}")
    if not batch >= 1:
        raise ConfigError(f"batch must be >= 1, got {batch!r}")


# ----- measured tables -------------------------------------------------------------------------
class _Surface:
    """Seconds as a function of (tokens, batch) from measured rows.

    Between measured points: piecewise power law (linear in log-log), first along tokens within
    each measured batch size, then along batch. Outside the measured range of either axis (or
    where an axis has a single point): the nearest measured value scaled by the roofline's ratio
    ``shape(x, b) / shape(x_end, b)``, so extrapolation follows the physics of the calibrated
    roofline instead of a straight line that may turn negative.
    """

    def __init__(self, rows: Sequence[tuple[int, int, float]], shape: Callable[[float, int], float], what: str):
        acc: dict[int, dict[int, list[float]]] = {}
        for tokens, batch, seconds in rows:
            if not (tokens >= 1 and batch >= 1 and seconds > 0 and math.isfinite(seconds)):
                raise ProfileError(f"{what}: bad row (tokens={tokens}, batch={batch}, seconds={seconds}); "
                                   "tokens and batch must be >= 1 and seconds > 0")
            acc.setdefault(int(batch), {}).setdefault(int(tokens), []).append(float(seconds))
        self.shape = shape
        self.batches = sorted(acc)
        self.slices = {b: (sorted(acc[b]), [float(np.mean(acc[b][t])) for t in sorted(acc[b])]) for b in acc}

    def _along_tokens(self, x: float, batch: int) -> float:
        xs, ys = self.slices[batch]
        return _interp(x, xs, ys, lambda v: self.shape(v, batch))

    def __call__(self, tokens: float, batch: int) -> float:
        x = max(float(tokens), 1.0)
        bs = self.batches
        return _interp(float(batch), bs, [self._along_tokens(x, b) for b in bs],
                       lambda b: self.shape(x, max(1, round(b))))


def _interp(x: float, xs: Sequence[float], ys: Sequence[float], shape: Callable[[float], float]) -> float:
    """Power-law interpolation inside [xs[0], xs[-1]], roofline-ratio extrapolation outside."""
    if x <= xs[0] or x >= xs[-1]:
        end = 0 if x <= xs[0] else len(xs) - 1
        return ys[end] if x == xs[end] else ys[end] * shape(x) / shape(xs[end])
    hi = int(np.searchsorted(xs, x))
    x0, x1, y0, y1 = xs[hi - 1], xs[hi], ys[hi - 1], ys[hi]
    w = math.log(x / x0) / math.log(x1 / x0)
    return math.exp((1 - w) * math.log(y0) + w * math.log(y1))


class TablePredictor:
    """Measured latency tables where (model, device) was profiled, ``fallback`` elsewhere.

    A table is matched by model name (exact) and device name (any case; it must name a device of
    ``DEVICES``). If several tables measure one pair, pass ``backend`` to choose.
    """

    name = "table"

    def __init__(self, tables: Iterable[LatencyTable], fallback: RooflinePredictor | None = None,
                 backend: str | None = None) -> None:
        self.fallback = fallback if fallback is not None else RooflinePredictor()
        self._pairs: dict[tuple[str, str], tuple[_Surface, _Surface]] = {}
        self._tables: dict[tuple[str, str], LatencyTable] = {}
        for table in tables:
            if backend is not None and table.backend != backend:
                continue
            key = (table.model, table.device.strip().lower())
            what = f"latency table {table.model} on {table.device} ({table.backend})"
            if key in self._tables:
                other = self._tables[key]
                raise ProfileError(f"two latency tables for {table.model} on {table.device} "
                                   f"(backends {other.backend!r} and {table.backend!r}): pass backend= to choose")
            if not table.prefill or not table.decode:
                raise ProfileError(f"{what} needs both prefill and decode rows")
            self._tables[key] = table
        self._models: dict[tuple[str, str], tuple[ModelSpec, DeviceSpec]] = {}

    def _surfaces(self, model: ModelSpec, device: DeviceSpec) -> tuple[_Surface, _Surface] | None:
        if device.tp != 1:  # tables measure one GPU: a tensor-parallel group gets the roofline
            return None
        key = (model.name, device.name.lower())
        table = self._tables.get(key)
        if table is None:
            return None
        surfaces = self._pairs.get(key)
        if surfaces is None:
            fb = self.fallback
            what = f"latency table {table.model} on {table.device} ({table.backend})"
            surfaces = (_Surface(table.prefill, lambda n, b: fb.prefill_s(model, device, n, b), what + " prefill"),
                        _Surface(table.decode, lambda c, b: fb.decode_step_s(model, device, c, b), what + " decode"))
            self._pairs[key] = surfaces
        return surfaces

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        _check(prompt_tokens, batch, "prompt")
        surfaces = self._surfaces(model, device)
        if surfaces is None:
            return self.fallback.prefill_s(model, device, prompt_tokens, batch)
        return surfaces[0](prompt_tokens, batch)

    def decode_step_s(self, model: ModelSpec, device: DeviceSpec, context_tokens: float, batch: int) -> float:
        _check(context_tokens, batch, "context")
        surfaces = self._surfaces(model, device)
        if surfaces is None:
            return self.fallback.decode_step_s(model, device, context_tokens, batch)
        return surfaces[1](context_tokens, batch)

    def source(self, model: ModelSpec, device: DeviceSpec) -> str:
        if device.tp == 1 and (model.name, device.name.lower()) in self._tables:
            return PROFILE_TABLE
        return self.fallback.source(model, device)

    def switch_s(self, model: ModelSpec, device: DeviceSpec) -> float:
        """The table's measured cost of switching to ``model`` on ``device`` (0 without a table)."""
        table = self._tables.get((model.name, device.name.lower())) if device.tp == 1 else None
        return table.switch_s if table is not None else 0.0


# ----- calibration -----------------------------------------------------------------------------
def fit_roofline(tables: Iterable[LatencyTable], catalog: ModelCatalog = DEFAULT_CATALOG,
                 devices: Mapping[str, DeviceSpec] | Iterable[DeviceSpec] | None = None, *,
                 bytes_per_param: float | None = None, kv_bytes_per_param: float | None = None,
                 fit_overhead: bool = True) -> RooflinePredictor:
    """Least-squares fit of ``compute_eff``, ``bandwidth_eff`` (and ``overhead_s``) to measured rows.

    Residuals are log(predicted / measured), so every row counts by its relative error. The roofline
    is not smooth at its kink, so the fit starts from a small grid of points and keeps the best.
    ``devices`` maps table device names to specs (default: the ``DEVICES`` registry).
    """
    lookup = _device_lookup(devices)
    proto = RooflinePredictor(bytes_per_param=bytes_per_param, kv_bytes_per_param=kv_bytes_per_param)
    rows: dict[str, list[tuple[float, float, float]]] = {}  # device -> (compute s, memory s, measured s)
    for table in tables:
        if table.model not in catalog:
            raise ProfileError(f"latency table for unknown model {table.model!r}")
        model, device = catalog[table.model], lookup(table.device)
        wb, kvb = proto.weight_bytes(model), proto.kv_bytes_per_token(model)
        for work, measured in ((prefill_work, table.prefill), (decode_work, table.decode)):
            for tokens, batch, secs in measured:
                if not (tokens >= 1 and batch >= 1 and secs > 0):
                    raise ProfileError(f"latency table {table.model} on {table.device}: bad row "
                                       f"({tokens}, {batch}, {secs})")
                f, b = work(model, tokens, batch, wb, kvb)
                rows.setdefault(device.name.lower(), []).append((f / device.peak_flops, b / device.mem_bw, secs))
    n_params = 3 if fit_overhead else 2
    pooled = [r for device_rows in rows.values() for r in device_rows]
    if len(pooled) < n_params:
        raise ProfileError(f"fit_roofline needs at least {n_params} measured rows, got {len(pooled)}")
    ce, be, overhead = fit_factors(pooled, fit_overhead)
    per_device = tuple((name, *fit_factors(device_rows, fit_overhead)) for name, device_rows in sorted(rows.items())
                       if len(device_rows) >= n_params)
    return RooflinePredictor(ce, be, overhead, bytes_per_param, kv_bytes_per_param, per_device=per_device,
                             use_catalogue=True)


def fit_factors(rows: Sequence[tuple[float, float, float]], fit_overhead: bool = True) -> tuple[float, float, float]:
    """(compute_eff, bandwidth_eff, overhead_s) minimising the log errors of ``rows``, each row being
    (seconds at 100% compute, seconds at 100% bandwidth, measured seconds)."""
    t_compute = np.asarray([r[0] for r in rows])
    t_memory = np.asarray([r[1] for r in rows])
    seconds = np.asarray([r[2] for r in rows])
    log_meas = np.log(seconds)

    def residuals(theta: np.ndarray) -> np.ndarray:
        overhead = theta[2] if fit_overhead else 0.0
        return np.log(np.maximum(t_compute / theta[0], t_memory / theta[1]) + overhead) - log_meas

    upper_overhead = float(np.min(seconds))
    n_params = 3 if fit_overhead else 2
    lower = [1e-5, 1e-5, 0.0][:n_params]
    upper = [10.0, 10.0, upper_overhead][:n_params]
    best = None
    overheads = (0.0, 0.5 * upper_overhead) if fit_overhead else (None,)
    for ce, be, oh in itertools.product((0.05, 0.3, 0.9), (0.05, 0.3, 0.9), overheads):
        x0 = [ce, be] + ([] if oh is None else [oh])
        fit = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac", method="trf",
                            xtol=1e-12, ftol=1e-12, gtol=1e-12)
        if best is None or fit.cost < best.cost:
            best = fit
    assert best is not None
    return float(best.x[0]), float(best.x[1]), float(best.x[2]) if fit_overhead else 0.0


def _device_lookup(devices: Mapping[str, DeviceSpec] | Iterable[DeviceSpec] | None) -> Callable[[str], DeviceSpec]:
    if devices is None:
        return get_device
    if isinstance(devices, Mapping):
        table = {str(k).lower(): v for k, v in devices.items()}
    else:
        table = {d.name.lower(): d for d in devices}

    def lookup(name: str) -> DeviceSpec:
        try:
            return table[name.strip().lower()]
        except KeyError:
            raise ProfileError(f"latency table names device {name!r}, which is not among "
                               f"{', '.join(sorted(table)) or 'none'}") from None

    return lookup


# ----- the registry: a name -> a config dataclass whose build() makes the predictor ---------------
@dataclass
class RooflineConfig:
    """The roofline, calibrated per device: on the profile's latency tables where it has them, else
    on the device catalogue's published-measurement calibration, else the defaults."""

    profile: Any = field(default=None, metadata={"runtime": True})
    catalog: ModelCatalog = field(default=DEFAULT_CATALOG, metadata={"runtime": True})

    def build(self) -> RooflinePredictor:
        tables = getattr(self.profile, "latency", None)
        return fit_roofline(tables, self.catalog) if tables else RooflinePredictor(use_catalogue=True)


@dataclass
class ProfileTableConfig:
    """The profile's measured tables where they cover a (model, device), calibrated roofline elsewhere."""

    profile: Any = field(default=None, metadata={"runtime": True})
    catalog: ModelCatalog = field(default=DEFAULT_CATALOG, metadata={"runtime": True})

    def build(self) -> TablePredictor:
        tables = getattr(self.profile, "latency", None)
        if not tables:
            raise ConfigError(f"latency predictor {PROFILE_TABLE!r} needs a profile with latency tables")
        return TablePredictor(tables, fit_roofline(tables, self.catalog))


def predictor_for(profile: Any = None, catalog: ModelCatalog = DEFAULT_CATALOG,
                  name: str | None = None) -> LatencyPredictor:
    """Build a predictor through ``LATENCY_PREDICTORS``; no name: the profile's tables when it has
    them, else the roofline."""
    if name is None:
        name = PROFILE_TABLE if getattr(profile, "latency", None) else ROOFLINE
    predictor: LatencyPredictor = LATENCY_PREDICTORS.build(name, {"profile": profile, "catalog": catalog})
    return predictor
