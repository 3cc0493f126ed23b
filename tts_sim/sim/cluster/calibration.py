"""Per-device roofline factors fitted to published latencies (tts_sim/data/device_calibration.json).

Each figure is a published measurement of a 7-8B model on one device kind (source, URL and caveats
in the file). ``predict`` gives the roofline's value of a figure: ``ttft`` is one prefill,
``latency`` a prefill plus ``output_tokens - 1`` decode steps (each at its own context; the prefill
yields the first token), ``decode_tps`` the inverse of one decode step at the reply's mean context,
``kernels`` the GPU time of the decoder layers' dense operators over ``prompt_tokens`` tokens (2 x
layer parameters x tokens FLOPs, the layers' weights read once; no fixed overhead, no attention
kernel, no all-reduce: what Vidur's operator tables measure).
``fit_calibrations`` fits, per device, the factors the file lists under ``fit`` to that device's
``fit: true`` single-GPU figures (least squares on log errors, efficiencies at most 1: no device
beats its datasheet; ``overlap``, the p of the roofline's p-norm, in [1, 64]); the other factors
keep the roofline defaults. ``link_latencies`` gives each device's all-reduce latency (the median of
its measured ``allreduce`` rows). The values live in the device catalogue (``CALIBRATIONS`` and the
devices' ``link_latency_s`` in tts_sim/core/devices.py, each with its source);
tests/test_calibration.py checks them against a refit.
"""

from __future__ import annotations

import importlib.resources
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from tts_sim.core.devices import DeviceSpec, get_device
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog, ModelSpec
from tts_sim.errors import ProfileError
from tts_sim.jsonio import loads
from tts_sim.sim.cluster.latency import RooflinePredictor, combine, decode_work, prefill_work

DATA_FILE = "device_calibration.json"
METRICS = ("ttft", "latency", "decode_tps", "kernels")
FACTORS = ("compute_eff", "bandwidth_eff", "overhead_s", "overlap")
MAX_EFF = 1.0
OVERLAP_BOUNDS = (1.0, 64.0)
Factors = tuple[float, float, float, float]


@dataclass(frozen=True)
class Figure:
    """One published measurement (``value`` in seconds, or tokens/s for ``decode_tps``)."""

    source: str
    device: str
    model: str
    tp: int
    batch: int
    prompt_tokens: int
    output_tokens: int
    metric: str
    value: float
    fit: bool

    @property
    def label(self) -> str:
        tp = "" if self.tp == 1 else f" (TP {self.tp})"
        return f"{self.model} {self.device}{tp} {self.metric} b{self.batch} {self.prompt_tokens}/{self.output_tokens}"


