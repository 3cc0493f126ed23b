"""Predicted vs published latencies of 7-8B models on A100 and H100, per device calibration.

    python benchmarks/device_calibration.py            # table: published, predicted, relative error
    python benchmarks/device_calibration.py --fit      # also refit the factors from the data file

Figures and sources: tts_sim/data/device_calibration.json. "calibrated" is the roofline with the
device catalogue's per-device factors (``RooflinePredictor(use_catalogue=True)``, what the CLI
uses); "default" is one factor set for every device (compute 0.5, bandwidth 0.75, 0.5 ms per pass,
the max of compute and memory time). Rows marked "held out" were not fitted (tensor-parallel rows:
they test the TP split and the all-reduce model). ``kernels`` rows are GPU time without the per-pass
overhead (Vidur's operator timings; regenerate them with benchmarks/vidur_figures.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.core.devices import CALIBRATIONS, get_device  # noqa: E402
from tts_sim.sim.cluster.calibration import (  # noqa: E402
    calibration_catalog,
    figures,
    fit_calibrations,
    link_latencies,
    load_data,
    predict,
    seconds_of,
)
from tts_sim.sim.cluster.latency import RooflinePredictor  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the per-device factors and print them")
    args = ap.parse_args(argv)
    data = load_data()
    catalog = calibration_catalog(data)
    calibrated, default = RooflinePredictor(use_catalogue=True), RooflinePredictor()
    if args.fit:
        print("refit (compute_eff, bandwidth_eff, overhead_s, overlap) vs catalogue:")
        for name, values in fit_calibrations(data).items():
            cal = CALIBRATIONS.get(name)
            shown = "none" if cal is None else ", ".join(
                f"{v:.4g}" for v in (cal.compute_eff, cal.bandwidth_eff, cal.overhead_s, cal.overlap))
            print(f"  {name:10s} refit {', '.join(f'{v:.4g}' for v in values)}   catalogue {shown}")
        print("all-reduce latency (median of the measured rows) vs catalogue:")
        for name, seconds in link_latencies(data).items():
            print(f"  {name:10s} {seconds * 1e6:.0f} us   catalogue {get_device(name).link_latency_s * 1e6:.0f} us")
        print()
    header = "| figure | source | published | calibrated | error | default | error | |"
    print(header)
    print("|" + "---|" * 8)
    worst: dict[str, float] = {}
    for fig in figures(data):
        unit = "ms/token" if fig.metric == "decode_tps" else "ms"
        pub = seconds_of(fig)
        cal, dft = predict(fig, calibrated, catalog), predict(fig, default, catalog)
        err_c, err_d = cal / pub - 1, dft / pub - 1
        if fig.fit:
            worst[fig.device] = max(worst.get(fig.device, 0.0), abs(err_c))
        print(f"| {fig.label} | {fig.source} | {pub * 1e3:.1f} {unit} | {cal * 1e3:.1f} | {err_c:+.1%} | "
              f"{dft * 1e3:.1f} | {err_d:+.1%} | {'fitted' if fig.fit else 'held out'} |")
    print()
    for device, err in worst.items():
        print(f"largest |error| of the fitted figures on {device}: {err:.1%}")


if __name__ == "__main__":
    main()
