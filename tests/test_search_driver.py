"""The shared driver: every searcher through run_search, budgets, determinism, checkpoints, results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError, GraphError
from tts_sim.search import SEARCHERS, SearchResult, SearchSpace, make_searcher, pareto_front, run_search
from tts_sim.search.checkpoint import Checkpoint
from tts_sim.search.context import SearchContext
from tts_sim.search.objectives import Accuracy

ALL = ["agent-reinforce", "hybrid", "random", "informed-random", "bo-gp", "bo-forest", "tpe", "textgrad", "gptswarm"]
# keep the model-based baselines cheap in tests
FAST = {"bo-gp": {"n_points": 200}, "bo-forest": {"n_points": 200}}


def _space(max_nodes: int = 4) -> SearchSpace:
    return SearchSpace("math", 18.0, max_nodes=max_nodes)


def _summary(result: SearchResult) -> list:
    return [(t.graph_key, t.score, t.n_questions) for t in result.trials]


def test_registry_lists_every_searcher():
    assert set(ALL) <= set(SEARCHERS.names())


@pytest.mark.parametrize("name", ALL)
def test_every_searcher_returns_a_feasible_graph_within_max_evals(name):
    space, ev = _space(), FakeEvaluator("math", 120)
    result = run_search(name, space, ev, 12, seed=3, options=FAST.get(name))
    assert 1 <= result.cost.evaluations == len(result.trials) <= 12
    assert [t.index for t in result.trials] == list(range(len(result.trials)))
    result.best.validate()
    space.check(result.best)
    assert space.feasible(result.best)
    for t in result.trials:
        assert space.feasible(t.graph) and t.units <= space.budget + 1e-9
    # the reported result is the held-out evaluation of the returned graph
    assert result.heldout is not None and result.heldout.graph == result.best
    search_qs = set(range(120)) - set(result.heldout.questions)
    assert len(result.heldout.questions) == 60 and len(search_qs) == 60
    if result.best_index is not None:
        best = result.trials[result.best_index]
        assert best.graph_key == graph_key(result.best)
        assert best.score == max(t.score for t in result.trials if t.full)
    assert result.expected_accuracy == pytest.approx(ev.expected(result.best, result.heldout.questions).accuracy)


@pytest.mark.parametrize("name", ["agent-reinforce", "random", "tpe", "textgrad", "gptswarm", "hybrid"])
def test_searches_are_deterministic_given_config_and_seed(name):
    space = _space()
    a = run_search(name, space, FakeEvaluator("math", 120), 10, seed=7)
    b = run_search(name, space, FakeEvaluator("math", 120), 10, seed=7)
    assert _summary(a) == _summary(b) and graph_key(a.best) == graph_key(b.best)
    assert a.heldout.accuracy == b.heldout.accuracy


def test_different_seeds_explore_differently():
    space = _space()
    runs = [_summary(run_search("random", space, FakeEvaluator("math", 120), 6, seed=s)) for s in range(3)]
    assert runs[0] != runs[1] != runs[2]


def test_bo_proposes_only_feasible_graphs_it_has_not_evaluated():
    space = SearchSpace("math", 9.0, max_nodes=4)  # tight: most random encodings are over budget
    result = run_search("bo-forest", space, FakeEvaluator("math", 80), 8, seed=1,
                        options={"n_points": 100, "n_trees": 8})
    assert result.cost.penalised == 0 and result.cost.evaluations == 8
    # a repeat only where the random initial design (5 graphs) drew one graph twice
    assert result.cost.cache_hits == 5 - sum(t.phase == "initial design" for t in result.trials)
    assert len({t.graph_key for t in result.trials}) == 8  # nothing evaluated twice


class _Replaying:
    """A searcher that keeps proposing the same graph: must end via the cache guard, not hang."""

    name = "stuck"

    def config(self) -> dict:
        return {}

    def run(self, ctx: SearchContext):
        while not ctx.done:
            ctx.evaluate(ctx.space.lone_output())
        return None


def test_a_searcher_stuck_on_one_graph_ends_and_pays_one_evaluation():
    result = run_search(_Replaying(), _space(), FakeEvaluator("math", 40), 5, seed=0)
    assert result.cost.evaluations == 1 and result.cost.cache_hits > 50


@pytest.mark.parametrize("name", ["agent-reinforce", "textgrad", "gptswarm", "tpe", "bo-gp", "bo-forest"])
def test_interrupted_search_resumes_from_its_checkpoint_without_repeating_evaluations(tmp_path, name):
    space, path = _space(), tmp_path / "search.ckpt.json"
    clean = run_search(name, space, FakeEvaluator("math", 120), 14, seed=5)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_search(name, space, FakeEvaluator("math", 120, fail_after=6), 14, seed=5, checkpoint=path)
    assert len(Checkpoint(path).load().trials) == 6
    resumed_ev = FakeEvaluator("math", 120)
    resumed = run_search(name, space, resumed_ev, 14, seed=5, checkpoint=path)
    assert resumed_ev.calls == clean.cost.evaluations - 6 + 1  # the rest of the search + the held-out run
    assert _summary(resumed) == _summary(clean)
    assert graph_key(resumed.best) == graph_key(clean.best)
    assert resumed.heldout.accuracy == clean.heldout.accuracy
    assert resumed.cost.agent_calls == clean.cost.agent_calls


def test_checkpoint_of_another_search_is_refused(tmp_path):
    path = tmp_path / "c.json"
    run_search("random", _space(), FakeEvaluator("math", 60), 3, seed=1, checkpoint=path)
    with pytest.raises(ConfigError, match="another search"):
        run_search("random", _space(), FakeEvaluator("math", 60), 3, seed=2, checkpoint=path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="corrupted"):
        run_search("random", _space(), FakeEvaluator("math", 60), 3, seed=1, checkpoint=path)


def test_result_round_trips_through_json(tmp_path):
    result = run_search("agent-reinforce", _space(), FakeEvaluator("math", 100, latency=True), 8, seed=2,
                        objective="p95<=6")
    path = tmp_path / "result.json"
    result.save(path)
    loaded = SearchResult.load(path)
    assert _summary(loaded) == _summary(result)
    assert loaded.best == result.best and loaded.heldout.accuracy == result.heldout.accuracy
    assert loaded.heldout.latency == result.heldout.latency
    assert loaded.cost == result.cost and loaded.config == result.config
    assert loaded.cost.tokens_estimated and loaded.cost.agent_prompt_tokens > 0
    top = loaded.top_k(3)
    assert len({t.graph_key for t in top}) == len(top) and top[0].score == max(t.score for t in loaded.trials if t.full)
    assert all(t.latency is not None for t in loaded.trials)
    assert pareto_front(loaded)
    json.dumps(loaded.to_dict())  # plain JSON: no numpy scalars


def test_latency_objective_without_latency_is_a_clear_error():
    with pytest.raises(ConfigError, match="needs latency"):
        run_search("random", _space(), FakeEvaluator("math", 60), 3, seed=0, objective="p95<=5")


@pytest.mark.parametrize("call, message", [
    (lambda s, e: run_search("no-such-searcher", s, e, 3), "unknown searcher"),
    (lambda s, e: run_search("random", s, e, 0), "max_evals"),
    (lambda s, e: run_search("random", s, e, 3, seed=-1), "seed"),
    (lambda s, e: run_search("random", s, e, 3, options={"colour": "red"}), "has no option 'colour'"),
    (lambda s, e: run_search("random", s, FakeEvaluator("mmlu", 60), 3), "space is for"),
    (lambda s, e: run_search("random", s, e, 3, search_questions=[0, 1], heldout_questions=[1, 2]), "disjoint"),
    (lambda s, e: run_search("random", s, e, 3, search_questions=[0, 999]), "outside"),
])
def test_bad_input_is_a_one_line_config_error(call, message):
    with pytest.raises(ConfigError) as info:
        call(_space(), FakeEvaluator("math", 60))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_progress_is_reported_once_per_paid_evaluation():
    seen = []
    result = run_search("agent-reinforce", _space(), FakeEvaluator("math", 60), 6, seed=0, progress=seen.append)
    assert [t.index for t in seen] == list(range(result.cost.evaluations))


def test_given_question_splits_are_used():
    ev = FakeEvaluator("math", 60)
    result = run_search("random", _space(), ev, 3, seed=0, search_questions=range(10), heldout_questions=range(40, 60))
    assert all(t.n_questions == 10 for t in result.trials)
    assert result.heldout.questions == tuple(range(40, 60))


def test_graphs_outside_the_space_are_refused_by_the_driver():
    class TooBig:
        name = "too-big"

        def config(self) -> dict:
            return {}

        def run(self, ctx):
            from tts_sim.core.presets import parallel

            ctx.evaluate(parallel(3, "llama-3.1-70b"))

    with pytest.raises(GraphError, match="not in the pool"):
        run_search(TooBig(), SearchSpace("math", 400.0, max_nodes=4), FakeEvaluator("math", 40), 2)


def test_agent_reinforce_beats_random_search_on_average_given_the_same_published_prior():
    """On the fake task (whose accuracies follow the published ones), both searchers given the
    published prior, over seeds: the expected accuracy of the returned graph (noise-free, held-out
    questions), averaged."""
    space, ev = SearchSpace("math", 18.0), FakeEvaluator("math", 400)
    seeds = range(5)
    ours = [run_search("agent-reinforce", space, ev, 30, s, prior="published").expected_accuracy for s in seeds]
    rand = [run_search("random", space, ev, 30, s, prior="published").expected_accuracy for s in seeds]
    assert np.mean(ours) > np.mean(rand)


def test_make_searcher_records_its_config():
    s = make_searcher("agent-reinforce", n_picks=2, agent="chat", agent_options={"api_key": "secret", "retries": 1})
    cfg = s.config()
    assert cfg["n_picks"] == 2 and cfg["agent"] == "chat" and "api_key" not in cfg["agent_options"]
    assert cfg["agent_options"] == {"retries": 1}
    assert Accuracy().to_dict() == {"name": "accuracy"}
