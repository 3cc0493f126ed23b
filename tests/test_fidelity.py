"""fidelity: held-out graphs and questions, the resumable real run, the summary maths, the CLI (fake backend)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.test_executor_fakes import FakeBackend
from tests.test_validate import BIG, SMALL, _fake, add_profile  # noqa: F401  (add_profile: a fixture)
from tts_sim.core.graph import Role
from tts_sim.core.identity import graph_key
from tts_sim.core.presets import chain, parallel, single
from tts_sim.errors import ConfigError
from tts_sim.real.executor import GraphExecutor
from tts_sim.real.fidelity import (
    SUMMARY_KEYS,
    FidelityPlan,
    FidelityRow,
    best_in_top,
    heldout_graphs,
    heldout_questions,
    if_exact,
    measure,
    summary,
)
from tts_sim.real.fidelity.report import target_met
from tts_sim.tasks.questions import load_questions


# ----- summary maths ------------------------------------------------------------------------------
def _row(i, pred, meas, interval, lat=None):
    g = [single(SMALL), single(BIG), parallel(2, SMALL, output_model=BIG), chain(2, BIG, output_model=SMALL),
         parallel(3, BIG, output_model=BIG)][i]
    p_lat, m_lat = lat if lat else (None, None)
    return FidelityRow(i, g, pred, interval, meas, (meas - 0.1, meas + 0.1), 100, predicted_latency=p_lat,
                       measured_latency=m_lat, latency_queries=30 if m_lat else 0)


def test_summary_maths_on_hand_made_rows():
    rows = [_row(0, 0.30, 0.25, (0.20, 0.40), ((1.1, 2.0), (1.0, 2.5))),
            _row(1, 0.50, 0.55, (0.45, 0.55), ((0.95, 2.0), (1.0, 2.0))),  # on the interval's edge: inside
            _row(2, 0.70, 0.60, (0.65, 0.75), ((2.0, 3.0), (2.0, 3.0))),
            _row(3, 0.60, 0.70, (0.50, 0.70))]  # no latency
    s = summary(rows, profile="p", command="tts-sim fidelity x")
    assert list(s) == list(SUMMARY_KEYS)
    # ranks: predicted 1 2 4 3, measured 1 2 3 4: rho = 1 - 6 * 2 / (4 * 15)
    assert s["spearman"] == pytest.approx(0.8) == pytest.approx(spearmanr([.3, .5, .7, .6], [.25, .55, .6, .7])[0])
    assert s["mae"] == pytest.approx(0.075)
    assert s["inside_interval"] == pytest.approx(0.75)
    assert s["best_in_top3"] is True  # predicted best (#2) measured 0.60, third best measured 0.55
    assert s["p50_error_median"] == pytest.approx(0.05) and s["p50_error_worst"] == pytest.approx(0.10)
    assert (s["n_graphs"], s["n_questions"], s["profile"], s["command"]) == (4, 100, "p", "tts-sim fidelity x")
    assert rows[0].latency_errors() == {"p50": pytest.approx(0.1), "p95": pytest.approx(-0.2)}

    worse = [*rows[:2], _row(2, 0.70, 0.20, (0.65, 0.75)), rows[3]]
    s2 = summary(worse, profile="p", command="c")
    assert s2["best_in_top3"] is False and s2["inside_interval"] == pytest.approx(0.75)
    assert s2["p50_error_worst"] == pytest.approx(0.10)  # graph #2 lost its latency
    flat = [_row(i, 0.1 * (i + 1), 0.5, (0.0, 1.0)) for i in range(3)]
    s3 = summary(flat, profile="p", command="c")
    assert s3["spearman"] is None and s3["p50_error_median"] is None and s3["best_in_top3"] is True
    with pytest.raises(ConfigError):
        summary([], profile="p", command="c")


def test_if_exact_is_what_right_predictions_score_under_binomial_noise():
    def rows(preds, n):
        return [dataclasses.replace(_row(i % 5, p, p, (0.0, 1.0)), n_questions=n) for i, p in enumerate(preds)]

    spread = [0.1, 0.3, 0.5, 0.7, 0.9]
    e = if_exact(rows(spread, 100_000))  # so many questions that the noise vanishes
    assert e["spearman"] == pytest.approx(1.0) and e["spearman_target_met"] == 1.0
    assert e["mae"] < 0.005 and e["mae_target_met"] == 1.0 and e["best_in_top3"] == 1.0
    close = if_exact(rows([0.20, 0.21, 0.22, 0.23, 0.24], 150))  # true gaps far below the noise
    assert close["spearman"] < 0.6 and close["spearman_target_met"] < 0.3
    # binomial sd at p = 0.2, n = 150 is 0.033: E|error| = 0.8 * 0.033
    assert close["mae"] == pytest.approx(0.026, abs=0.004)
    assert if_exact(rows([0.5] * 3, 100))["spearman"] is None  # no spread, no rank order to recover


def test_the_measured_p50_gets_a_distribution_free_interval_and_its_own_noise_floor():
    walls = tuple(float(x) for x in np.arange(1, 31))  # 30 queries: the median's 95% CI is (x(10), x(21))
    row = dataclasses.replace(_row(0, 0.3, 0.3, (0.2, 0.4)), walls=walls)
    assert row.p50_ci() == (10.0, 21.0)
    assert dataclasses.replace(row, walls=walls[:5]).p50_ci() is None
    assert row.to_dict()["measured"]["p50_ci_s"] == [10.0, 21.0]
    steady = [dataclasses.replace(_row(i, 0.3, 0.3, (0.2, 0.4)), walls=(1.0,) * 29 + (2.0,)) for i in range(3)]
    e = if_exact(steady)
    assert e["p50_error_median"] == 0.0 and e["p50_error_worst_target_met"] == 1.0
    # two modes (0.1 s and 0.2 s replies, as SmolLM2's capped replies give): the median jumps between them
    bimodal = [dataclasses.replace(_row(i, 0.3, 0.3, (0.2, 0.4)), walls=(0.1,) * 15 + (0.2,) * 15) for i in range(3)]
    e = if_exact(bimodal)
    assert e["p50_error_worst"] >= 0.3 and e["p50_error_worst_target_met"] < 0.2
    assert if_exact([_row(0, 0.3, 0.3, (0.2, 0.4))])["p50_error_median"] is None  # no walls, no figure


def test_best_in_top_and_targets():
    assert best_in_top([0.9, 0.1, 0.2, 0.3, 0.4], [0.5, 0.9, 0.8, 0.5, 0.1])  # tie for third place counts
    assert not best_in_top([0.9, 0.1, 0.2, 0.3, 0.4], [0.4, 0.9, 0.8, 0.5, 0.1])
    assert best_in_top([0.5, 0.5, 0.1, 0.0], [0.0, 1.0, 1.0, 1.0]) is False  # ties in prediction: the first
    assert target_met("spearman", 0.8) and not target_met("mae", 0.05) and target_met("best_in_top3", True)
    assert target_met("p50_error_worst", None) is None and target_met("n_graphs", 3) is None


# ----- held-out graphs and questions ---------------------------------------------------------------------
def test_random_graphs_are_distinct_bounded_deterministic_and_varied():
    graphs = heldout_graphs(40, [SMALL, BIG], seed=1)
    assert graphs == heldout_graphs(40, [BIG, SMALL], seed=1) != heldout_graphs(40, [SMALL, BIG], seed=2)
    assert len({graph_key(g) for g in graphs}) == 40
    assert all(g.width <= 6 and g.depth <= 3 for g in graphs)
    assert {g.depth for g in graphs} == {0, 1, 2, 3} and max(g.width for g in graphs) == 6
    assert {g.node(n).model for g in graphs for n in g.executed} == {SMALL, BIG}
    assert {g.node(n).role for g in graphs for n in g.executed if g.predecessors(n)} == {Role.ASSISTANT, Role.FUSER}
    assert all(len(g.executed) == len(g.nodes) for g in graphs)  # every drawn node runs
    small = heldout_graphs(5, [SMALL], seed=0, max_width=2, max_depth=1)
    assert all(g.width <= 2 and g.depth <= 1 for g in small)
    assert heldout_graphs(1, [SMALL, BIG], seed=0, max_width=1, max_depth=0, exclude=[single(SMALL)]) == [single(BIG)]
    with pytest.raises(ConfigError, match="only 2 distinct graphs"):
        heldout_graphs(3, [SMALL, BIG], seed=0, max_width=1, max_depth=0)


def test_questions_must_be_held_out():
    pool = load_questions("add")
    profiled = [q.id for q in pool[:12]]
    with pytest.raises(ConfigError, match=r"7 of the questions 5\.\.14 were profiled .*--offset 12 is free"):
        heldout_questions(pool, profiled, 5, 10, "add")
    got = heldout_questions(pool, profiled, 12, 10, "add")
    assert [q.id for q in got] == [q.id for q in pool[12:22]]
    with pytest.raises(ConfigError, match="only 3 questions"):
        heldout_questions(pool, profiled, len(pool) - 3, 10, "add")
    with pytest.raises(ConfigError, match="no window"):
        heldout_questions(pool[:20], profiled, 8, 10, "add")


# ----- the resumable run ------------------------------------------------------------------------------
def test_each_timed_query_comes_right_after_a_call_of_its_own_output_model(add_profile, tmp_path):  # noqa: F811
    """A priming call (one token, the graph's output model) before every timed query and never before a
    batched one; a journal timed without priming is refused while it has timed queries left, and read
    when it has none."""
    _, profile = add_profile
    plan = _plan(profile)
    backend = _fake()
    measure(plan, _executor(backend), tmp_path / "j.jsonl", plan.journal_config(), quiet=True)
    primes = [(i, m) for i, (m, reqs) in enumerate(backend.calls) if reqs[0].max_new_tokens == 1]
    assert len(primes) == len(plan.graphs) * plan.latency_questions
    outputs = [g.node(g.output).model for g in plan.graphs] * plan.latency_questions  # question-major
    assert [m for _, m in primes] == outputs
    assert all(backend.calls[i + 1][1][0].max_new_tokens > 1 for i, _ in primes)  # the timed query at once

    old = dataclasses.replace(plan, primed=False)
    cfg = old.journal_config()
    del cfg["primed"]  # as journals written before priming existed
    path = tmp_path / "old.jsonl"

    def stop(n):
        raise Killed

    with pytest.raises(Killed):
        measure(old, _executor(_fake()), path, cfg, quiet=True, on_batch=stop)
    with pytest.raises(ConfigError, match="without priming"):
        measure(plan, _executor(_fake()), path, plan.journal_config(), quiet=True)
    measure(old, _executor(_fake()), path, cfg, quiet=True)  # finished the old way
    current = plan.journal_config()
    done = measure(plan, _executor(again := _fake()), path, current, quiet=True)
    assert again.calls == [] and all(len(d) == len(plan.questions) for d in done)  # complete: only read
    assert current["primed"] is False  # the report says how the journal's latency was timed


class Killed(Exception):
    pass


def _plan(profile):
    pool = load_questions("add")
    questions = heldout_questions(pool, profile.task("add").question_ids, 12, 10, "add")
    graphs = (single(BIG), parallel(2, SMALL, output_model=BIG), heldout_graphs(1, [SMALL, BIG], seed=5)[0])
    return FidelityPlan("add", graphs, tuple(questions), latency_questions=2, batch=3, seed=1)


def _executor(backend):
    return GraphExecutor(backend, "add", model_map={SMALL: SMALL, BIG: BIG}, max_new_tokens=32, seed=1)


def _without_times(done):
    return [{q: {k: v for k, v in r.items() if k != "wall_s"} for q, r in d.items()} for d in done]


def test_a_killed_run_resumes_without_rerunning_or_duplicating(add_profile, tmp_path):  # noqa: F811
    _, profile = add_profile
    plan = _plan(profile)
    config = plan.journal_config(profile=profile.label)
    whole_backend = _fake()
    whole = measure(plan, _executor(whole_backend), tmp_path / "whole.jsonl", config, quiet=True)
    requests = sum(len(r) for _, r in whole_backend.calls)

    def stop(n):
        if n >= 7:
            raise Killed

    first = _fake()
    path = tmp_path / "killed.jsonl"
    with pytest.raises(Killed):  # between two journalled batches
        measure(plan, _executor(first), path, config, quiet=True, on_batch=stop)
    kept = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    # questions 1 and 2 one at a time through graphs 0, 1, 2 (question-major), then graph 0's first batch of 3
    assert len(kept) == 9 and [(r["graph"], r["single"]) for r in kept[:7]] == [
        (0, True), (1, True), (2, True), (0, True), (1, True), (2, True), (0, False)]
    second = _fake()
    resumed = measure(plan, _executor(second), path, config, quiet=True)
    assert _without_times(resumed) == _without_times(whole)
    assert sum(len(r) for _, r in first.calls + second.calls) == requests  # nothing ran twice
    lines = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    assert len(lines) == 3 * 10 and len({(r["graph"], r["question"]) for r in lines}) == 30
    assert lines[:9] == kept  # what was journalled stays, times included
    assert [resumed[r["graph"]][r["question"]]["wall_s"] for r in kept] == [r["wall_s"] for r in kept]
    assert sum(r["single"] for r in lines) == 3 * 2
    for r in lines:  # every executed node's answer and correctness, the output's agreeing with the record's
        graph = plan.graphs[r["graph"]]
        assert set(r["nodes"]) == set(graph.executed) and r["nodes"][graph.output] == [r["answer"], r["correct"]]

    # killed inside a backend call (the batch is lost), then a torn last line: the resume still matches
    calls = []

    def die(model, requests):
        calls.append(model)
        if len(calls) == 9:
            raise Killed

    path2 = tmp_path / "torn.jsonl"
    with pytest.raises(Killed):
        measure(plan, _executor(FakeBackend(offsets={SMALL: 1}, slips=(0, 0, 0, 1), on_call=die)), path2, config,
                quiet=True)
    with path2.open("a") as f:
        f.write('{"graph": 0, "quest')
    again = measure(plan, _executor(_fake()), path2, config, quiet=True)
    assert _without_times(again) == _without_times(whole)
    assert len(path2.read_text().splitlines()) == 1 + 30
    # everything journalled: a third call runs nothing
    idle = _fake()
    assert _without_times(measure(plan, _executor(idle), path2, config, quiet=True)) == _without_times(whole)
    assert idle.calls == []


def test_a_journal_of_another_run_is_refused(add_profile, tmp_path):  # noqa: F811
    _, profile = add_profile
    plan = _plan(profile)
    path = tmp_path / "j.jsonl"
    measure(plan, _executor(_fake()), path, plan.journal_config(profile=profile.label), quiet=True)
    other = FidelityPlan("add", plan.graphs, plan.questions, latency_questions=2, batch=4, seed=1)
    with pytest.raises(ConfigError, match="another fidelity run \\('batch' differs\\)"):
        measure(other, _executor(_fake()), path, other.journal_config(profile=profile.label), quiet=True)
    path.write_text(path.read_text().replace('"correct"', '"korrect"', 1))
    with pytest.raises(ConfigError, match="line 2: not a fidelity record"):
        measure(plan, _executor(_fake()), path, plan.journal_config(profile=profile.label), quiet=True)
    with pytest.raises(ConfigError, match="same graph"):
        FidelityPlan("add", (single(BIG), single(BIG)), plan.questions)


def test_the_progress_bar_counts_model_calls_from_where_a_resume_starts(add_profile, tmp_path, capsys):  # noqa: F811
    _, profile = add_profile
    plan = _plan(profile)
    calls = 10 * sum(len(g.executed) for g in plan.graphs)
    config = plan.journal_config(profile=profile.label)

    def stop(n):
        if n >= 2:
            raise Killed

    with pytest.raises(Killed):
        measure(plan, _executor(_fake()), tmp_path / "j.jsonl", config, on_batch=stop)
    capsys.readouterr()
    measure(plan, _executor(_fake()), tmp_path / "j.jsonl", config)
    err = capsys.readouterr().err.replace("\r", "\n")
    # question 1 went through graph 0 (1 call) and graph 1 (3 calls) before the kill
    assert f" 4/{calls} " in err and f"{calls}/{calls}" in err and "call/s" in err
    measure(plan, _executor(_fake()), tmp_path / "j.jsonl", config, quiet=True)
    assert capsys.readouterr().err == ""


# ----- the command ------------------------------------------------------------------------------------
@pytest.fixture()
def fake_backend(monkeypatch):
    from tts_sim.backends import BACKENDS

    built: list[FakeBackend] = []

    def build(**_options):
        built.append(_fake())
        return built[-1]

    monkeypatch.setitem(BACKENDS._items, "fake-test", SimpleNamespace(build=build, options=lambda: {}))
    return built


def _args(profile_path, out, *extra):
    return ["fidelity", "--profile", str(profile_path), "--backend", "fake-test", "--questions", "8", "--offset",
            "12", "--latency-questions", "2", "--batch", "3", "--out", str(out), "--quiet", *extra]


def test_cli_end_to_end_and_resume(add_profile, fake_backend, tmp_path, capsys):  # noqa: F811
    from tts_sim.cli import main

    path, profile = add_profile
    graphs = tmp_path / "graphs.json"
    graphs.write_text(json.dumps([single(BIG).to_dict(), parallel(2, SMALL, output_model=BIG).to_dict()]))
    out = tmp_path / "out"
    args = _args(path, out, "--graphs", str(graphs), "--generate", "3", "--seed", "2", "--json")
    assert main(args) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    data = json.loads((out / "fidelity_add.json").read_text())
    assert data["summary"] == printed["summary"]
    s = data["summary"]
    assert list(s) == list(SUMMARY_KEYS)
    assert (s["n_graphs"], s["n_questions"], s["profile"]) == (5, 8, profile.label)
    assert s["command"].startswith("tts-sim fidelity --profile") and "--generate 3" in s["command"]
    assert [r["graph"] for r in data["rows"][:2]] == [single(BIG).to_dict(), parallel(2, SMALL, output_model=BIG)
                                                      .to_dict()]
    for r in data["rows"]:
        lo, hi = r["predicted"]["interval"]
        assert 0 <= lo <= r["predicted"]["accuracy"] <= hi <= 1
        assert r["measured"]["n_questions"] == 8 and r["measured"]["latency_queries"] == 2
        assert r["inside_interval"] == (lo <= r["measured"]["accuracy"] <= hi)
        assert r["predicted"]["latency"]["p50_s"] > 0 and r["measured"]["latency"]["p95_s"] >= 0
    assert data["rows"][0]["measured"]["accuracy"] > 0.4 and data["rows"][0]["predicted"]["fit_sd"] == 0
    ids = set(data["config"]["questions"])
    assert len(ids) == 8 and not ids & set(profile.task("add").question_ids)
    assert (out / "fidelity_add.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "fidelity_add.md").read_text()
    assert "# Fidelity" in md and "![predicted vs measured](fidelity_add.png)" in md and "Spearman" in md
    requests = sum(len(r) for _, r in fake_backend[0].calls)
    # every node on every question, and before each of the 5 x 2 timed queries a one-token priming call
    assert requests == 8 * sum(len(g["graph"]["nodes"]) for g in data["rows"]) + 5 * 2

    assert main(args) == 0  # resumed from the journal: nothing runs again, same report
    assert fake_backend[1].calls == []
    again = json.loads(capsys.readouterr().out)
    assert again["summary"] == printed["summary"] and again["rows"] == printed["rows"]

    # re-predicted from the report alone with the same profile: the same figures, the measurements kept
    rep = tmp_path / "rep"
    assert main(["fidelity", "--profile", str(path), "--repredict", str(out / "fidelity_add.json"), "--out",
                 str(rep), "--quiet", "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    redone = json.loads((rep / "fidelity_add.json").read_text())
    assert redone["rows"] == data["rows"]
    assert {k: v for k, v in redone["summary"].items() if k != "command"} == \
        {k: v for k, v in s.items() if k != "command"}
    assert "--repredict" in redone["summary"]["command"]
    assert redone["config"]["repredicted"]["measured_by"] == s["command"]
    assert f"- measured by: `{s['command']}`" in (rep / "fidelity_add.md").read_text()
    for extra, message in ((("--generate", "2"), "takes its graphs from the report"),
                           (("--task", "math"), "is of task 'add', not 'math'")):
        assert main(["fidelity", "--profile", str(path), "--repredict", str(out / "fidelity_add.json"), "--out",
                     str(rep), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    broken = tmp_path / "broken.json"
    for text, message in (("{", "not valid JSON"), ('{"schema": "x"}', "not a tts-sim fidelity report"),
                          (json.dumps({**data, "rows": [{"index": 0}]}), "row 0: missing or malformed")):
        broken.write_text(text)
        assert main(["fidelity", "--profile", str(path), "--repredict", str(broken), "--out", str(rep)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("extra, message", [
    ((), "no graphs"),
    (("--generate", "2", "--offset", "0"), "were profiled"),
    (("--generate", "2", "--task", "math"), "no data for task 'math'"),
    (("--generate", "2", "--questions", "100000"), "only"),
    (("--graphs", "{missing}"), "not found|No such file|cannot read"),
])
def test_cli_bad_input_is_one_line_and_exit_2(add_profile, fake_backend, tmp_path, capsys, extra, message):  # noqa: F811
    import re

    from tts_sim.cli import main

    path, _ = add_profile
    extra = tuple(x.replace("{missing}", str(tmp_path / "nope.json")) for x in extra)
    assert main(_args(path, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not fake_backend or all(b.calls == [] for b in fake_backend)


def test_cli_usage_errors_and_a_journal_of_other_settings(add_profile, fake_backend, tmp_path, capsys):  # noqa: F811
    from tts_sim.cli import main

    path, _ = add_profile
    assert main(["fidelity", "--backend", "fake-test", "--generate", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "fidelity: error:" in err and "--profile" in err
    assert main(_args(path, tmp_path / "o", "--generate", "-1")) == 2
    assert main(_args(path, tmp_path / "o", "--generate", "1")) == 0
    assert main(_args(path, tmp_path / "o", "--generate", "1", "--seed", "9")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "written for another fidelity run" in err


def test_a_refitted_profile_re_predicts_from_the_same_journal(add_profile, fake_backend, tmp_path, capsys):  # noqa: F811
    from tts_sim.cli import main
    from tts_sim.real.profiling import ProfileConfig, run_profile

    path, profile = add_profile
    graphs = tmp_path / "graphs.json"
    graphs.write_text(json.dumps([single(BIG).to_dict(), parallel(3, SMALL, output_model=BIG).to_dict()]))
    out = tmp_path / "out"
    assert main(_args(path, out, "--graphs", str(graphs), "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    cfg = ProfileConfig(task="add", models={SMALL: SMALL, BIG: BIG}, questions=12, samples=6, fusion_records=60,
                        max_new_tokens=32, latency=False, seed=11, label="refitted")  # other samples and records
    refit = run_profile(_fake(), cfg, questions=load_questions("add")[:12]).profile
    refit.latency = profile.latency
    refit.save(tmp_path / "refit.json")
    assert main(_args(tmp_path / "refit.json", out, "--graphs", str(graphs), "--json")) == 0
    second = json.loads(capsys.readouterr().out)
    assert fake_backend[-1].calls == []  # measured once
    assert [r["measured"] for r in second["rows"]] == [r["measured"] for r in first["rows"]]
    assert second["summary"]["profile"] == "refitted"
    assert [r["predicted"]["accuracy"] for r in second["rows"]] != [r["predicted"]["accuracy"] for r in first["rows"]]


def test_a_run_grows_with_more_questions_from_the_same_offset(add_profile, tmp_path):  # noqa: F811
    _, profile = add_profile
    plan = _plan(profile)
    fewer = FidelityPlan("add", plan.graphs, plan.questions[:6], latency_questions=2, batch=3, seed=1)
    path = tmp_path / "grow.jsonl"
    measure(fewer, _executor(_fake()), path, fewer.journal_config(profile=profile.label), quiet=True)
    more = _fake()
    grown = measure(plan, _executor(more), path, plan.journal_config(profile=profile.label), quiet=True)
    whole = measure(plan, _executor(_fake()), tmp_path / "whole.jsonl", plan.journal_config(profile=profile.label),
                    quiet=True)
    assert _without_times(grown) == _without_times(whole)
    asked = {q.id for _, reqs in more.calls for r in reqs for q in plan.questions[6:] if q.prompt in str(r.messages)}
    assert asked == {q.id for q in plan.questions[6:]}  # only the new questions ran
    assert sum(len(r) for _, r in more.calls) == 4 * sum(len(g.executed) for g in plan.graphs)
    again = _fake()  # and back to the first six: all replayed
    measure(fewer, _executor(again), path, fewer.journal_config(profile=profile.label), quiet=True)
    assert again.calls == []
    shifted = FidelityPlan("add", plan.graphs, plan.questions[1:], latency_questions=2, batch=3, seed=1)
    with pytest.raises(ConfigError, match="'questions' differs"):
        measure(shifted, _executor(_fake()), path, shifted.journal_config(profile=profile.label), quiet=True)
