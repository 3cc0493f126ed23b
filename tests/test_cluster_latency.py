"""Roofline and table latency predictors, and calibrating the roofline on measured tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sim.core.flops import node_flops
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ProfileError
from tts_sim.sim.cluster import (
    DeviceSpec,
    LatencyPredictor,
    RooflinePredictor,
    TablePredictor,
    fit_roofline,
    get_device,
)
from tts_sim.tasks import TaskSpec

LLAMA1B = DEFAULT_CATALOG["llama-3.2-1b"]
LLAMA3B = DEFAULT_CATALOG["llama-3.2-3b"]
H100 = get_device("H100")
CPU = get_device("cpu")
# A device so slow at arithmetic (and so fast at memory) that every pass is compute-bound.
SLOW_ALU = DeviceSpec("slow-alu", "gpu", peak_flops=1e12, mem_bw=1e18, mem_bytes=1e12)
# And the opposite: every pass is bandwidth-bound.
SLOW_MEM = DeviceSpec("slow-mem", "gpu", peak_flops=1e20, mem_bw=1e9, mem_bytes=1e12)


def test_predictors_satisfy_the_protocol() -> None:
    assert isinstance(RooflinePredictor(), LatencyPredictor)
    assert isinstance(TablePredictor([], RooflinePredictor()), LatencyPredictor)


def test_roofline_by_hand_on_h100() -> None:
    # llama-3.2-1b (M=1e9 for FLOPs, 1.24e9 params x 2 bytes, L=16, D=2048, KV 2*16*8*64*2 = 32768 B/token)
    # on H100 (989e12 FLOP/s, 3350e9 B/s), compute_eff 0.5, bandwidth_eff 0.8, overhead 1 ms.
    pred = RooflinePredictor(compute_eff=0.5, bandwidth_eff=0.8, overhead_s=1e-3)
    # prefill of 100 tokens: FLOPs 2e9*100 + 2*16*2048*100*101 = 2.006619136e11 -> 4.0579e-4 s at 4.945e14;
    # bytes 2.48e9 + 100*32768 = 2.4832768e9 -> 9.26596e-4 s at 2.68e12: memory-bound, + 1 ms.
    assert pred.prefill_s(LLAMA1B, H100, 100, 1) == pytest.approx(2.4832768e9 / 2.68e12 + 1e-3, rel=1e-12)
    # decode step at context 105.5: bytes 2.48e9 + 105.5*32768 = 2.483457024e9 -> 9.26663e-4 s (+ 1 ms)
    assert pred.decode_step_s(LLAMA1B, H100, 105.5, 1) == pytest.approx(0.0019266630686567, rel=1e-10)
    # batch 64 at 4096 tokens of prefill is compute-bound: 64*(2e9*4096 + 2*16*2048*4096*4097) / 4.945e14
    flops = 64 * (2e9 * 4096 + 2 * 16 * 2048 * 4096 * 4097)
    assert pred.prefill_s(LLAMA1B, H100, 4096, 64) == pytest.approx(flops / 4.945e14 + 1e-3, rel=1e-12)


@given(in_degree=st.integers(0, 6), batch=st.integers(1, 16))
def test_compute_bound_roofline_reproduces_the_paper_flops(in_degree: int, batch: int) -> None:
    task = TaskSpec("t", "math", 202, 275)
    pred = RooflinePredictor(compute_eff=0.4, bandwidth_eff=0.9, overhead_s=0.0)
    n_prompt, n_decode = 202 + in_degree * 275, 275
    total = pred.prefill_s(LLAMA3B, SLOW_ALU, n_prompt, batch) + sum(
        pred.decode_step_s(LLAMA3B, SLOW_ALU, n_prompt + k, batch) for k in range(1, n_decode + 1))
    expected = batch * node_flops(LLAMA3B, task, in_degree) / (1e12 * 0.4)
    assert total == pytest.approx(expected, rel=1e-9)
    # and the mean-context shortcut the simulator uses is exact in one regime
    mean_ctx = n_prompt + (n_decode + 1) / 2
    shortcut = pred.prefill_s(LLAMA3B, SLOW_ALU, n_prompt, batch) + n_decode * pred.decode_step_s(
        LLAMA3B, SLOW_ALU, mean_ctx, batch)
    assert shortcut == pytest.approx(total, rel=1e-9)


def test_bandwidth_bound_decode_reads_weights_and_kv_cache() -> None:
    pred = RooflinePredictor(compute_eff=0.5, bandwidth_eff=0.5, overhead_s=2e-3)
    kv = 2 * 28 * 8 * 128 * 2  # llama-3.2-3b bytes per token
    expected = (3.21e9 * 2 + 4 * 1000 * kv) / (1e9 * 0.5) + 2e-3
    assert pred.decode_step_s(LLAMA3B, SLOW_MEM, 1000, 4) == pytest.approx(expected, rel=1e-12)
    int8 = RooflinePredictor(0.5, 0.5, 2e-3, bytes_per_param=1.0)
    assert int8.decode_step_s(LLAMA3B, SLOW_MEM, 1000, 4) == pytest.approx(
        (3.21e9 + 4 * 1000 * kv) / 0.5e9 + 2e-3, rel=1e-12)


def test_roofline_rejects_bad_factors() -> None:
    from tts_sim.errors import ConfigError
    with pytest.raises(ConfigError, match="compute_eff"):
        RooflinePredictor(compute_eff=0.0)
    with pytest.raises(ConfigError, match="overhead_s"):
        RooflinePredictor(overhead_s=-1.0)
    with pytest.raises(ConfigError, match="batch"):
        RooflinePredictor().prefill_s(LLAMA1B, H100, 10, 0)


# ----- table predictor -------------------------------------------------------------------------
def _table(model: str = "llama-3.2-1b", device: str = "cpu", backend: str = "onnxruntime") -> LatencyTable:
    return LatencyTable(
        model, device, backend,
        prefill=[(100, 1, 0.50), (400, 1, 1.80), (100, 4, 1.60), (400, 4, 6.40)],
        decode=[(100, 1, 0.040), (1000, 1, 0.060), (100, 4, 0.050), (1000, 4, 0.110)],
    )


def test_table_is_exact_at_measured_points_and_says_so() -> None:
    pred = TablePredictor([_table()], RooflinePredictor())
    for tokens, batch, seconds in _table().prefill:
        assert pred.prefill_s(LLAMA1B, CPU, tokens, batch) == pytest.approx(seconds, rel=1e-12)
    for tokens, batch, seconds in _table().decode:
        assert pred.decode_step_s(LLAMA1B, CPU, tokens, batch) == pytest.approx(seconds, rel=1e-12)
    assert pred.source(LLAMA1B, CPU) == "profile-table"
    assert pred.source(LLAMA3B, CPU) == "roofline"
    assert pred.source(LLAMA1B, H100) == "roofline"


def test_table_interpolates_as_a_power_law_in_tokens_and_batch() -> None:
    pred = TablePredictor([_table()], RooflinePredictor())
    # geometric midpoint in tokens (200 = sqrt(100*400)) gives the geometric mean of the times
    assert pred.prefill_s(LLAMA1B, CPU, 200, 1) == pytest.approx(math.sqrt(0.50 * 1.80), rel=1e-12)
    # midpoint in batch (2 = sqrt(1*4)) at a measured token count
    assert pred.decode_step_s(LLAMA1B, CPU, 1000, 2) == pytest.approx(math.sqrt(0.060 * 0.110), rel=1e-12)
    # both at once: tokens first within each batch, then along batch
    at1, at4 = math.sqrt(0.50 * 1.80), math.sqrt(1.60 * 6.40)
    assert pred.prefill_s(LLAMA1B, CPU, 200, 2) == pytest.approx(math.sqrt(at1 * at4), rel=1e-12)


def test_table_extrapolates_with_the_fallback_roofline_shape() -> None:
    fallback = RooflinePredictor(0.5, 0.8, 1e-3)
    pred = TablePredictor([_table()], fallback)
    ratio = fallback.prefill_s(LLAMA1B, CPU, 1600, 4) / fallback.prefill_s(LLAMA1B, CPU, 400, 4)
    assert pred.prefill_s(LLAMA1B, CPU, 1600, 4) == pytest.approx(6.40 * ratio, rel=1e-12)
    ratio = fallback.decode_step_s(LLAMA1B, CPU, 100, 16) / fallback.decode_step_s(LLAMA1B, CPU, 100, 4)
    assert pred.decode_step_s(LLAMA1B, CPU, 100, 16) == pytest.approx(0.050 * ratio, rel=1e-12)
    # unmeasured pairs use the fallback unchanged
    assert pred.prefill_s(LLAMA3B, H100, 300, 2) == fallback.prefill_s(LLAMA3B, H100, 300, 2)


@settings(max_examples=60, deadline=None)
@given(t1=st.floats(1, 5000), t2=st.floats(1, 5000), b=st.integers(1, 32))
def test_table_predictions_are_positive_and_monotone_in_tokens(t1: float, t2: float, b: int) -> None:
    pred = TablePredictor([_table()], RooflinePredictor())
    lo, hi = sorted((t1, t2))
    for fn in (pred.prefill_s, pred.decode_step_s):
        a, z = fn(LLAMA1B, CPU, lo, b), fn(LLAMA1B, CPU, hi, b)
        assert 0 < a <= z * (1 + 1e-12)


def test_table_device_names_match_in_any_case_and_bad_tables_are_refused() -> None:
    assert TablePredictor([_table(device="CPU")]).source(LLAMA1B, CPU) == "profile-table"
    with pytest.raises(ProfileError, match="backend="):
        TablePredictor([_table(), _table(backend="llama.cpp")])
    assert TablePredictor([_table(), _table(backend="llama.cpp")], backend="llama.cpp").source(
        LLAMA1B, CPU) == "profile-table"
    with pytest.raises(ProfileError, match="both prefill and decode"):
        TablePredictor([LatencyTable("llama-3.2-1b", "cpu", "x", prefill=[(1, 1, 0.1)])])
    bad = LatencyTable("llama-3.2-1b", "cpu", "x", prefill=[(10, 1, -0.1)], decode=[(10, 1, 0.1)])
    with pytest.raises(ProfileError, match="bad row"):
        TablePredictor([bad]).prefill_s(LLAMA1B, CPU, 10, 1)


# ----- calibration -----------------------------------------------------------------------------
def _synthetic(pred: RooflinePredictor, model_name: str, device: DeviceSpec) -> LatencyTable:
    model = DEFAULT_CATALOG[model_name]
    grid = [(n, b) for n in (32, 256, 2048) for b in (1, 4, 16)]
    return LatencyTable(model_name, device.name, "synthetic",
                        prefill=[(n, b, pred.prefill_s(model, device, n, b)) for n, b in grid],
                        decode=[(n, b, pred.decode_step_s(model, device, n, b)) for n, b in grid])


@pytest.mark.parametrize("truth", [RooflinePredictor(0.35, 0.65, 3e-3), RooflinePredictor(0.8, 0.25, 2e-4)])
def test_fit_roofline_recovers_known_factors(truth: RooflinePredictor) -> None:
    tables = [_synthetic(truth, m, d) for m in ("smollm2-135m", "llama-3.2-1b") for d in (CPU, H100)]
    fitted = fit_roofline(tables, DEFAULT_CATALOG, [CPU, H100])
    assert fitted.compute_eff == pytest.approx(truth.compute_eff, rel=1e-4)
    assert fitted.bandwidth_eff == pytest.approx(truth.bandwidth_eff, rel=1e-4)
    assert fitted.overhead_s == pytest.approx(truth.overhead_s, rel=1e-3)
    # and the calibrated roofline predicts an unmeasured pair like the truth does
    assert fitted.decode_step_s(LLAMA3B, get_device("L4"), 700, 8) == pytest.approx(
        truth.decode_step_s(LLAMA3B, get_device("L4"), 700, 8), rel=1e-3)


def test_fit_roofline_without_overhead_and_with_noise() -> None:
    truth = RooflinePredictor(0.5, 0.7, 0.0)
    tables = [_synthetic(truth, "llama-3.2-1b", CPU)]
    fitted = fit_roofline(tables, DEFAULT_CATALOG, {"cpu": CPU}, fit_overhead=False)
    assert (fitted.compute_eff, fitted.bandwidth_eff) == pytest.approx((0.5, 0.7), rel=1e-6)
    # 5% multiplicative noise, alternating sign, still lands close
    noisy = [LatencyTable(t.model, t.device, t.backend,
                          prefill=[(n, b, s * (1.05 if i % 2 else 0.95)) for i, (n, b, s) in enumerate(t.prefill)],
                          decode=[(n, b, s * (1.05 if i % 2 else 0.95)) for i, (n, b, s) in enumerate(t.decode)])
             for t in tables]
    rough = fit_roofline(noisy, DEFAULT_CATALOG, [CPU], fit_overhead=False)
    assert rough.compute_eff == pytest.approx(0.5, rel=0.06)
    assert rough.bandwidth_eff == pytest.approx(0.7, rel=0.06)


def test_fit_roofline_refuses_unusable_tables() -> None:
    with pytest.raises(ProfileError, match="at least 3"):
        fit_roofline([], DEFAULT_CATALOG, [CPU])
    with pytest.raises(ProfileError, match="unknown model"):
        fit_roofline([_table(model="nope")], DEFAULT_CATALOG, [CPU])
    with pytest.raises(ProfileError, match="not among"):
        fit_roofline([_table(device="tpu")], DEFAULT_CATALOG, [CPU])