def load_data(text: str | None = None) -> dict[str, Any]:
    """The calibration file packaged with tts_sim (or ``text`` in its format)."""
    if text is None:
        text = importlib.resources.files("tts_sim.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = loads(text, "device calibration data", stored=True)
    if not isinstance(data, dict) or not {"sources", "devices", "figures"} <= set(data):
        raise ProfileError("device calibration data needs 'sources', 'devices' and 'figures'")
    return data


def calibration_catalog(data: Mapping[str, Any], base: ModelCatalog = DEFAULT_CATALOG) -> ModelCatalog:
    """``base`` plus the models only the published figures use (``models`` in the file)."""
    catalog = ModelCatalog(base.specs())
    for entry in data.get("models", []):
        catalog.add(ModelSpec(**entry))
    return catalog


def figures(data: Mapping[str, Any]) -> list[Figure]:
    out = []
    for i, raw in enumerate(data["figures"]):
        try:
            fig = Figure(raw["source"], raw["device"], raw["model"], int(raw["tp"]), int(raw["batch"]),
                         int(raw["prompt_tokens"]), int(raw["output_tokens"]), raw["metric"], float(raw["value"]),
                         bool(raw["fit"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"device calibration figure {i}: {exc!r}") from None
        if fig.source not in data["sources"] or fig.metric not in METRICS or fig.value <= 0 or fig.output_tokens < 1:
            raise ProfileError(f"device calibration figure {i} ({fig.label}): unknown source or metric, or a "
                               "non-positive value")
        out.append(fig)
    return out


def _contexts(fig: Figure) -> list[float]:
    """Contexts of the decode steps in a figure."""
    if fig.metric in ("ttft", "kernels"):
        return []
    if fig.metric == "decode_tps":
        return [fig.prompt_tokens + (fig.output_tokens + 1) / 2]
    return [float(fig.prompt_tokens + k) for k in range(1, fig.output_tokens)]


def seconds_of(fig: Figure) -> float:
    """The figure as seconds (a ``decode_tps`` figure: the seconds of one decode step)."""
    return 1.0 / fig.value if fig.metric == "decode_tps" else fig.value


def layer_work(model: ModelSpec, tokens: float, batch: int) -> tuple[float, float]:
    """(FLOPs, bytes) of the decoder layers' dense operators over ``batch`` x ``tokens`` tokens: the
    parameters less an untied input embedding and LM head, each weight read once. Right for Llama-2-7B,
    the one model with ``kernels`` figures; a model with tied embeddings would need one ``vocab x hidden`` less."""
    params = model.params - 2 * model.vocab * model.hidden
    return 2.0 * params * tokens * batch, params * model.bytes_per_param


def predict(fig: Figure, predictor: RooflinePredictor, catalog: ModelCatalog,
            device: DeviceSpec | None = None) -> float:
    """The predictor's seconds for ``fig`` (of one decode step for ``decode_tps``)."""
    model = catalog[fig.model]
    dev = (device or get_device(fig.device)).group(fig.tp)
    if fig.metric == "kernels":
        return predictor.kernels_s(dev, *layer_work(model, fig.prompt_tokens, fig.batch))
    decode = sum(predictor.decode_step_s(model, dev, c, fig.batch) for c in _contexts(fig))
    if fig.metric == "decode_tps":
        return decode
    return predictor.prefill_s(model, dev, fig.prompt_tokens, fig.batch) + decode


def _passes(fig: Figure, catalog: ModelCatalog) -> list[tuple[float, float, float]]:
    """(seconds at 100% compute, seconds at 100% bandwidth, overheads) of each forward pass of a one-GPU
    figure; overheads is 1, or 0 for a ``kernels`` figure."""
    model, dev = catalog[fig.model], get_device(fig.device)
    if fig.metric == "kernels":
        f, b = layer_work(model, fig.prompt_tokens, fig.batch)
        return [(f / dev.peak_flops, b / dev.mem_bw, 0.0)]
    wb, kvb = model.weight_bytes, model.kv_bytes_per_token
    works = [] if fig.metric == "decode_tps" else [prefill_work(model, fig.prompt_tokens, fig.batch, wb, kvb)]
    works += [decode_work(model, c, fig.batch, wb, kvb) for c in _contexts(fig)]
    return [(f / dev.peak_flops, b / dev.mem_bw, 1.0) for f, b in works]


def fit_device(figs: list[Figure], fit: list[str], catalog: ModelCatalog) -> Factors:
    """(compute_eff, bandwidth_eff, overhead_s, overlap): the factors in ``fit`` fitted to ``figs``,
    the others the roofline's defaults."""
    if len(figs) < len(fit):
        raise ProfileError(f"{len(figs)} figures cannot fit {len(fit)} factors")
    base = RooflinePredictor()
    fixed = {k: getattr(base, k) for k in FACTORS if k not in fit}
    passes = [_passes(f, catalog) for f in figs]
    measured = np.log([seconds_of(f) for f in figs])

    def unpack(theta: np.ndarray) -> Factors:
        values = {**fixed, **dict(zip(fit, (float(x) for x in theta), strict=True))}
        return values["compute_eff"], values["bandwidth_eff"], values["overhead_s"], values["overlap"]

    def residuals(theta: np.ndarray) -> np.ndarray:
        ce, be, oh, p = unpack(theta)
        return np.log([sum(combine(c / ce, m / be, p) + oh * n for c, m, n in fig) for fig in passes]) - measured

    bounds = {"compute_eff": (1e-5, MAX_EFF), "bandwidth_eff": (1e-5, MAX_EFF),
              "overhead_s": (0.0, float(np.exp(measured.min()))), "overlap": OVERLAP_BOUNDS}
    best = None
    for start in ((0.3, 0.5, 0.0, 2.0), (0.7, 0.8, 1e-3, 4.0), (0.9, 0.3, 5e-3, 8.0)):
        x0 = [min(dict(zip(FACTORS, start, strict=True))[k], 0.5 * bounds[k][1]) for k in fit]
        res = least_squares(residuals, x0, bounds=([bounds[k][0] for k in fit], [bounds[k][1] for k in fit]),
                            x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    return unpack(best.x)


def fit_calibrations(data: Mapping[str, Any] | None = None) -> dict[str, Factors]:
    """Device name -> (compute_eff, bandwidth_eff, overhead_s, overlap) fitted to the file's figures."""
    data = data if data is not None else load_data()
    catalog = calibration_catalog(data)
    figs = figures(data)
    return {name: fit_device([f for f in figs if f.device == name and f.fit and f.tp == 1], list(spec["fit"]),
                             catalog)
            for name, spec in data["devices"].items()}


def link_latencies(data: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Device name -> seconds of one small all-reduce: the median of the file's ``allreduce`` rows."""
    data = data if data is not None else load_data()
    rows: dict[str, list[float]] = {}
    for i, raw in enumerate(data.get("allreduce", [])):
        try:
            source, device, seconds = raw["source"], str(raw["device"]), float(raw["latency_s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"device calibration allreduce row {i}: {exc!r}") from None
        if source not in data["sources"] or not (seconds > 0 and math.isfinite(seconds)):
            raise ProfileError(f"device calibration allreduce row {i}: unknown source or a latency that is not a "
                               "positive finite number")
        rows.setdefault(device, []).append(seconds)
    return {device: statistics.median(values) for device, values in rows.items()}
