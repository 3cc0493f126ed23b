"""validate: candidates from search results / graph files, model maps, predicted vs measured, the CLI."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from scipy.stats import spearmanr

from tests.test_executor_fakes import FakeBackend
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.presets import parallel, single
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError, GraphError
from tts_sim.real.evaluator import RealEvaluator
from tts_sim.real.profiling import ProfileConfig, measured_task_spec, run_profile
from tts_sim.real.validate import (
    build_model_map,
    load_candidates,
    map_graph,
    parse_model_map,
    relative_error,
    validate_graphs,
)
from tts_sim.search.result import SearchCost, SearchResult, Trial
from tts_sim.sim.evaluator import SimulatedEvaluator
from tts_sim.tasks import TASKS
from tts_sim.tasks.questions import load_questions

SMALL, BIG = "smollm2-135m", "gemma-3-270m"
L1, L3, G1 = "llama-3.2-1b", "llama-3.2-3b", "gemma-3-1b"


def _fake() -> FakeBackend:
    # BIG answers right 3 times in 4; SMALL is always off by at least one
    return FakeBackend(offsets={SMALL: 1}, slips=(0, 0, 0, 1), prefill_per_token=1e-4, decode_per_token=1e-3)


def _trial(i: int, graph: Graph, score: float, full: bool = True) -> Trial:
    return Trial(i, graph, score, score, 0.0, 1.0, 3, 1e12, 1.0, None, 0.1, "test", full)


def _result(tmp_path, trials) -> str:
    r = SearchResult("test", 0, {"task": "add"}, trials, trials[0].graph, 0, None, SearchCost())
    path = tmp_path / "result.json"
    r.save(path)
    return str(path)


@pytest.fixture()
def add_profile(tmp_path, monkeypatch):
    """A measured-looking profile of the fake backend on the first 12 ``add`` questions, with a
    synthetic CPU latency table for SMALL and BIG; the ``add`` spec with its A and B is registered."""
    pool = load_questions("add")
    cfg = ProfileConfig(task="add", models={SMALL: SMALL, BIG: BIG}, questions=12, samples=6, fusion_records=60,
                        max_new_tokens=32, latency=False, seed=3)
    run = run_profile(_fake(), cfg, questions=pool[:12])
    for model, scale in ((SMALL, 1.0), (BIG, 2.0)):
        run.profile.latency.append(LatencyTable(
            model, "cpu", "fake",
            prefill=[(n, b, scale * (1e-3 + 1e-4 * n * b)) for n in (16, 64, 256) for b in (1, 4)],
            decode=[(c, b, scale * (0.01 + 1e-6 * c * b)) for c in (16, 256) for b in (1, 4)]))
    path = tmp_path / "profile.json"
    run.profile.save(path)
    monkeypatch.setitem(TASKS._items, "add", measured_task_spec(run.profile, "add"))
    return path, run.profile


# ----- candidates ------------------------------------------------------------------------------------
def test_top_k_of_a_search_result_by_score_distinct_graphs(tmp_path):
    g1, g2, g3 = single(L1), parallel(2, L1), parallel(3, G1)
    path = _result(tmp_path, [_trial(0, g1, 0.4), _trial(1, g2, 0.9), _trial(2, g2, 0.9), _trial(3, g3, 0.95, False),
                              _trial(4, g3, 0.6)])
    got = load_candidates([path], 2)
    assert [c.graph for c in got] == [g2, g3]  # full-split trials first; g2's duplicate dropped
    assert [c.score for c in got] == [0.9, 0.6] and got[0].origin.endswith("#trial1")
    assert len(load_candidates([path], 10)) == 3


def test_graph_files_and_lists(tmp_path):
    g = parallel(2, L1)
    (tmp_path / "g.json").write_text(g.to_json())
    (tmp_path / "list.json").write_text(json.dumps([{"graph": single(G1).to_dict(), "score": 0.7},
                                                    single(L3).to_dict()]))
    got = load_candidates([str(tmp_path / "g.json"), str(tmp_path / "list.json")], 5)
    assert [c.graph for c in got] == [single(G1), g, single(L3)]  # scored first, then file order
    (tmp_path / "bad.json").write_text(json.dumps([{"graph": {"nodes": [], "edges": [], "output": "x"}}]))
    with pytest.raises(GraphError, match="item #0"):
        load_candidates([str(tmp_path / "bad.json")], 1)
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_candidates([str(tmp_path / "junk.json")], 1)
    with pytest.raises(ConfigError, match="top-k"):
        load_candidates([str(tmp_path / "g.json")], 0)


def test_model_maps():
    assert parse_model_map(f"{L1}={SMALL}, {G1}={BIG}") == {L1: SMALL, G1: BIG}
    for bad in ("x", "a=", "=b"):
        with pytest.raises(ConfigError):
            parse_model_map(bad)
    graphs = [parallel(2, L1, output_model=L3), single(G1)]
    assert build_model_map(graphs, {L1: BIG}) == {G1: G1, L1: BIG, L3: L3}
    assert build_model_map(graphs, {L1: BIG}, substitute=SMALL) == {G1: SMALL, L1: SMALL, L3: SMALL}
    mapped = map_graph(graphs[0], {L1: SMALL, L3: BIG})
    assert {mapped.node(n).model for n in mapped.executed} == {SMALL, BIG}
    assert mapped.edges == graphs[0].edges and mapped.node("out").model == BIG
    assert relative_error(1.1, 1.0) == pytest.approx(0.1) and math.isnan(relative_error(1.0, 0.0))


# ----- predicted vs measured ---------------------------------------------------------------------------
def test_validate_graphs_compares_and_ranks(add_profile):
    _, profile = add_profile
    spec = TASKS.get("add")
    heldout = [q for q in load_questions("add") if q.id not in set(profile.task("add").question_ids)][:8]
    from tts_sim.real.validate import Candidate
    from tts_sim.sim.cluster import ClosedLoop

    sim = SimulatedEvaluator(spec, profile=profile, cluster="cpu", arrival=ClosedLoop(1), n_queries=10)
    real = RealEvaluator("add", _fake(), spec=spec, questions=heldout, max_new_tokens=32)
    g_big, g_small = single(BIG), single(SMALL)
    g_mix = Graph.build([Node("a", Role.ASSISTANT, SMALL), Node("b", Role.ASSISTANT, BIG),
                         Node("out", Role.FUSER, BIG)], [("a", "out"), ("b", "out")], "out")
    cands = [Candidate(g, f"g{i}", None) for i, g in enumerate((g_big, g_small, g_mix))]
    report = validate_graphs(cands, real, sim, model_map={SMALL: SMALL, BIG: BIG})
    rows = report.rows
    assert [r.accuracy_graph for r in rows] == ["mapped"] * 3
    assert rows[1].measured.accuracy == 0.0 and rows[0].measured.accuracy > 0.4  # SMALL is always wrong
    assert rows[0].predicted.accuracy > rows[1].predicted.accuracy
    for r in rows:
        assert r.measured.source == "real" and r.measured.n_questions == 8
        assert r.predicted.latency.predictor == "profile-table" and r.measured.latency.predictor == "measured"
        e = r.latency_errors()
        assert e["mean"] == pytest.approx((r.predicted.latency.mean_s - r.measured.latency.mean_s)
                                          / r.measured.latency.mean_s)
        lo, hi = r.predicted_interval
        assert lo <= r.predicted.accuracy <= hi
    # the synthetic table makes BIG twice as slow: predicted latency ranks BIG above SMALL
    assert rows[0].predicted.latency.mean_s > rows[1].predicted.latency.mean_s
    pred = [r.predicted.accuracy for r in rows]
    meas = [r.measured.accuracy for r in rows]
    assert report.spearman_accuracy == pytest.approx(spearmanr(pred, meas).statistic)
    md = report.to_markdown()
    assert "| smollm2-135m | smollm2-135m |" in md and "Spearman" in md and "profile" in md
    assert report.to_dict()["summary"]["graphs"] == 3


def test_validate_needs_banks_for_the_models(add_profile):
    _, profile = add_profile
    from tts_sim.real.validate import Candidate

    sim = SimulatedEvaluator(TASKS.get("add"), profile=profile)
    real = RealEvaluator("add", _fake(), spec=TASKS.get("add"), questions=load_questions("add")[:2])
    with pytest.raises(ConfigError, match="no answer banks for llama-3.2-1b"):
        validate_graphs([Candidate(single(L1), "x")], real, sim, model_map={L1: L1})


def test_validate_cli_end_to_end(add_profile, tmp_path, monkeypatch, capsys):
    from tts_sim.backends import BACKENDS
    from tts_sim.cli import main

    path, profile = add_profile
    monkeypatch.setitem(BACKENDS._items, "fake-test", SimpleNamespace(build=_fake))
    result = _result(tmp_path, [_trial(0, single(L1), 0.3), _trial(1, parallel(2, L1, output_model=L3), 0.5),
                                _trial(2, parallel(3, G1, output_model=L3), 0.4)])
    md = tmp_path / "report.md"
    code = main(["validate", result, "--top-k", "2", "--backend", "fake-test", "--profile", str(path),
                 "--questions", "5", "--substitute", BIG, "--report", str(md), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["task"] == "add" and data["model_map"] == {G1: BIG, L1: BIG, L3: BIG}  # the top-2 graphs' models
    assert [g["search_score"] for g in data["graphs"]] == [0.5, 0.4]
    ids = set(data["config"]["heldout_question_ids"])
    assert len(ids) == 5 and not ids & set(profile.task("add").question_ids)
    assert data["config"]["temperature"] == 0.7 and data["config"]["max_new_tokens"] == 32  # from the profile
    for g in data["graphs"]:
        assert g["measured"]["n_questions"] == 5 and set(g["measured"]["meta"]["model_map"].values()) == {BIG}
    text = md.read_text()
    assert f"| {L1} | {BIG} |" in text and "held-out questions: 5" in text
    assert main(["validate", result, "--backend", "fake-test", "--profile", str(path), "--questions", "5000",
                 "--substitute", BIG]) == 2
    assert "held-out questions left" in capsys.readouterr().err


def test_real_runs_sample_as_their_measured_profile_did():
    from tts_sim.core.profile import Profile
    from tts_sim.real.validate import sampling_settings

    measured = Profile(metadata={"measured": True, "config": {"max_new_tokens": 16, "temperature": 0.7, "top_p": 0.9}})
    assert sampling_settings(measured, None, None) == (16, 0.7, 0.9)
    assert sampling_settings(measured, 32, 0.5, 1.0) == (32, 0.5, 1.0)
    assert sampling_settings(Profile(metadata={}), None, None) == (256, 0.7, 1.0)


def test_latency_simulator_batches_as_the_engine_does(add_profile):
    from tts_sim.real.validate import latency_simulator

    _, profile = add_profile
    spec = TASKS.get("add")
    padded, _ = latency_simulator(profile, spec, cluster="cpu", tokens="mean", n_questions=5, max_batch=8)
    same, _ = latency_simulator(profile, spec, cluster="cpu", tokens="mean", n_questions=5, max_batch=8,
                                same_prompt_only=True)
    assert padded.simulator.scheduler.describe() == "static batching"
    assert same.simulator.scheduler.describe() == "static batching, same prompts only"
    # two fusion nodes on different inputs: one padded batch, or one after the other
    g = Graph.build([("a", "assistant", SMALL), ("b", "assistant", SMALL), ("f", "fuser", SMALL),
                     ("h", "assistant", SMALL), ("out", "assistant", SMALL)],
                    [("a", "f"), ("b", "f"), ("a", "h"), ("f", "out"), ("h", "out")], "out")
    assert same.latency(g, 0).p50_s > padded.latency(g, 0).p50_s
    # a GPU cluster batches continuously: the option does not apply
    gpu, _ = latency_simulator(profile, spec, cluster="1xH100", tokens="mean", n_questions=5, max_batch=8,
                               same_prompt_only=True)
    assert gpu.simulator.scheduler.name == "continuous"
