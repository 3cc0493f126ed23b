"""InsightAgent: mix picks (Insight 1), the edge-table update rule, proposals (Insights 2-3)."""

from __future__ import annotations

import pytest

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import graph_key
from tts_sim.core.presets import chain, parallel
from tts_sim.search import SearchSpace
from tts_sim.search.agent_api import MixRequest, ProposeRequest, Round
from tts_sim.search.agents import InsightAgent, prior_for, shape_targets
from tts_sim.search.mixes import available_units, enumerate_mixes, unit_costs
from tts_sim.search.prior import make_prior


def _mix_request(task: str, budget: float = 18.0, prior: str = "published") -> MixRequest:
    space = SearchSpace(task, budget)
    return MixRequest(space, tuple(enumerate_mixes(space)), unit_costs(space), available_units(space), 3,
                      "accuracy", 0, make_prior(prior, space.task))


def test_insight_1_multiple_choice_prefers_the_strongest_single_model():
    req = _mix_request("mmlu")
    reply = InsightAgent().pick_mixes(req)
    acc = req.space.task.published_accuracy
    best_available = max(acc[m] for mix in req.mixes for m in mix.models)
    first = req.mixes[reply.picks[0]]
    assert max(acc[m] for m in first.models) == best_available
    assert "Insight 1" in reply.text and reply.tokens_estimated and reply.prompt_tokens > 100


def test_insight_1_math_prefers_ensembles_of_capable_models():
    req = _mix_request("math")
    reply = InsightAgent().pick_mixes(req)
    first = req.mixes[reply.picks[0]]
    acc = req.space.task.published_accuracy
    assert len(first.models) >= 3
    assert sum(acc[m] >= 0.4 for m in first.models) >= 3
    assert len(set(reply.picks)) == 3


def _graph() -> Graph:
    nodes = [Node("n0", Role.ASSISTANT, "llama-3.2-1b"), Node("n1", Role.ASSISTANT, "gemma-3-1b"),
             Node("n2", Role.ASSISTANT, "llama-3.2-1b"), Node("out", Role.ASSISTANT, "llama-3.2-3b")]
    return Graph.build(nodes, [("n0", "n1"), ("n1", "out"), ("n2", "out")], "out")


def _propose_request(last_score: float, prev_best: float | None, history: frozenset = frozenset(),
                     latency: bool = False) -> ProposeRequest:
    space = SearchSpace("math", 18.0)
    g = _graph()
    table = {"n0->n1": 0.3, "n0->n2": 0.3, "n1->n2": 0.3, "n0->out": 0.3, "n1->out": 0.3, "n2->out": 0.3}
    last = Round(g, last_score, last_score, space.units(g))
    best = last if prev_best is None or last_score >= prev_best else Round(g, prev_best, prev_best, 1.0)
    return ProposeRequest(space, 1, {"n0": "llama-3.2-1b", "n1": "gemma-3-1b", "n2": "llama-3.2-1b",
                                     "n3": "gemma-3-1b"}, last, best, prev_best, table, (), history,
                          "accuracy", latency, 11)


def test_edge_table_rule_raises_used_edges_that_helped_and_lowers_those_that_hurt():
    agent = InsightAgent(step_size=0.3)
    up, _ = agent.update_table(_propose_request(0.6, 0.5))
    assert up["n0->n1"] == pytest.approx(0.3 + 0.3 * 0.7) and up["n1->out"] == pytest.approx(0.51)
    assert up["n0->n2"] == 0.3 and up["n0->out"] == 0.3  # unused: unchanged
    down, _ = agent.update_table(_propose_request(0.4, 0.5))
    assert down["n0->n1"] == pytest.approx(0.21) and down["n1->n2"] == 0.3
    tie, notes = agent.update_table(_propose_request(0.5, 0.5))
    assert tie == _propose_request(0.5, 0.5).edge_table and "unchanged" in notes[0]
    first, notes = agent.update_table(_propose_request(0.5, None))
    assert first == _propose_request(0.5, None).edge_table and "prior" in notes[0]


def test_proposal_is_an_unseen_valid_graph_with_reasoning():
    req = _propose_request(0.6, 0.5, history=frozenset({graph_key(_graph())}))
    reply = InsightAgent().propose(req)
    graph = Graph.from_dict(reply.graph)
    req.space.check(graph)
    assert req.space.feasible(graph)
    assert graph_key(graph) not in req.history
    assert "Insight 2" in reply.text and "Edit:" in reply.text and "Table update" in reply.text
    assert reply.edge_table["n0->n1"] > 0.3
    assert reply.extras["edit"] in {"add-edge", "remove-edge", "add-node", "drop-node", "flip-role", "swap-models",
                                    "change-model", "refine", "add-layer", "remove-layer"}
    assert InsightAgent().propose(req).graph == reply.graph  # deterministic given the request


def test_proposals_avoid_every_graph_already_evaluated():
    agent = InsightAgent()
    history: set[str] = {graph_key(_graph())}
    for _ in range(15):
        req = _propose_request(0.6, 0.5, history=frozenset(history))
        key = graph_key(Graph.from_dict(agent.propose(req).graph))
        assert key not in history
        history.add(key)


def test_insight_3_targets_interact():
    prior = prior_for(make_prior("published", SearchSpace("math", 18.0).task))
    assert shape_targets(prior, prior.width, prior.depth) == (prior.width, prior.depth)
    wide_w, wide_d = shape_targets(prior, prior.width + 4, prior.depth)
    deep_w, deep_d = shape_targets(prior, prior.width, prior.depth + 2)
    assert wide_d < prior.depth and deep_w < prior.width


def test_latency_awareness_penalises_depth():
    agent, space = InsightAgent(), SearchSpace("math", 18.0)
    prior = prior_for(make_prior("published", space.task))
    deep, wide = chain(3, "gemma-3-1b"), parallel(3, "gemma-3-1b")
    gap_plain = agent.heuristic(space, prior, wide, {}, False) - agent.heuristic(space, prior, deep, {}, False)
    gap_latency = agent.heuristic(space, prior, wide, {}, True) - agent.heuristic(space, prior, deep, {}, True)
    assert gap_latency > gap_plain
