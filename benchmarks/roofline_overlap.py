"""Would a roofline with imperfect overlap of compute and memory traffic fit the published figures better?

The roofline predictor takes ``max(compute time, memory time) + overhead`` per forward pass. This
experiment replaces the max by the p-norm ``(compute**p + memory**p) ** (1/p)`` (p -> infinity is the max;
smaller p charges more where the two are close, near the ridge point: a 128-token prefill of a 7B model),
refits every device's factors to ``tts_sim/data/device_calibration.json`` as ``device_calibration.py --fit``
does, and prints each figure's error, fitted and held out (tensor-parallel rows). Not part of the model.

    python benchmarks/roofline_overlap.py --p 40 4 3 2
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.sim.cluster import calibration as C  # noqa: E402
from tts_sim.sim.cluster import latency as L  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=float, nargs="+", default=[40.0, 4.0, 3.0, 2.0])
    args = ap.parse_args()
    data = C.load_data()
    catalog = C.calibration_catalog(data)
    figs = C.figures(data)
    rows: dict[str, list[str]] = {f.label + (" (fitted)" if f.fit else " (held out)"): [] for f in figs}
    for p in args.p:
        def pnorm(a: np.ndarray, b: np.ndarray, p: float = p) -> np.ndarray:
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            return np.asarray((a ** p + b ** p) ** (1 / p))

        def time_(self: L.RooflinePredictor, device: object, flops: float, nbytes: float, p: float = p) -> float:
            ce, be, oh = self.factors(device)  # type: ignore[arg-type]
            c, m = flops / (device.peak_flops * ce), nbytes / (device.mem_bw * be)  # type: ignore[attr-defined]
            return float((c ** p + m ** p) ** (1 / p) + oh)

        shim = types.ModuleType("numpy_pnorm")
        shim.__dict__.update(np.__dict__)
        shim.maximum = pnorm  # type: ignore[attr-defined]
        C.np, L.RooflinePredictor._time = shim, time_  # type: ignore[attr-defined, method-assign]
        fits = C.fit_calibrations(data)
        predictor = L.RooflinePredictor(per_device=tuple((k.lower(), *v) for k, v in fits.items()))
        print(f"p = {p:g}: " + "; ".join(f"{k} {v[0]:.3g}, {v[1]:.3g}, {v[2] * 1e3:.2f} ms" for k, v in fits.items()))
        for f, key in zip(figs, rows, strict=True):
            rows[key].append(f"{C.predict(f, predictor, catalog) / C.seconds_of(f) - 1:+.1%}")
    print("\n| figure | " + " | ".join(f"p = {p:g}" for p in args.p) + " |")
    print("|---|" + "---|" * len(args.p))
    for key, errs in rows.items():
        print(f"| {key} | " + " | ".join(errs) + " |")


if __name__ == "__main__":
    main()
