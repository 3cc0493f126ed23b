"""Bench statistics on synthetic rows, and the anytime curve's best-so-far rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sim.bench import analyse, anytime_curve
from tts_sim.bench.config import BenchConfig
from tts_sim.bench.report import render_markdown, write_report
from tts_sim.stats import paired_test

EVALS = 6


def row(searcher: str, task: str, budget: float, seed: int, final: float, space: str = "main") -> dict:
    curve = list(np.linspace(final - 0.05, final, EVALS))
    return {"kind": "search", "key": f"search|{searcher}|{task}|{budget:g}|{space}|{seed}", "searcher": searcher,
            "task": task, "budget": budget, "space": space, "seed": seed, "heldout_expected": final,
            "heldout_sampled": final, "heldout_n": 100, "search_n": 100, "curve": curve, "evaluations": EVALS,
            "pretest_evaluations": 0, "best_nodes": 3, "best_units": budget * 0.9, "wall_s": 0.1}


def bench_rows(ar_shift: dict[tuple[str, float], float], seeds: int = 8) -> list[dict]:
    """agent-reinforce, random and bo-gp on two cells; agent-reinforce = random + shift (+ seed jitter)."""
    rng = np.random.default_rng(0)
    rows = []
    for (task, budget), shift in ar_shift.items():
        for s in range(seeds):
            base = 0.6 + 0.02 * rng.standard_normal()
            rows.append(row("random", task, budget, s, base))
            rows.append(row("bo-gp", task, budget, s, base - 0.005))
            rows.append(row("agent-reinforce", task, budget, s, base + shift + 0.004 * rng.standard_normal()))
    return rows


def test_per_cell_means_paired_tests_and_the_expected_check():
    rows = bench_rows({("math", 18.0): 0.03, ("mmlu", 18.0): 0.03})
    a = analyse(rows)
    cell = ("math", 18.0, "main")
    finals = [r["heldout_expected"] for r in rows if r["searcher"] == "agent-reinforce" and r["task"] == "math"]
    assert a.get(cell, "agent-reinforce").final[0] == pytest.approx(np.mean(finals))
    assert a.get(cell, "agent-reinforce").n == 8
    p = next(p for p in a.paired if p.cell == cell and p.other == "random")
    rand = [r["heldout_expected"] for r in rows if r["searcher"] == "random" and r["task"] == "math"]
    ref = paired_test(finals, rand)
    assert p.mean_diff == pytest.approx(ref["mean_diff"]) and p.p_value == pytest.approx(ref["p_value"])
    assert p.verdict == "win" and p.wins == 8 and p.losses == 0
    assert a.check["holds"] and a.check["beats_all"] == 2 and a.check["per_opponent"]["bo-gp"]["significant_wins"] == 2
    np.testing.assert_allclose(a.get(cell, "random").curve, np.mean(
        [r["curve"] for r in rows if r["searcher"] == "random" and r["task"] == "math"], axis=0))


def test_the_expected_check_fails_and_names_the_cells_it_loses():
    a = analyse(bench_rows({("math", 18.0): -0.03, ("mmlu", 18.0): -0.03, ("humaneval", 18.0): 0.03}))
    c = a.check
    assert not c["holds"] and c["beats_all"] == 1 and c["cells"] == 3
    lost = {d["cell"]: d for d in c["lost_cells"]}
    assert set(lost) == {"math @ 18", "mmlu @ 18"}
    assert set(lost["math @ 18"]["beaten_by"]) == {"random", "bo-gp"} and lost["math @ 18"]["best"] == "random"
    text = render_markdown(a, BenchConfig(), wall_s=1.0, jobs=48, images=[])
    assert "**No**: on 1 of 3 main cells" in text and "| math @ 18 | random, bo-gp |" in text


def test_small_space_cells_get_regret_and_are_left_out_of_the_check(tmp_path):
    rows = bench_rows({("math", 18.0): 0.01})
    rows += [row(s, "math", 18.0, k, 0.55 - 0.01 * (s == "random"), space="small")
             for s in ("agent-reinforce", "random") for k in range(3)]
    rows.append({"kind": "optimum", "key": "optimum|math|18|small", "task": "math", "budget": 18.0, "space": "small",
                 "heldout_expected": 0.56, "heldout_n": 100, "n_graphs": 79})
    a = analyse(rows)
    small = ("math", 18.0, "small")
    assert a.get(small, "random").regret[0] == pytest.approx(0.02)
    assert a.get(small, "agent-reinforce").regret[0] == pytest.approx(0.01)
    assert a.get(("math", 18.0, "main"), "random").regret is None
    assert a.check["cells"] == 1  # only main cells count
    report = write_report(a, BenchConfig(regret_budgets=(18.0,)), tmp_path, wall_s=2.0, jobs=10)
    text = report.read_text()
    assert "Computed only on these cells (their space is enumerable): math @ 18 (small space)" in text
    assert (tmp_path / "anytime_small.png").read_bytes()[:4] == b"\x89PNG"


@dataclass(frozen=True)
class _G:
    """Stands in for a graph: ``graph_key`` is patched to read ``name``."""

    name: str


@dataclass(frozen=True)
class _T:
    index: int
    graph: _G
    score: float
    flops: float
    full: bool = True


class _Scorer:
    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.calls = 0

    def expected(self, graph, questions):
        self.calls += 1
        return type("E", (), {"accuracy": self.values[graph.name]})()


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3), st.booleans()), min_size=1, max_size=12),
       evals=st.integers(1, 14))
def test_anytime_curve_is_the_heldout_value_of_the_driver_best_so_far(monkeypatch_module, scores, evals):
    trials = [_T(i, _G(f"g{i}"), float(s), float(fl), full) for i, (s, fl, full) in enumerate(scores)]
    scorer = _Scorer({t.graph.name: 0.1 * t.index for t in trials})
    curve = anytime_curve(trials, scorer, [0, 1], evals)
    assert len(curve) == evals
    chosen = set()
    for k in range(min(evals, len(trials))):
        prefix = trials[: k + 1]
        pool = [t for t in prefix if t.full] or prefix
        best = min(pool, key=lambda t: (-t.score, t.flops, t.index))
        assert curve[k] == pytest.approx(0.1 * best.index)
        chosen.add(best.graph.name)
    used = min(evals, len(trials))
    assert curve[used - 1:] == [curve[used - 1]] * (evals - used + 1)  # a short search keeps its last value
    assert scorer.calls == len(chosen)  # one expected() per distinct best-so-far graph


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    mp.setattr("tts_sim.core.identity.graph_key", lambda g: g.name)
    yield mp
    mp.undo()


def test_each_prior_setting_is_compared_like_with_like():
    """agent-reinforce under a prior is tested against searchers of the same prior (and prior-blind
    ones), the two agent-reinforce settings against each other, never across settings otherwise."""
    rows = []
    for s in range(6):
        for label, final in (("agent-reinforce[prior=none]", 0.50), ("agent-reinforce[prior=published]", 0.60),
                             ("random[prior=none]", 0.55), ("random[prior=published]", 0.58), ("gptswarm", 0.4)):
            rows.append(row(label, "math", 18.0, s, final + 0.001 * s * (label < "b")))
    a = analyse(rows)
    pairs = {(p.reference, p.other) for p in a.paired}
    assert pairs == {("agent-reinforce[prior=none]", "agent-reinforce[prior=published]"),
                     ("agent-reinforce[prior=none]", "random[prior=none]"), ("agent-reinforce[prior=none]", "gptswarm"),
                     ("agent-reinforce[prior=published]", "random[prior=published]"),
                     ("agent-reinforce[prior=published]", "gptswarm")}
    assert a.references == ["agent-reinforce[prior=none]", "agent-reinforce[prior=published]"]
    assert a.checks["agent-reinforce[prior=none]"]["opponents"] == ["random[prior=none]"]
    assert a.checks["agent-reinforce[prior=none]"]["beats_all"] == 0
    assert a.checks["agent-reinforce[prior=published]"]["beats_all"] == 1
