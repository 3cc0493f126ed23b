"""Prediction intervals that carry the fusion fit's uncertainty (issue 12, item 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.sim.evaluator import SimulatedEvaluator
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.scenario import default_quality_model, generate_profile

from .test_cli_graph import run
from .test_quality import lone, six_nodes


@pytest.fixture(scope="module")
def math_model() -> QualityModel:
    return default_quality_model("math")


def test_the_interval_adds_the_fits_uncertainty_to_the_runs_noise(math_model: QualityModel) -> None:
    iv = math_model.prediction_interval(six_nodes())
    exp = math_model.expected(six_nodes()).mean()
    assert iv.accuracy == pytest.approx(exp) and iv.low < exp < iv.high and iv.n_questions == 500
    assert iv.fit_sd > 0 and iv.sampling_sd > 0 and "fusion-fit" in iv.includes
    noise_only = 2 * 1.96 * iv.sampling_sd
    assert iv.high - iv.low > noise_only  # wider than the run's noise alone
    assert iv == math_model.prediction_interval(six_nodes())  # deterministic
    solo = math_model.prediction_interval(lone("llama-3.2-3b"))  # no fusion node: the fit does not enter
    assert solo.fit_sd == 0 and "run noise only" in solo.includes
    with pytest.raises(ConfigError, match="level"):
        math_model.prediction_interval(six_nodes(), level=1.5)


def test_fewer_fusion_records_give_a_wider_interval(math_model: QualityModel) -> None:
    small = QualityModel.from_profile(generate_profile(3, samples=256, records=600, questions={"math": 500}), "math")
    g = six_nodes()
    assert small.prediction_interval(g).fit_sd > 2 * math_model.prediction_interval(g).fit_sd


def test_a_model_built_without_its_records_has_no_coefficients_to_draw(math_model: QualityModel) -> None:
    bare = QualityModel(math_model.task, math_model.answers, math_model.params)
    assert bare.coefficient_draws(8) is None
    iv = bare.prediction_interval(six_nodes())
    assert np.isnan(iv.fit_sd) and "run noise only" in iv.includes and "without its records" in iv.includes
    drawn = math_model.prediction_interval(six_nodes())
    assert drawn.high - drawn.low > iv.high - iv.low and "draws from the records' likelihood" in drawn.includes


def test_simulated_results_and_the_simulate_command_carry_the_interval(tmp_path, capsys) -> None:
    ev = SimulatedEvaluator("math", intervals=True)
    res = ev.evaluate(six_nodes(), range(100), seed=0)
    iv = res.meta["accuracy_interval"]
    assert iv["low"] <= iv["accuracy"] <= iv["high"] and iv["n_questions"] == 100 and "fusion-fit" in iv["includes"]
    assert "accuracy_interval" not in SimulatedEvaluator("math").evaluate(six_nodes(), range(10)).meta
    g = tmp_path / "g.json"
    six_nodes().save(g)
    code, out, _ = run(capsys, "simulate", str(g), "--task", "math", "--questions", "100", "--json")
    data = json.loads(out)
    assert code == 0 and data["accuracy_interval"] == pytest.approx(iv)
    code, text, _ = run(capsys, "simulate", str(g), "--task", "math", "--questions", "100")
    assert code == 0 and "95% prediction interval" in text and "fusion-fit coefficient uncertainty" in text


def test_graphs_without_fusion_nodes_need_no_covariance() -> None:
    g = Graph.build([("out", "assistant", "llama-3.2-1b")], [], "out")
    assert default_quality_model("mmlu").prediction_interval(g).draws == 1


def test_an_interval_for_held_out_questions_covers_fresh_draws(math_model: QualityModel) -> None:
    g = lone("llama-3.2-3b")  # no fusion node: the interval is the held-out questions' noise alone
    p = math_model.expected(g)
    iv = math_model.prediction_interval(g, heldout=50)
    m = p.mean()
    assert iv.n_questions == 50 and "50 held-out" in iv.includes
    assert iv.sampling_sd == pytest.approx(np.sqrt(m * (1 - m) / 50 + p.var(ddof=1) / p.size))
    more = math_model.prediction_interval(g, heldout=500)
    assert iv.high - iv.low > more.high - more.low > 0  # more held-out questions: a narrower interval
    # 50 fresh questions drawn from the population (here: the profile's 500), each answered once
    rng = np.random.default_rng(7)
    qs = rng.integers(0, p.size, size=(4000, 50))
    acc = (rng.random(qs.shape) < p[qs]).mean(axis=1)
    assert 0.93 <= np.mean((iv.low <= acc) & (acc <= iv.high)) <= 0.99
    fused = math_model.prediction_interval(six_nodes(), heldout=50)
    assert fused.fit_sd > 0 and "fusion-fit" in fused.includes and "50 held-out" in fused.includes
    with pytest.raises(ConfigError, match="heldout"):
        math_model.prediction_interval(g, heldout=0)
