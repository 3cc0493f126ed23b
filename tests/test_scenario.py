"""The default scenario: calibration, wrong-answer structure, the shipped profile, and the paper's
qualitative insights in the quality model fitted to it."""

from __future__ import annotations

import gzip
import importlib.resources
import json

import numpy as np
import pytest

from tts_sim.core.flops import budget_units, graph_flops
from tts_sim.core.graph import Graph
from tts_sim.core.models import DEFAULT_OUTPUT_MODEL
from tts_sim.core.profile import Profile
from tts_sim.errors import ProfileError
from tts_sim.sim.quality import QualityModel
from tts_sim.sim.scenario import (
    LABEL,
    QUESTIONS,
    default_quality_model,
    load_default_profile,
    main,
    scenario_task,
)
from tts_sim.sim.scenario_stats import REAL_GSM8K, markdown, scenario_stats, task_stats
from tts_sim.tasks import get_task

SHIPPED = importlib.resources.files("tts_sim").joinpath("data/default_profile.json.gz")
WIDTHS = DEPTHS = (1, 2, 3, 4, 6, 8)


def fan(k: int, source: str, output: str) -> Graph:
    """k parallel answers of ``source`` fused by one ``output`` node."""
    nodes = [*[(f"s{i}", "assistant", source) for i in range(k)], ("out", "assistant", output)]
    return Graph.build(nodes, [(f"s{i}", "out") for i in range(k)], "out")


def lone(model: str) -> Graph:
    return Graph.build([("out", "assistant", model)], [], "out")


def chains(width: int, depth: int, model: str = "llama-3.2-1b", output: str = DEFAULT_OUTPUT_MODEL) -> Graph:
    """``width`` parallel chains of ``depth`` assistants, each chain's last node feeding the output."""
    nodes, edges = [], []
    for i in range(width):
        for j in range(depth):
            nodes.append((f"c{i}_{j}", "assistant", model))
            if j:
                edges.append((f"c{i}_{j - 1}", f"c{i}_{j}"))
        edges.append((f"c{i}_{depth - 1}", "out"))
    return Graph.build([*nodes, ("out", "assistant", output)], edges, "out")


# ----- the scenario itself ------------------------------------------------------------------
@pytest.mark.parametrize("task", sorted(QUESTIONS))
def test_every_model_matches_its_published_accuracy(task: str) -> None:
    spec = get_task(task)
    truth = scenario_task(task, QUESTIONS[task], np.random.default_rng(1))
    assert set(truth.models) == set(spec.published_accuracy)
    for i, model in enumerate(truth.models):
        target = min(max(spec.published_accuracy[model], spec.chance + 5e-4), 1 - 5e-4)
        assert truth.probs[i, :, 0].mean() == pytest.approx(target, abs=1e-3), model
        assert np.allclose(truth.probs[i].sum(axis=1), 1.0)
    assert truth.difficulty.std() > 1.0  # questions differ


def test_wrong_answers_have_the_shape_of_their_task() -> None:
    rng = np.random.default_rng(2)
    mmlu = task_stats(scenario_task("mmlu", 300, rng))
    truth = scenario_task("mmlu", 200, rng)
    assert (truth.valid[:, 1:].sum(axis=1) == 3).all()  # three wrong options
    math_task = task_stats(scenario_task("math", 500, rng))
    code = task_stats(scenario_task("humaneval", 164, rng))
    # both wrong: wrong programs rarely coincide, math answers sometimes, multiple-choice distractors often
    assert max(code.same_wrong.values()) < 0.12
    assert 0.08 < np.mean(list(math_task.same_wrong.values())) < 0.4
    assert np.mean(list(mmlu.same_wrong.values())) > 1 / 3


def test_gsm8k_statistics_match_real_models() -> None:
    """The math kind's structure reproduces real models' GSM8K answer statistics
    (real-answer-stats.md) within a tolerance that covers the draw of 500 questions."""
    (gsm,) = scenario_stats(0, tasks=("gsm8k",))
    for model, real in REAL_GSM8K["greedy"].items():
        assert gsm.greedy[model] == pytest.approx(real, abs=0.06), model
    assert abs(gsm.correlation - REAL_GSM8K["correlation"]) < 0.08
    low, high = REAL_GSM8K["in_between"]
    assert all(low - 0.05 <= v <= high + 0.05 for v in gsm.mid_range(gsm.in_between)), gsm.in_between
    assert all(0.05 <= v <= 0.4 for v in gsm.same_wrong.values()), gsm.same_wrong
    assert "| in between" in markdown([gsm])


# ----- the shipped profile ------------------------------------------------------------------
def test_the_shipped_profile_loads_and_is_labelled() -> None:
    prof = load_default_profile()
    assert prof.label == LABEL and prof.metadata["scenario"] is True
    assert "not measured" in prof.label
    assert {t: prof.task(t).n_questions for t in QUESTIONS} == QUESTIONS
    assert "llama-3.1-8b" in prof.task("math").answer_banks and prof.task("math").fusion_records
    assert len(SHIPPED.read_bytes()) < 1_000_000


