"""The pick term: a fusing node copies one of its inputs taken at random with probability ``pick``."""

from __future__ import annotations

import numpy as np
import pytest

from tts_sim.core.graph import Graph
from tts_sim.core.profile import Profile
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.quality.fusion import PICK_OFF, ROLES, FusionParams, fit_fusion
from tts_sim.sim.quality.model import fit_inputs
from tts_sim.sim.scenario import TRUE_FUSION, World, generate_profile, true_fusion
from tts_sim.tasks import get_task

TRUE_PICK = {"refine.pick": 0.15, "assistant.pick": 0.35, "fuser.pick": 0.25}


def _fan(models: list[str], role: str, output: str) -> Graph:
    nodes = [*((f"s{i}", "assistant", m) for i, m in enumerate(models)), ("out", role, output)]
    return Graph.build(nodes, [(f"s{i}", "out") for i in range(len(models))], "out", catalog=None)


@pytest.fixture(scope="module")
def picking() -> tuple[QualityModel, dict[str, float], Profile]:
    """A model fitted to records generated with pick set in every role, the truth and the profile."""
    truth = {**true_fusion(get_task("math")).coef, **TRUE_PICK}
    world = World("picking", fusion={**TRUE_FUSION, "math": FusionParams(truth)})
    prof = generate_profile(4, samples=200, records=8000, questions={"math": 200}, world=world)
    return QualityModel.from_profile(prof, "math"), truth, prof


def test_pick_in_the_records_is_recovered_and_the_fit_without_it_is_worse(picking) -> None:
    qm, truth, prof = picking
    for name in TRUE_PICK:
        fit, se = qm.params.coef[name], qm.params.stderr[name]
        assert abs(fit - truth[name]) <= 3 * se + 0.02 and se < 0.08, (name, fit, se, truth[name])
    _, rec, skills = fit_inputs(prof.task("math"), qm.task)
    without = fit_fusion(rec, skills, hold=PICK_OFF)
    assert all(without.coef[n] == 0.0 for n in PICK_OFF)
    assert qm.params.log_likelihood - without.log_likelihood > 3 * len(PICK_OFF)  # type: ignore[operator]


def test_a_simulated_node_mixes_a_random_copy_with_its_weighing(picking) -> None:
    """In the simulator, given how many of its inputs are correct, a node with pick is right with
    ``pick * share + (1 - pick) *`` the rate of the same node without the copy (within sampling error)."""
    qm, *_ = picking
    weighing = QualityModel(qm.task, qm.answers, FusionParams({**qm.params.coef, **PICK_OFF}))
    pick = qm.params.coef["assistant.pick"]
    fan = _fan(["llama-3.2-1b"] * 4, "assistant", "llama-3.2-1b")
    rates = []
    for model in (qm, weighing):
        ids = model.simulate(fan, np.arange(qm.n_questions), np.random.default_rng(0), 400)
        share = np.mean([ids[f"s{i}"] == 0 for i in range(4)], axis=0)
        out = ids["out"] == 0
        rates.append({v: (out[share == v].mean(), (share == v).sum()) for v in (0.0, 0.25, 0.5, 1.0)})
    for v in (0.0, 0.25, 0.5, 1.0):
        (got, n), (weighed, m) = rates[0][v], rates[1][v]
        want = pick * v + (1 - pick) * weighed
        se = np.sqrt(got * (1 - got) / n + (1 - pick) ** 2 * weighed * (1 - weighed) / m) + 1e-3
        assert abs(got - want) < 4 * se, (v, got, want, se)


def test_expected_and_simulated_accuracy_agree_with_pick(picking) -> None:
    """``expected`` (the exact pick mixture at the output) and the mean of simulated runs (the copy drawn)
    agree within their sampling error, on a graph two levels deep; the ceiling bounds both."""
    qm, *_ = picking
    g = Graph.build([("a", "assistant", "llama-3.2-1b"), ("b", "assistant", "llama-3.1-8b"),
                     ("c", "assistant", "llama-3.2-3b"), ("m", "assistant", "llama-3.2-1b"),
                     ("out", "fuser", "llama-3.1-8b")],
                    [("a", "m"), ("b", "m"), ("c", "m"), ("m", "out"), ("a", "out")], "out", catalog=None)
    expected = qm.expected(g).mean()
    sim = qm.predict(g, seed=1, replicates=200).mean()
    se = np.sqrt(expected * (1 - expected) / (qm.n_questions * 200))
    assert abs(sim - expected) < 4 * se + 0.005
    assert max(expected, sim) <= qm.ceiling(g) + 1e-9
    assert all(0 < qm.params.coef[f"{r}.pick"] < 0.95 for r in ROLES)
