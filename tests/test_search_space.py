"""Search space, probabilistic graph, encoding, enumeration, regret, mixes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.search_fakes import FakeEvaluator
from tts_sim.core.flops import cheapest_graph_units
from tts_sim.core.graph import Graph, Role
from tts_sim.core.identity import graph_key
from tts_sim.errors import BudgetError, ConfigError, GraphError
from tts_sim.search import GraphEncoding, ProbabilisticGraph, SearchSpace, enumerate_graphs, optimum, regret
from tts_sim.search.mixes import available_units, enumerate_mixes, unit_costs
from tts_sim.tasks import get_task

SMALL_POOL = ("llama-3.2-1b", "gemma-3-1b")


def test_budget_below_cheapest_graph_is_a_one_line_budget_error():
    cheapest = cheapest_graph_units(get_task("math"))
    with pytest.raises(BudgetError) as info:
        SearchSpace("math", cheapest - 0.01)
    assert "below the cheapest valid graph" in str(info.value) and "\n" not in str(info.value)
    SearchSpace("math", cheapest)  # exactly the lone output node: allowed


@pytest.mark.parametrize("kwargs, error", [
    ({"pool": ("no-such-model",)}, ConfigError),
    ({"pool": ()}, ConfigError),
    ({"max_nodes": 0}, ConfigError),
    ({"budget": float("nan")}, BudgetError),
    ({"budget": "lots"}, ConfigError),
])
def test_bad_space_options_are_refused(kwargs, error):
    args = {"task": "math", "budget": 18.0} | kwargs
    with pytest.raises(error):
        SearchSpace(**args)


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown task"):
        SearchSpace("no-such-task", 18.0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), edge_p=st.floats(0.0, 1.0), fuser_p=st.floats(0.0, 1.0))
def test_probabilistic_graph_samples_are_valid_feasible_and_fully_executed(seed, edge_p, fuser_p):
    space = SearchSpace("math", 18.0, max_nodes=5)
    pg = ProbabilisticGraph.uniform(space, edge_p, fuser_p)
    raw = pg.sample(space, np.random.default_rng(seed), repair=False)
    assert set(raw.executed) == {n.id for n in raw.nodes}  # constrained sampling: no dead node
    graph = pg.sample(space, np.random.default_rng(seed))
    graph.validate()
    assert space.feasible(graph)
    space.check(graph)


def test_mix_sampling_uses_exactly_the_mix_before_repair():
    space = SearchSpace("math", 80.0, max_nodes=6)
    mix = ["llama-3.2-3b", "gemma-3-1b", "llama-3.2-1b"]
    pg = ProbabilisticGraph.for_mix(space, mix, edge_p=0.5)
    for seed in range(20):
        graph = pg.sample(space, np.random.default_rng(seed), repair=False)
        assert sorted(n.model for n in graph.nodes if n.id != "out") == sorted(mix)


def _encoded(space: SearchSpace):
    enc = GraphEncoding(space)
    return enc, st.tuples(*[st.integers(0, d.size - 1) for d in enc.dimensions])


ENC_SPACE = SearchSpace("math", 18.0, pool=("llama-3.2-1b", "llama-3.1-8b", "gemma-2b"), max_nodes=4)
ENC, VECTORS = _encoded(ENC_SPACE)


@settings(max_examples=150, deadline=None)
@given(x=VECTORS)
def test_decode_always_gives_a_valid_graph_and_repair_makes_it_feasible(x):
    raw = ENC.decode(x, repair=False)
    raw.validate()
    ENC_SPACE.check(raw)
    assert set(raw.executed) == {n.id for n in raw.nodes}
    graph = ENC.decode(x)
    graph.validate()
    assert ENC_SPACE.feasible(graph)


@settings(max_examples=150, deadline=None)
@given(x=VECTORS)
def test_encode_then_decode_gives_the_same_graph(x):
    graph = ENC.decode(x, repair=False)
    again = ENC.decode(ENC.encode(graph), repair=False)
    assert graph_key(again) == graph_key(graph)
    assert ENC.encode(again) == ENC.encode(graph)


def test_encoding_layout_and_bad_vectors():
    assert len(ENC) == 4 + 4 + 6 + 4
    assert [d.size for d in ENC.dimensions[:4]] == [4] * 4  # empty + 3 models
    with pytest.raises(GraphError, match="entries"):
        ENC.decode([0] * 3)
    with pytest.raises(GraphError, match="model_0=9"):
        ENC.decode([9] + [0] * (len(ENC) - 1))
    x = [0] * len(ENC)
    x[0], x[ENC.k] = 1, 1  # slot 0: a fuser without inputs must become an assistant
    x[-4] = 1  # slot 0 feeds the output
    graph = ENC.decode(x)
    assert graph.node("n0").role is Role.ASSISTANT and graph.predecessors("out") == ("n0",)
    assert ENC.decode([np.int64(v) for v in x]) == graph  # numpy scalars from optimisers


# ----- enumeration ------------------------------------------------------------------------------
def _iso_key(graph: Graph) -> tuple:
    """Brute-force isomorphism-invariant key (fine for <= 4 workers)."""
    workers = [n for n in graph.executed if n != graph.output]
    best = None
    for perm in itertools.permutations(range(len(workers))):
        pos = {w: perm[i] for i, w in enumerate(workers)} | {graph.output: -1}
        labels = sorted((pos[w], graph.node(w).model, graph.node(w).role.value) for w in workers)
        edges = sorted((pos[u], pos[v]) for u, v in graph.edges if u in pos and v in pos)
        key = (tuple(labels), tuple(edges))
        best = key if best is None or key < best else best
    return best


@pytest.mark.parametrize("pool, slots, expected", [
    # 1 slot: lone output + one node per model
    (SMALL_POOL[:1], 1, 2),
    (SMALL_POOL, 1, 3),
    # 2 slots, 1 model: lone; a->out; {a,b}->out (both assistants); a->b->out (b assistant or fuser);
    # a->b, a->out, b->out (b assistant or fuser): 1 + 1 + 1 + 2 + 2
    (SMALL_POOL[:1], 2, 7),
    # 2 models: 1 + 2 + 3 model multisets for the pair + 2*2*2 for each of the two linked shapes
    (SMALL_POOL, 2, 22),
])
def test_enumeration_counts_match_hand_counts(pool, slots, expected):
    space = SearchSpace("math", 18.0, pool=pool, max_nodes=slots)
    graphs = enumerate_graphs(space)
    assert len(graphs) == expected
    assert len({_iso_key(g) for g in graphs}) == expected  # no two are isomorphic
    for g in graphs:
        g.validate()
        assert space.feasible(g)


def test_enumeration_respects_the_budget():
    space = SearchSpace("math", 6.0, pool=SMALL_POOL, max_nodes=2)
    graphs = enumerate_graphs(space)
    # 3B output alone (2.99 units) or one 1B node feeding it (5.76); every two-node graph costs >= 7.35
    assert sorted(len(g.nodes) for g in graphs) == [1, 2, 2]


def test_enumeration_covers_every_sampled_graph():
    space = SearchSpace("math", 18.0, pool=SMALL_POOL, max_nodes=3)
    known = {_iso_key(g) for g in enumerate_graphs(space)}
    pg = ProbabilisticGraph.uniform(space, edge_p=0.5, fuser_p=0.5)
    for seed in range(300):
        assert _iso_key(pg.sample(space, np.random.default_rng(seed))) in known


def test_enumeration_refuses_large_spaces():
    with pytest.raises(ConfigError, match="too large to enumerate"):
        enumerate_graphs(SearchSpace("math", 18.0, max_nodes=6))


def test_regret_is_zero_at_the_optimum_and_positive_elsewhere():
    space = SearchSpace("math", 18.0, pool=SMALL_POOL, max_nodes=3)
    ev = FakeEvaluator("math", 200)
    best_graph, best_value = optimum(space, ev)
    values = [ev.expected(g).accuracy for g in enumerate_graphs(space)]
    assert best_value == pytest.approx(max(values))
    assert regret(best_graph, space, ev, optimum_value=best_value) == pytest.approx(0.0)
    for g in enumerate_graphs(space)[:20]:
        assert regret(g, space, ev, optimum_value=best_value) >= 0


def test_regret_needs_an_expected_score():
    class NoExpected:
        pass

    with pytest.raises(ConfigError, match="expected"):
        optimum(SearchSpace("math", 18.0, pool=SMALL_POOL, max_nodes=1), NoExpected())


# ----- mixes ------------------------------------------------------------------------------------
def test_unit_costs_follow_the_released_code_on_math():
    costs = unit_costs(SearchSpace("math", 18.0))
    assert costs["llama-3.2-1b"] == 1 and costs["llama-3.2-3b"] == 3 and costs["llama-3.1-8b"] == 8


@pytest.mark.parametrize("budget, max_nodes", [(18.0, 8), (42.0, 8), (18.0, 3)])
def test_mixes_fit_the_budget_and_are_maximal(budget, max_nodes):
    space = SearchSpace("math", budget, max_nodes=max_nodes)
    costs, avail = unit_costs(space), available_units(space)
    mixes = enumerate_mixes(space)
    assert mixes and [m.leftover for m in mixes] == sorted(m.leftover for m in mixes)
    cheapest = min(costs.values())
    for mix in mixes:
        spent = sum(costs[m] for m in mix.models)
        assert spent == mix.units <= avail and mix.leftover == avail - spent
        assert len(mix.models) <= max_nodes
        assert len(mix.models) == max_nodes or mix.leftover < cheapest
    assert len({m.models for m in mixes}) == len(mixes)


def test_no_mix_when_only_the_output_node_fits():
    space = SearchSpace("math", 3.5)
    assert enumerate_mixes(space) == []


def test_each_searchers_regret_on_a_tiny_space_is_non_negative(tiny_space, fake_evaluator):
    from tts_sim.search import run_search

    ev = fake_evaluator("math", 100)
    _, best = optimum(tiny_space, ev)
    for name in ("agent-reinforce", "random", "gptswarm", "textgrad"):
        result = run_search(name, tiny_space, ev, 8, seed=0)
        assert regret(result.best, tiny_space, ev, optimum_value=best) >= -1e-12
