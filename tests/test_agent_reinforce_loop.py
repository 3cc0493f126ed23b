"""Agent-REINFORCE's loop: depth moves, recovery after a stall, learning from scores (issue 8 item 5)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pytest

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace, run_search
from tts_sim.search.agent_api import MixRequest, ProposeRequest, Round
from tts_sim.search.agent_reinforce import AgentReinforce
from tts_sim.search.agents import InsightAgent
from tts_sim.search.edits import depth_edits, fit_budget
from tts_sim.search.evidence import Evidence
from tts_sim.search.mixes import (
    aggregator_variant,
    available_units,
    blend_mixes,
    enumerate_mixes,
    layered_variant,
    mix_models_by_size,
    parallel_variant,
    unit_costs,
)
from tts_sim.search.prior import NO_PRIOR
from tts_sim.search.space import OUTPUT_ID

from .search_fakes import FakeEvaluator


def _full_parallel(space: SearchSpace, model: str) -> Graph:
    """The widest parallel graph of ``model`` that fits the budget (no room for one more node)."""
    best = None
    for n in range(1, space.max_nodes + 1):
        g = space.build([model] * n, [Role.ASSISTANT] * n, [], list(range(n)), repair=False)
        if not space.feasible(g):
            break
        best = g
    assert best is not None
    return best


def test_depth_moves_make_deeper_legal_graphs_within_budget_paying_for_the_new_node():
    space = SearchSpace("math", 42.0)
    base = _full_parallel(space, "llama-3.1-8b")
    assert base.depth == 1 and len(base.executed) - 1 >= 3
    edits = list(depth_edits(space, base, ["gemma-3-1b", "llama-3.1-8b"]))
    kinds = {e.kind for e in edits}
    assert {"refine", "add-layer"} <= kinds
    for e in edits:
        space.check(e.graph)
        assert space.feasible(e.graph)
        if e.kind in ("refine", "add-layer"):
            assert e.graph.depth == 2, e.label
    # the budget was full: every grown graph keeps the node it adds; some pay for it by dropping an old leaf
    grown = [e for e in edits if e.kind in ("refine", "add-layer")]
    for e in grown:
        assert len([n for n in e.graph.executed if n not in base.levels]) == 1, e.label
    assert any(set(base.predecessors(OUTPUT_ID)) - set(e.graph.executed) for e in grown)
    layer = next(e for e in grown if e.kind == "add-layer" and "kept" not in e.label)
    (new,) = [n for n in layer.graph.executed if n not in base.levels]
    assert layer.graph.predecessors(OUTPUT_ID) == (new,)


def test_remove_layer_undoes_a_layer():
    space = SearchSpace("math", 42.0)
    nodes = [Node("n0", Role.ASSISTANT, "llama-3.2-1b"), Node("n1", Role.ASSISTANT, "llama-3.2-1b"),
             Node("n2", Role.ASSISTANT, "llama-3.2-3b"), Node(OUTPUT_ID, Role.ASSISTANT, space.output_model)]
    base = Graph.build(nodes, [("n0", "n2"), ("n1", "n2"), ("n2", OUTPUT_ID)], OUTPUT_ID)
    removed = [e for e in depth_edits(space, base, []) if e.kind == "remove-layer"]
    assert len(removed) == 1
    g = removed[0].graph
    assert g.depth == 1 and set(g.predecessors(OUTPUT_ID)) == {"n0", "n1"}


def test_fit_budget_refuses_when_only_protected_nodes_could_go():
    space = SearchSpace("math", 18.0)
    big = [Node(f"n{i}", Role.ASSISTANT, "llama-3.1-8b") for i in range(3)]
    edges = {(n.id, OUTPUT_ID) for n in big}
    assert fit_budget(space, big, edges, {n.id for n in big}) is None
    fitted = fit_budget(space, big, edges, {"n0"})
    assert fitted is not None and "n0" in fitted.executed and space.feasible(fitted)


class _Declining(FakeEvaluator):
    """Every new evaluation scores below all earlier ones: the loop never improves (a stall)."""

    def evaluate(self, graph, questions=None, *, seed=None):
        ev = super().expected(graph, questions)
        self.calls += 1
        acc = 0.9 - 0.01 * self.calls
        per_q = np.full(len(ev.questions), acc)
        return self._evaluation(graph, ev.questions, per_q)


def _recording(requests: list[ProposeRequest], **options: Any) -> AgentReinforce:
    class Recording(AgentReinforce):
        def make_agent(self):
            agent = super().make_agent()
            ask = agent.propose

            def propose(request: ProposeRequest):
                requests.append(request)
                return ask(request)

            agent.propose = propose
            return agent

    return Recording(**options)


def test_recovery_reopens_the_next_pretested_mix_after_a_stall():
    space = SearchSpace("math", 42.0)
    requests: list[ProposeRequest] = []
    result = run_search(_recording(requests, n_picks=2, pretest_variants=1, patience=2), space,
                        _Declining("math", 100), 8, seed=3)
    first, second = result.trials[0], result.trials[1]
    assert first.phase.startswith("pretest") and second.phase.startswith("pretest")
    assert first.phase != second.phase  # two mixes pre-tested
    bests = [graph_key(r.best.graph) for r in requests]
    assert bests[:2] == [first.graph_key] * 2  # the first mix (best pre-test) is searched first
    # two new evaluations without an improvement: the loop re-opens the second mix from its pre-test graph
    assert bests[2] == second.graph_key
    assert dict(requests[2].nodes) != dict(requests[0].nodes)
    mix = list(requests[2].nodes.values())  # the second mix; its pre-test graph runs some of its models
    for n in second.graph.nodes:
        if n.id != OUTPUT_ID:
            mix.remove(n.model)


def test_patience_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match="patience"):
        AgentReinforce(patience=0)


def _rounds(space: SearchSpace, graphs: Sequence[Graph], ev: FakeEvaluator) -> tuple[Round, ...]:
    return tuple(Round(g, ev.quality(g), ev.quality(g), space.units(g)) for g in graphs)


def test_evidence_learns_which_models_raise_the_score():
    space = SearchSpace("mmlu", 42.0)
    ev = FakeEvaluator("mmlu", 100)
    rng = np.random.default_rng(0)
    from tts_sim.baselines.random_search import random_graph

    mixes = enumerate_mixes(space)
    graphs = [random_graph(space, rng, mixes) for _ in range(25)]
    rounds = _rounds(space, graphs, ev)
    fit = Evidence.fit(space, [r.graph for r in rounds], [r.score for r in rounds])
    assert fit is not None and Evidence.fit(space, graphs[:2], [0.5, 0.6]) is None
    effects = fit.model_effects()
    acc = space.task.published_accuracy  # the fake task's truth, which the fit never reads
    assert effects["llama-3.1-8b"] > effects["llama-3.2-1b"]
    assert effects[max(space.pool, key=lambda m: acc[m])] > effects[min(space.pool, key=lambda m: acc[m])]
    scores = [r.score for r in rounds]
    assert np.corrcoef([fit.predict(g) for g in graphs], scores)[0, 1] > 0.7


def test_agent_without_prior_reads_the_evidence():
    """Under prior none the heuristic sees every model alike; the scored rounds change the proposals and
    the agent states what they taught it."""
    space = SearchSpace("mmlu", 42.0)
    ev = FakeEvaluator("mmlu", 100)
    base = space.repair(Graph.build([*(Node(f"n{i}", Role.ASSISTANT, "llama-3.1-8b") for i in range(2)),
                                     Node(OUTPUT_ID, Role.ASSISTANT, space.output_model)],
                                    [(f"n{i}", OUTPUT_ID) for i in range(2)], OUTPUT_ID))
    rng = np.random.default_rng(1)
    from tts_sim.baselines.random_search import random_graph

    graphs = [random_graph(space, rng, enumerate_mixes(space)) for _ in range(20)]
    rounds = _rounds(space, graphs, ev)
    best = Round(base, ev.quality(base), ev.quality(base), space.units(base))
    nodes = {"n0": "llama-3.1-8b", "n1": "llama-3.1-8b", "n2": "llama-3.2-1b"}
    told, blind = [], []  # true quality of the proposals (for the report below), with and without evidence
    for seed in range(8):
        request = ProposeRequest(space, 1, nodes, best, best, None, {}, (), frozenset(), "accuracy", False, seed,
                                 evidence=(*rounds, best))
        reply = InsightAgent().propose(request)
        assert "Evidence from 21 scored rounds" in reply.text
        told.append(ev.quality(Graph.from_dict(reply.graph)))
        blind.append(ev.quality(Graph.from_dict(InsightAgent(evidence_weight=0.0).propose(request).graph)))
    assert told != blind


def test_without_prior_mix_picks_vary_with_the_seed_and_spend_the_budget():
    """Under prior none every mix ties: the picks follow the search's seed (not always the first mixes
    enumerated), the first with the least leftover, led by different models."""
    space = SearchSpace("math", 42.0)
    mixes = enumerate_mixes(space)
    least = min(m.leftover for m in mixes)
    seen = set()
    for seed in range(6):
        request = MixRequest(space, tuple(mixes), unit_costs(space), available_units(space), 3, "accuracy", seed,
                             NO_PRIOR)
        picks = InsightAgent().pick_mixes(request).picks
        assert picks is not None and len(picks) == 3
        assert mixes[picks[0]].leftover == least
        assert len({max(mixes[p].models, key=lambda m: (space.catalog[m].m_flops, m)) for p in picks}) == 3
        seen.add(tuple(picks))
    assert len(seen) > 1


def test_blend_takes_models_of_both_mixes_in_turn_within_the_units_and_slots():
    space = SearchSpace("math", 80.0)
    costs, avail = unit_costs(space), available_units(space)
    big = ("llama-3.1-8b",) * (avail // costs["llama-3.1-8b"])
    small = ("gemma-3-1b",) * space.max_nodes
    blend = blend_mixes(space, big, small)
    assert sum(costs[m] for m in blend) <= avail and len(blend) <= space.max_nodes
    assert blend.count("llama-3.1-8b") == blend.count("gemma-3-1b") == space.max_nodes // 2
    assert blend == mix_models_by_size(space, blend)  # largest first, as the loop's slots expect
    # a model that no longer fits is skipped, a cheaper one after it still goes in
    tight = SearchSpace("math", 18.0)
    t_avail, t_costs = available_units(tight), unit_costs(tight)
    mixed = blend_mixes(tight, ("llama-3.1-8b", "llama-3.1-8b"), ("llama-3.2-1b",) * 8)
    assert sum(t_costs[m] for m in mixed) <= t_avail and "llama-3.2-1b" in mixed


def test_loop_pretests_the_blend_of_its_two_best_mixes_when_the_share_allows():
    space = SearchSpace("math", 80.0)
    ev = FakeEvaluator("math", 100)
    result = run_search(AgentReinforce(n_picks=2, pretest_variants=1), space, ev, 30, seed=1)
    phases = [t.phase for t in result.trials]
    assert phases[:3] == [phases[0], phases[1], "pretest blend"] and phases[0] != phases[1]
    first, second, blended = ({n.model for n in t.graph.nodes if n.id != OUTPUT_ID} for t in result.trials[:3])
    assert first != second  # (the pre-test graphs may drop a mix's smallest nodes to fit the budget)
    assert blended <= first | second and blended & first and blended & second
    off = run_search(AgentReinforce(n_picks=2, pretest_variants=1, blend=False), space, ev, 30, seed=1)
    assert "pretest blend" not in [t.phase for t in off.trials]
    # no room left in the pre-test share: no blend
    tight = run_search(AgentReinforce(n_picks=3, pretest_variants=3), space, ev, 30, seed=1)
    assert "pretest blend" not in [t.phase for t in tight.trials]


def test_a_pool_of_models_cheaper_than_one_unit_counts_in_its_cheapest_model():
    tiny = SearchSpace("mul-words", 1.0, pool=("smollm2-135m", "gemma-3-270m"), output_model="smollm2-135m")
    costs = unit_costs(tiny)
    assert costs == {"smollm2-135m": 1, "gemma-3-270m": 2}  # 0.14 and 0.27 budget units
    mixes = enumerate_mixes(tiny)
    assert mixes and all(len(m.models) >= 3 for m in mixes)  # a unit-sized cost would afford none
    for m in mixes:  # every mix's graph of direct calls fits the real budget
        assert sum(tiny.node_units(x, 0) for x in m.models) + tiny.node_units("smollm2-135m", 1) <= 1.0 + 1e-9
    paper = SearchSpace("math", 42.0)  # the paper's pool keeps the LLaMA-1B unit: 1B=1, 3B=3, 8B=8
    assert {m: unit_costs(paper)[m] for m in ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b")} == \
        {"llama-3.2-1b": 1, "llama-3.2-3b": 3, "llama-3.1-8b": 8}
    assert available_units(paper) == 37


def test_aggregator_variant_feeds_every_proposer_to_the_smallest_third():
    space = SearchSpace("math", 80.0)
    mix = mix_models_by_size(space, ("llama-3.1-8b", "llama-3.2-3b") + ("gemma-3-1b",) * 4)
    graph = aggregator_variant(space, mix)
    assert space.feasible(graph)
    preds = {n: set(graph.predecessors(n)) for n in graph.executed}
    aggregators = sorted(preds[OUTPUT_ID])
    assert len(aggregators) == 2 and {graph.node(a).model for a in aggregators} == {"gemma-3-1b"}
    proposers = set(graph.executed) - set(aggregators) - {OUTPUT_ID}
    assert len(proposers) == 4 and all(preds[a] == proposers for a in aggregators)
    assert all(not preds[p] for p in proposers)
    one = aggregator_variant(space, ("llama-3.1-8b",))
    assert graph_key(one) == graph_key(parallel_variant(space, ("llama-3.1-8b",)))


def test_loop_pretests_the_aggregator_variant_unless_switched_off():
    space = SearchSpace("math", 42.0)
    ev = FakeEvaluator("math", 100)
    mixes = enumerate_mixes(space)
    depth = 2  # the neutral prior's depth
    for aggregators, second in ((True, aggregator_variant), (False, partial(layered_variant, depth=depth))):
        result = run_search(AgentReinforce(n_picks=2, blend=False, aggregators=aggregators), space, ev, 30, seed=1)
        pretest = [t for t in result.trials if t.phase.startswith("pretest mix")]
        assert len(pretest) == 4  # 2 mixes x (parallel, then the second shape)
        for first, other in (pretest[:2], pretest[2:]):
            models = mix_models_by_size(space, mixes[int(first.phase.split()[-1])].models)
            assert first.graph_key == graph_key(parallel_variant(space, models))
            assert other.graph_key == graph_key(second(space, models))
