"""The fusion model's find term (a node finds the correct answer itself when no input holds it): the
simulator and the likelihood compute the same probabilities, the term is recovered from records
generated with it, the measured profiles fit it, and ``hold`` ablates it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import special

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.sim.profiles import load_profile
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.quality.fusion import FIND_OFF, FusionParams, fit_fusion, p_correct, record_arrays
from tts_sim.sim.quality.model import fit_inputs
from tts_sim.sim.scenario import TRUE_FUSION, World, generate_profile, true_fusion
from tts_sim.tasks import get_task


@pytest.fixture(scope="module")
def add_words():
    """The measured add-words profile's fit inputs and its fitted model."""
    spec = get_task("add-words")
    tp = load_profile("measured:add-words").task("add-words")
    answers, rec, skills = fit_inputs(tp, spec)
    return spec, tp, answers, rec, skills, fit_fusion(rec, skills)


def _fan(models: list[str], role: str, output: str) -> Graph:
    nodes = [*((f"s{i}", "assistant", m) for i, m in enumerate(models)), ("out", role, output)]
    return Graph.build(nodes, [(f"s{i}", "out") for i in range(len(models))], "out", catalog=None)


def test_the_simulator_and_the_likelihood_agree_on_every_record(add_words) -> None:
    """Each record (its context length set to what the simulator assumes) gets the same P(correct)
    from the simulator's fusion logits and pick as from the likelihood, with and without a correct input."""
    spec, tp, answers, _, _, params = add_words
    qm = QualityModel(spec, answers, params)
    records = [dataclasses.replace(r, prompt_tokens=0) for r in tp.fusion_records[:300]]
    expected = p_correct(params, record_arrays(records, answers, spec))
    got = []
    for r in records:
        role = "fuser" if r.role == "fuser" else "assistant"
        plan = qm._plan(_fan([r.model] * len(r.inputs), role, r.model))
        ids: list[np.ndarray] = [np.array([[a]]) for a in r.inputs] + [np.zeros((1, 1), dtype=np.intp)]
        logits = qm._fusion_logits(plan[-1], ids, np.array([r.question])).astype(np.float64)
        share = np.mean([a == 0 for a in r.inputs])
        got.append(plan[-1].pick * share + (1 - plan[-1].pick) * special.softmax(logits, axis=2)[0, 0, 0])
    lost = np.array([0 not in r.inputs for r in records])
    assert lost.sum() > 50 and (~lost).sum() > 50
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)


def test_the_measured_profiles_fit_a_find_term_that_rises_with_the_node_s_own_accuracy(add_words) -> None:
    """On the measured add-words records a fuser with no correct input finds the correct answer more
    often where its own model solves the question more often (solve > 0), and the term improves the
    likelihood over the ablated fit by more than its 6 coefficients (AIC)."""
    *_, rec, skills, params = add_words
    without = fit_fusion(rec, skills, hold=FIND_OFF)
    assert all(without.coef[n] == 0.0 for n in FIND_OFF)
    assert params.coef["fuser.solve"] > 0 and params.coef["fuser.solve"] > 2 * params.stderr["fuser.solve"]
    assert params.log_likelihood - without.log_likelihood > len(FIND_OFF)  # type: ignore[operator]


def test_holding_an_unknown_coefficient_is_refused(add_words) -> None:
    *_, rec, skills, _ = add_words
    with pytest.raises(ConfigError, match="no fusion coefficient.*fuser.findd"):
        fit_fusion(rec, skills, hold=("fuser.findd",))


def test_a_find_term_in_the_records_is_recovered_and_lifts_graphs_whose_inputs_are_wrong() -> None:
    """Records generated with find/solve set in every role give them back (within 3 standard errors);
    a fan-in of weak inputs then scores above the same model without the term."""
    truth = {**true_fusion(get_task("math")).coef, "refine.find": 1.0, "refine.solve": 0.5, "assistant.find": 0.8,
             "assistant.solve": 0.4, "fuser.find": 1.5, "fuser.solve": 0.6}
    world = World("finding", fusion={**TRUE_FUSION, "math": FusionParams(truth)})
    prof = generate_profile(3, samples=200, records=8000, questions={"math": 200}, world=world)
    qm = QualityModel.from_profile(prof, "math")
    for name in ("refine.find", "refine.solve", "fuser.find", "fuser.solve"):
        fit, se = qm.params.coef[name], qm.params.stderr[name]
        assert abs(fit - truth[name]) <= 3 * se and se < 0.5, (name, fit, se, truth[name])
    off = QualityModel(qm.task, qm.answers, FusionParams({**qm.params.coef, **FIND_OFF}))
    fan = _fan(["llama-3.2-1b"] * 3, "fuser", "llama-3.1-8b")
    assert qm.expected(fan).mean() > off.expected(fan).mean() + 0.01

