"""Per-device calibration: catalogue factors match a refit of the published figures, and predictions
of 7-8B models on A100 and H100 are within +/-10% of those figures."""

from __future__ import annotations

import pytest

from tts_sim.core.devices import CALIBRATIONS, DeviceSpec, get_device
from tts_sim.core.profile import LatencyTable
from tts_sim.sim.cluster import RooflinePredictor, fit_roofline
from tts_sim.sim.cluster.calibration import (
    calibration_catalog,
    figures,
    fit_calibrations,
    load_data,
    predict,
    seconds_of,
)

DATA = load_data()
CATALOG = calibration_catalog(DATA)
CALIBRATED = RooflinePredictor(use_catalogue=True)
# The one fitted figure the least-squares fit leaves outside +/-10% (-11.5%): the 128-token A100 prefill.
KNOWN_MISS = {"llama-2-7b A100-80GB ttft b1 128/1"}


def test_catalogue_values_are_a_refit_of_the_data_file() -> None:
    refit = fit_calibrations(DATA)
    assert set(refit) == set(CALIBRATIONS)
    for name, values in refit.items():
        cal = CALIBRATIONS[name]
        assert (cal.compute_eff, cal.bandwidth_eff, cal.overhead_s) == pytest.approx(values, rel=1e-3, abs=1e-9)
        assert get_device(name).calibration is cal


def test_every_catalogue_value_names_its_source() -> None:
    for cal in CALIBRATIONS.values():
        for text in (cal.compute_source, cal.bandwidth_source, cal.overhead_source):
            assert "http" in text or "default" in text
    for fig in figures(DATA):
        assert DATA["sources"][fig.source]["url"].startswith("https://")


@pytest.mark.parametrize("fig", [pytest.param(f, id=f.label, marks=pytest.mark.xfail(strict=True, reason="-11.5%")
                                              if f.label in KNOWN_MISS else ())
                                 for f in figures(DATA) if f.fit and f.device in ("A100-80GB", "H100")])
def test_predictions_are_within_ten_percent_of_published_figures(fig) -> None:
    assert predict(fig, CALIBRATED, CATALOG) == pytest.approx(seconds_of(fig), rel=0.10)


def test_one_factor_set_for_every_device_misses_them() -> None:
    """What the calibration fixes: the uncalibrated roofline is off by more than 15% on most figures."""
    fitted = [f for f in figures(DATA) if f.fit and f.device in ("A100-80GB", "H100")]
    misses = [f for f in fitted if abs(predict(f, RooflinePredictor(), CATALOG) / seconds_of(f) - 1) > 0.15]
    assert len(misses) >= len(fitted) - 1


def test_held_out_tensor_parallel_figures_are_within_fifteen_percent() -> None:
    """Not fitted: TP 2-8 latencies test the all-reduce model and the TP split of the calibrated roofline."""
    held = [f for f in figures(DATA) if not f.fit]
    assert held and all(f.tp > 1 for f in held)
    for fig in held:
        assert predict(fig, CALIBRATED, CATALOG) == pytest.approx(seconds_of(fig), rel=0.15), fig.label


def test_factor_precedence_tables_then_catalogue_then_defaults() -> None:
    h100, a100, l4 = get_device("H100"), get_device("A100-80GB"), get_device("L4")
    assert RooflinePredictor().factors(h100) == (0.5, 0.75, 5e-4)  # explicit factors: the catalogue is opt-in
    cal = h100.calibration
    assert cal is not None and CALIBRATED.factors(h100) == (cal.compute_eff, cal.bandwidth_eff, cal.overhead_s)
    assert CALIBRATED.factors(l4) == (0.5, 0.75, 5e-4)  # no published figure for the L4
    own = RooflinePredictor(0.3, 0.6, 1e-3, per_device=(("a100-80gb", 0.9, 0.8, 2e-3),), use_catalogue=True)
    assert own.factors(a100) == (0.9, 0.8, 2e-3) and own.factors(l4) == (0.3, 0.6, 1e-3)


def test_fit_roofline_fits_each_device_on_its_own_tables() -> None:
    fast = DeviceSpec("fast", "gpu", 1e14, 1e12, 1e11)
    slow = DeviceSpec("slow", "gpu", 1e14, 1e12, 1e11)
    model = CATALOG["llama-3.2-1b"]
    truth = {"fast": RooflinePredictor(0.6, 0.8, 1e-3), "slow": RooflinePredictor(0.2, 0.3, 4e-3)}
    tables = []
    for name, dev in (("fast", fast), ("slow", slow)):
        t = truth[name]
        prefill = [(n, b, t.prefill_s(model, dev, n, b)) for n in (64, 512, 2048) for b in (1, 4)]
        decode = [(c, b, t.decode_step_s(model, dev, c, b)) for c in (100, 1000) for b in (1, 8)]
        tables.append(LatencyTable("llama-3.2-1b", name, "test", prefill=prefill, decode=decode))
    fitted = fit_roofline(tables, CATALOG, devices=[fast, slow])
    for name, dev in (("fast", fast), ("slow", slow)):
        assert fitted.factors(dev) == pytest.approx((truth[name].compute_eff, truth[name].bandwidth_eff,
                                                     truth[name].overhead_s), rel=1e-4)
