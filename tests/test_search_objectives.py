"""Objectives, Pareto fronts and budgets in GPU-seconds or dollars."""

from __future__ import annotations

import pytest

from tts_sim.core.budget import ComputeRate, parse_budget, units_from_dollars, units_from_gpu_seconds
from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.flops import unit_flops
from tts_sim.core.presets import parallel, single
from tts_sim.errors import BudgetError, ConfigError
from tts_sim.search.objectives import (
    Accuracy,
    LatencyLimit,
    WeightedAccuracyLatency,
    objective_from_dict,
    pareto_front,
    parse_objective,
)
from tts_sim.search.result import Trial
from tts_sim.tasks import get_task


def _ev(accuracy: float, p95: float | None = None) -> Evaluation:
    lat = LatencyStats(p95 / 1.3, p95 / 1.3, p95, p95 * 1.2, 1.0, 10) if p95 is not None else None
    return Evaluation(single("llama-3.2-1b"), "math", accuracy, 0.0, 1.0, 100, 1e12, 1.0, latency=lat)


def test_accuracy_objective():
    assert Accuracy().score(_ev(0.42)) == 0.42 and not Accuracy().needs_latency


def test_weighted_objective_trades_accuracy_for_latency():
    obj = WeightedAccuracyLatency(weight=0.02, metric="p95")
    assert obj.score(_ev(0.50, p95=5.0)) == pytest.approx(0.40)
    assert obj.score(_ev(0.50, p95=1.0)) > obj.score(_ev(0.50, p95=5.0))
    with pytest.raises(ConfigError, match="needs latency"):
        obj.score(_ev(0.5))


def test_latency_limit_ranks_every_violator_below_every_compliant_graph():
    obj = LatencyLimit(limit_s=5.0)
    ok_low, ok_high = obj.score(_ev(0.10, 4.9)), obj.score(_ev(0.60, 5.0))
    bad_near, bad_far = obj.score(_ev(0.99, 5.5)), obj.score(_ev(0.99, 10.0))
    assert ok_low == 0.10 and ok_high == 0.60
    assert bad_far < bad_near < ok_low
    assert bad_near == pytest.approx(0.99 - 1.0 - 0.1)


@pytest.mark.parametrize("text, expected", [
    ("accuracy", Accuracy()),
    ("p95<=5", LatencyLimit(5.0, "p95")),
    ("mean <= 2.5s", LatencyLimit(2.5, "mean")),
    ("weighted:0.05", WeightedAccuracyLatency(0.05, "p95")),
    ("weighted:0.1:p50", WeightedAccuracyLatency(0.1, "p50")),
])
def test_parse_objective(text, expected):
    parsed = parse_objective(text)
    assert parsed == expected
    assert objective_from_dict(parsed.to_dict()) == parsed


@pytest.mark.parametrize("text", ["fastest", "p95<=abc", "weighted:x", "p97<=3"])
def test_bad_objectives_are_one_line_config_errors(text):
    with pytest.raises(ConfigError) as info:
        parse_objective(text)
    assert "\n" not in str(info.value)


def _trial(i: int, accuracy: float, flops: float, p95: float | None, width: int) -> Trial:
    graph = parallel(width, "llama-3.2-1b") if width else single("llama-3.2-3b")
    lat = {"mean_s": p95, "p50_s": p95, "p95_s": p95, "p99_s": p95} if p95 is not None else None
    return Trial(i, graph, accuracy, accuracy, 0, 1, 100, flops, 1.0, lat, 0.0)


def test_pareto_front_over_flops_latency_accuracy():
    trials = [
        _trial(0, 0.40, 1.0, 2.0, 0),
        _trial(1, 0.50, 2.0, 3.0, 1),
        _trial(2, 0.45, 3.0, 4.0, 2),  # dominated by 1: more FLOPs, slower, less accurate
        _trial(3, 0.60, 4.0, 1.0, 3),
        _trial(4, 0.55, 5.0, 0.5, 4),  # not dominated: fastest
    ]
    front = pareto_front(trials)
    assert [t.index for t in front] == [0, 1, 3, 4]
    without_latency = pareto_front(trials, use_latency=False)
    assert [t.index for t in without_latency] == [0, 1, 3]


def test_budget_conversions_are_consistent():
    task = get_task("math")
    rate = ComputeRate(flops_per_s=1e14, price_per_hour=3.6)
    unit = unit_flops(task)
    assert units_from_gpu_seconds(1.0, task, rate) == pytest.approx(1e14 / unit)
    # $3.6 per device-hour = $0.001 per device-second
    assert units_from_dollars(0.002, task, rate) == pytest.approx(2 * 1e14 / unit)
    assert rate.dollars(unit) == pytest.approx(unit / 1e14 * 0.001)
    with pytest.raises(ConfigError, match="price"):
        units_from_dollars(0.01, task, ComputeRate(1e14))
    with pytest.raises(BudgetError):
        units_from_gpu_seconds(0.0, task, rate)


@pytest.mark.parametrize("text, expected", [
    ("18", 18.0), ("42 units", 42.0), ("7.5u", 7.5), (80, 80.0),
    ("0.5gpu-s", 0.5 * 1e14 / unit_flops(get_task("math"))),
    ("$0.002", 0.002 / 3.6 * 3600 * 1e14 / unit_flops(get_task("math"))),
    ("0.002usd", 0.002 / 3.6 * 3600 * 1e14 / unit_flops(get_task("math"))),
])
def test_parse_budget_in_the_users_terms(text, expected):
    rate = ComputeRate(1e14, 3.6)
    assert parse_budget(text, get_task("math"), rate) == pytest.approx(expected)


def test_parse_budget_reference_and_errors():
    from tts_sim.core.flops import reference_budget_units

    assert parse_budget("ref:8", get_task("math")) == pytest.approx(reference_budget_units(8, get_task("math")))
    with pytest.raises(ConfigError, match="cluster"):
        parse_budget("1gpu-s", get_task("math"))
    with pytest.raises(ConfigError, match="cannot read budget"):
        parse_budget("lots", get_task("math"))


def test_compute_rate_from_a_cluster():
    from tts_sim.sim.cluster.spec import parse_cluster

    cluster = parse_cluster("1xH100,1xL4")
    rate = ComputeRate.from_cluster(cluster, {"H100": 4.0, "L4": 1.0}, utilisation=0.5)
    assert rate.flops_per_s == pytest.approx((989e12 + 121e12) / 2 * 0.5)
    assert rate.price_per_hour == pytest.approx(2.5)
    with pytest.raises(ConfigError, match="L4"):
        ComputeRate.from_cluster(cluster, {"H100": 4.0})
