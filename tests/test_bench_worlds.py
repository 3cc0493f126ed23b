"""Scenario worlds (generator parameters, ensemble, cached profiles), the reference optimum of main
cells, and the report's fraction-of-reference and world win / tie / loss sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tts_sim.bench import BenchConfig, run_bench
from tts_sim.bench.jobs import evaluator_for, splits
from tts_sim.bench.robust import fractions, holm, world_verdicts
from tts_sim.bench.runner import RESULTS, settings_for
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import PAPER_POOL
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace
from tts_sim.search.enumerate import optimum
from tts_sim.search.reference import local_search
from tts_sim.sim.scenario import World, generate_profile, scenario_task
from tts_sim.sim.worlds import ensemble, fusion_hurts_math, world_profile
from tts_sim.tasks import get_task


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_SIM_CACHE", str(tmp_path / "cache"))


def test_the_default_world_generates_the_default_profile():
    kw = dict(samples=8, records=40, questions={"math": 30, "mmlu": 30})
    assert generate_profile(3, **kw).to_dict()["checksum"] == generate_profile(3, world=World(), **kw).to_dict()[
        "checksum"]
    other = generate_profile(3, world=ensemble(2)[1], **kw)
    assert other.to_dict()["checksum"] != generate_profile(3, **kw).to_dict()["checksum"]
    assert other.metadata["world"] == "e1"


def _fan_in(models: list[str]) -> Graph:
    nodes = [Node(f"s{i}", Role.ASSISTANT, m) for i, m in enumerate(models)]
    out = Node("out", Role.ASSISTANT, models[0])
    return Graph.build([*nodes, out], {(f"s{i}", "out") for i in range(len(models))}, "out", catalog=None)


def test_fusion_helps_math_by_default_and_hurts_it_in_the_e0_world():
    models = ["llama-3.2-3b", "gemma-2b", "llama-3.2-1b"]
    assert set(models) <= set(PAPER_POOL)
    gains = {}
    for world in (World(), fusion_hurts_math()):
        truth = scenario_task("math", 300, np.random.default_rng(0), world=world)
        qm = truth.quality_model()
        qs = list(range(300))
        best_single = max(float(np.mean(qm.expected(_single(m), qs))) for m in models)
        gains[world.name] = float(np.mean(qm.expected(_fan_in(models), qs))) - best_single
    assert gains["default"] > 0 > gains["e0:fusion-hurts-math"], gains


def _single(model: str) -> Graph:
    return Graph.build([Node("out", Role.ASSISTANT, model)], set(), "out", catalog=None)


def test_ensemble_is_deterministic_distinct_and_never_empty():
    a, b = ensemble(5, seed=0), ensemble(5, seed=0)
    assert [w.describe() for w in a] == [w.describe() for w in b]
    assert len({json.dumps(w.describe(), sort_keys=True) for w in a}) == 5
    assert ensemble(5, seed=1)[2].describe() != a[2].describe()
    with pytest.raises(ConfigError, match="at least one world"):
        ensemble(0)


def test_world_profiles_are_cached(tmp_path):
    world = ensemble(2)[1]
    path = world_profile(world, cache=tmp_path)
    stamp = path.stat().st_mtime_ns
    assert world_profile(world, cache=tmp_path) == path and path.stat().st_mtime_ns == stamp


def test_local_search_reaches_the_exhaustive_optimum_of_a_small_space():
    ev = evaluator_for("math", {"profile": None, "cluster": None})
    _, heldout = splits(ev.n_questions, {"search_questions": 100, "heldout_questions": 30, "split_seed": 0})
    space = SearchSpace(get_task("math"), 18.0, max_nodes=3, pool=("llama-3.2-1b", "llama-3.1-8b"))
    _, best = optimum(space, ev, heldout)
    _, value, scored = local_search(space, ev, heldout, 150, seed=1)
    assert scored <= 150 and value == pytest.approx(best, abs=1e-9)


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def _row(world: str, searcher: str, seed: int, value: float) -> dict:
    return {"kind": "search", "world": world, "searcher": searcher, "seed": seed, "task": "math", "budget": 18.0,
            "space": "main", "heldout_expected": value, "curve": [value - 0.01, value]}


def test_world_verdicts_count_wins_ties_and_losses_after_holm():
    rng = np.random.default_rng(0)
    rows = []
    for w, lead in (("w1", 0.05), ("w2", 0.05), ("w3", 0.0)):
        for s in range(10):
            base = float(rng.uniform(0.4, 0.6))
            rows += [_row(w, "a", s, base + lead + 0.001 * s * (lead > 0)), _row(w, "b", s, base)]
    v = world_verdicts(rows, ["a", "b"], ["w1", "w2", "w3"])
    assert v["a"]["b"] == {"win": 2, "tie": 1, "loss": 0} and v["b"]["a"] == {"win": 0, "tie": 1, "loss": 2}


def test_fractions_report_searchers_above_the_reference():
    rows = [_row("default", "a", 0, 0.5), _row("default", "a", 1, 0.62),
            {"kind": "reference", "world": "default", "task": "math", "budget": 18.0, "space": "main",
             "heldout_expected": 0.6}]
    curves, violations = fractions(rows, ["a"], "default")
    assert curves[(("math", 18.0, "main"), "a")][:, -1] == pytest.approx([0.5 / 0.6, 0.62 / 0.6])
    assert [v["seed"] for v in violations] == [1]


def test_bench_over_worlds_with_references(tmp_path):
    cfg = BenchConfig(searchers=("random",), priors=("none",), tasks=("math",), budgets=(18.0,), seeds=(0, 1),
                      evals=4, search_questions=20, heldout_questions=20, regret_budgets=(), executor="inline",
                      reference_evals=40, worlds=("default", "ensemble:1"), out=str(tmp_path / "bench"))
    run = run_bench(cfg, progress=False)
    assert run.ran == 6 and not run.failed
    rows = [json.loads(x) for x in (Path(cfg.out) / RESULTS).read_text().splitlines()]
    refs = {r["world"]: r for r in rows if r["kind"] == "reference"}
    assert set(refs) == {"default", "e0"} and all(r["scored"] == 40 for r in refs.values())
    assert {r["world"] for r in rows if r["kind"] == "search"} == {"default", "e0"}
    paths = settings_for(cfg)["world_profiles"]
    assert paths["default"] is None and Path(str(paths["e0"])).is_file()
    again = run_bench(cfg, resume=False, progress=False)  # the references come from the disk cache
    assert all(r["cached"] for r in again.rows if r["kind"] == "reference")
    assert {r["heldout_expected"] for r in again.rows if r["kind"] == "reference"} == {
        r["heldout_expected"] for r in refs.values()}


def test_cli_report_has_fraction_and_world_sections(tmp_path, capsys):
    from tts_sim.cli import main

    out = tmp_path / "b"
    code = main(["bench", "--searchers", "random,gptswarm", "--priors", "none", "--tasks", "math", "--budgets", "18",
                 "--seeds", "2", "--evals", "4", "--search-questions", "20", "--heldout-questions", "20",
                 "--regret-budgets", "none", "--reference-evals", "30", "--worlds", "default,ensemble:1",
                 "--executor", "inline", "--out", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    text = (out / "report.md").read_text()
    assert code == 0 and "## Fraction of the reference optimum" in text and "## Robustness over 2 worlds" in text
    assert "Reference check:" in text and (out / "reference_fraction_e0.png").is_file()
    assert set(data["robust"]["worlds"]["random"]["gptswarm"]) == {"win", "tie", "loss"}
    assert sum(data["robust"]["worlds"]["random"]["gptswarm"].values()) == 2
