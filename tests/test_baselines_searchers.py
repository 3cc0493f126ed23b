"""Baseline-specific behaviour (the shared-driver properties are in test_search_driver.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.baselines.textgrad import UNDO, OfflineTextGrad
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.core.presets import chain, parallel
from tts_sim.errors import ConfigError
from tts_sim.search import GraphEncoding, SearchSpace, make_searcher, run_search
from tts_sim.search.agent_api import ProposeRequest, Round
from tts_sim.search.policy import EncodingPolicy, reinforce_gradient

SPACE = SearchSpace("math", 18.0, max_nodes=4)


def test_policy_samples_are_in_range_and_gradients_are_score_functions():
    enc = GraphEncoding(SPACE)
    policy = EncodingPolicy(enc, edge_p=0.5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = policy.sample(rng)
        assert all(0 <= v < s for v, s in zip(x, enc.sizes, strict=True))
        g = policy.grad_log_prob(x)
        assert np.allclose(g.sum(axis=1), 0.0)  # one-hot minus softmax
    probs = policy.probs()
    assert np.allclose(probs.sum(axis=1), 1.0) and np.allclose(probs[: enc.k], 1 / enc.sizes[0])


def test_reinforce_with_adam_moves_probability_towards_rewarded_choices():
    enc = GraphEncoding(SPACE)
    policy = EncodingPolicy(enc, lr=0.1)
    rng = np.random.default_rng(1)
    for _ in range(40):
        xs = [policy.sample(rng) for _ in range(4)]
        samples = [(x, float(x[0] == 2)) for x in xs]  # reward: slot 0 runs pool model #2
        policy.step(reinforce_gradient(policy, samples, baseline=np.mean([r for _, r in samples])))
    assert policy.probs()[0, 2] > 0.6
    assert policy.mode()[0] == 2


def test_policy_mode_keeps_edges_above_the_threshold():
    enc = GraphEncoding(SPACE)
    policy = EncodingPolicy(enc, edge_p=0.56)
    x = policy.mode(keep_p=0.55)
    assert all(v == 1 for v, d in zip(x, enc.dimensions, strict=True) if d.name.startswith(("edge_", "out_")))
    assert all(v == 0 for v, d in zip(policy.mode(keep_p=0.6), enc.dimensions, strict=True)
               if d.name.startswith(("edge_", "out_")))


def test_gptswarm_can_return_its_final_graph_like_the_original():
    kept = run_search("gptswarm", SPACE, FakeEvaluator("math", 80), 10, seed=0)
    final = run_search("gptswarm", SPACE, FakeEvaluator("math", 80), 10, seed=0, options={"return_final": True})
    assert [t.graph_key for t in kept.trials] == [t.graph_key for t in final.trials]
    assert graph_key(kept.best) == max(kept.trials, key=lambda t: (t.score, -t.flops, -t.index)).graph_key
    # the final graph (most likely models/roles, edges with p > 0.55) was scored during the search
    assert graph_key(final.best) in {t.graph_key for t in final.trials}
    assert any(t.phase == "final graph" for t in final.trials) or final.cost.cache_hits > 0


def test_textgrad_offline_critic_and_editor():
    engine = OfflineTextGrad()
    worse, better = parallel(2, "gemma-3-1b"), chain(2, "gemma-3-1b")

    def request(last: Graph, score: float, prev: Round | None) -> ProposeRequest:
        r = Round(last, score, score, SPACE.units(last))
        return ProposeRequest(SPACE, 1, {"n0": "gemma-3-1b", "n1": "gemma-3-1b"}, r, r, None, {},
                              (prev,) if prev else (), frozenset({graph_key(worse), graph_key(better)}),
                              "accuracy", False, 3)

    prev = Round(better, 0.6, 0.6, SPACE.units(better))
    req = request(worse, 0.4, prev)
    feedback = engine.critique(req)
    assert UNDO in feedback.text and "0.6000" in feedback.text
    edited = engine.edit(req, feedback.text)
    graph = Graph.from_dict(edited.graph)
    assert graph_key(graph) not in req.history
    assert "Insight" not in feedback.text + edited.text  # no domain knowledge
    assert "keep it" in engine.critique(request(better, 0.7, Round(worse, 0.4, 0.4, 1.0))).text


def test_textgrad_rejects_an_unknown_engine():
    with pytest.raises(ConfigError, match="offline"):
        run_search("textgrad", SPACE, FakeEvaluator("math", 40), 3, options={"agent": "oracle"})


def test_random_search_modes():
    with pytest.raises(ConfigError, match="mode"):
        make_searcher("random", mode="grid")
    result = run_search("random", SPACE, FakeEvaluator("math", 60), 6, seed=0, options={"mode": "uniform"})
    assert result.cost.evaluations >= 1


def test_tpe_and_bo_use_the_same_initial_design():
    ev = FakeEvaluator("math", 60)
    tpe = run_search("tpe", SPACE, ev, 4, seed=9, options={"n_initial": 3})
    bo = run_search("bo-forest", SPACE, ev, 4, seed=9, options={"n_initial": 3, "n_points": 100})
    assert [t.graph_key for t in tpe.trials[:3]] == [t.graph_key for t in bo.trials[:3]]


def test_tpe_stops_in_a_spent_space_with_the_same_trials():
    from tts_sim.search.enumerate import enumerate_graphs

    space = SearchSpace("math", 6.0, max_nodes=3, pool=("llama-3.2-1b", "llama-3.1-8b"))
    assert len(enumerate_graphs(space)) == 2  # fewer graphs than evaluations
    stopped = run_search("tpe", space, FakeEvaluator("math", 40), 30, seed=0)
    spinning = run_search("tpe", space, FakeEvaluator("math", 40), 30, seed=0, options={"max_stale": 10_000})
    assert [t.graph_key for t in stopped.trials] == [t.graph_key for t in spinning.trials]
    assert len(stopped.trials) == 2
    asked = stopped.cost.cache_hits + stopped.cost.penalised
    assert asked <= 200 + 10 and spinning.cost.cache_hits + spinning.cost.penalised > 600  # the driver's cap: 700
    with pytest.raises(ConfigError, match="max_stale"):
        make_searcher("tpe", max_stale=0)


def test_fresh_graphs_offer_the_lone_output_once_the_random_sampler_is_spent():
    """The random sampler spends the budget, so it never draws the output node alone: TPE's supply of new
    graphs ends with it (without it a spent measured space lost that graph on one seed in 60)."""
    from tts_sim.baselines.tpe_optuna import FreshGraphs
    from tts_sim.search.context import SearchContext
    from tts_sim.search.objectives import Accuracy

    space = SearchSpace("math", 6.0, max_nodes=3, pool=("llama-3.2-1b", "llama-3.1-8b"))
    ctx = SearchContext(space, FakeEvaluator("math", 40), 10, 0, tuple(range(30)), Accuracy(), config={})
    fresh = FreshGraphs(ctx, "test")
    drawn = fresh.next()
    assert drawn is not None and graph_key(drawn) != graph_key(space.lone_output())
    ctx.evaluate(drawn)
    assert graph_key(fresh.next()) == graph_key(space.lone_output())  # nothing else left to draw
    ctx.evaluate(space.lone_output())
    assert fresh.next() is None