def test_a_corrupted_copy_of_the_shipped_profile_is_refused(tmp_path) -> None:
    data = json.loads(gzip.decompress(SHIPPED.read_bytes()))
    data["tasks"]["math"]["answer_banks"]["llama-3.2-1b"][0][0] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="checksum mismatch"):
        Profile.load(bad)


def test_regenerating_with_seed_0_reproduces_the_shipped_file_byte_for_byte(tmp_path) -> None:
    out = tmp_path / "again.json.gz"
    main(["--out", str(out), "--seed", "0"])
    assert out.read_bytes() == SHIPPED.read_bytes()


# ----- the paper's insights in the fitted default quality model -----------------------------
@pytest.fixture(scope="module")
def math_model() -> QualityModel:
    return default_quality_model("math")


def _best_fused(qm: QualityModel, task: str, budget: float) -> float:
    spec = get_task(task)
    best = 0.0
    for source in ("llama-3.2-1b", "llama-3.2-3b", "gemma-3-1b", "gemma-2b"):
        for output in {source, DEFAULT_OUTPUT_MODEL}:
            for k in (2, 3, 4, 6):
                g = fan(k, source, output)
                if budget_units(graph_flops(g, spec), spec) <= budget:
                    best = max(best, float(qm.expected(g, replicates=100).mean()))
    return best


def test_insight_1_each_task_prefers_its_own_model_mix(math_model: QualityModel) -> None:
    """At the paper's smallest budget (18 units), fusing several small/mid models beats one large
    model on MATH, while on MMLU the single large model wins."""
    budget = 18.0
    large = {t: max(float(qm.expected(lone(m)).mean()) for m in ("llama-3.1-8b", "gemma-7b"))
             for t, qm in (("math", math_model), ("mmlu", default_quality_model("mmlu")))}
    assert _best_fused(math_model, "math", budget) > large["math"] + 0.05
    assert large["mmlu"] > _best_fused(default_quality_model("mmlu"), "mmlu", budget) + 0.05


@pytest.mark.xfail(strict=True, reason="scenario v2 (real GSM8K answer structure): three fused 3B score 0.49, "
                   "above the 8B's 0.485 but not by 0.03")
def test_insight_1_three_mid_size_models_beat_one_large(math_model: QualityModel) -> None:
    three_3b = fan(3, "llama-3.2-3b", "llama-3.2-3b")  # llama only: three mid-size models, fused
    assert budget_units(graph_flops(three_3b, get_task("math")), get_task("math")) <= 18.0
    large = max(float(math_model.expected(lone(m)).mean()) for m in ("llama-3.1-8b", "gemma-7b"))
    assert math_model.expected(three_3b, replicates=100).mean() > large + 0.03


@pytest.fixture(scope="module")
def grid(math_model: QualityModel) -> np.ndarray:
    """Mean expected accuracy of LLaMA-1B width x depth grids (3B output) on MATH."""
    return np.array([[math_model.expected(chains(w, d), replicates=100).mean() for d in DEPTHS] for w in WIDTHS])


def test_insight_2_width_has_an_interior_optimum(grid: np.ndarray) -> None:
    for j in range(len(DEPTHS)):  # at every depth, accuracy rises then falls in width
        col = grid[:, j]
        i = int(col.argmax())
        assert 0 < i < len(WIDTHS) - 1, (DEPTHS[j], col)
        assert col[i] - col[0] > 0.01 and col[i] - col[-1] > 0.005, (DEPTHS[j], col)


@pytest.mark.xfail(strict=True, reason="scenario v2 (questions mostly solved always or never, as real ones): "
                   "a chain of 1B refiners reaches its stationary accuracy at depth 1-2, depth gains vanish")
def test_insight_2_depth_has_an_interior_optimum(grid: np.ndarray) -> None:
    row = grid[WIDTHS.index(2)]  # at width 2, accuracy rises then falls in depth (a shallow optimum)
    j = int(row.argmax())
    assert 0 < j < len(DEPTHS) - 1, row
    assert row[j] - row[0] > 0.003 and row[j] - row[-1] > 0.003, row


def test_insight_3_wider_graphs_move_the_best_depth_down(grid: np.ndarray) -> None:
    best_depth = [DEPTHS[j] for j in grid.argmax(axis=1)]
    assert all(a >= b for a, b in zip(best_depth, best_depth[1:], strict=False)), best_depth
    assert best_depth[0] > best_depth[-1], best_depth
    best_width = [WIDTHS[i] for i in grid.argmax(axis=0)]  # and deeper graphs move the best width down
    assert all(a >= b for a, b in zip(best_width, best_width[1:], strict=False)), best_width
