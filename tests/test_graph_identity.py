"""The canonical graph key: invariant under renaming and declaration order, and a complete invariant
(equal keys only for isomorphic graphs), checked against brute-force isomorphism on small graphs."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import graphs
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import canonical_order, graph_key
from tts_sim.core.presets import grid

L1, L3 = "llama-3.2-1b", "llama-3.2-3b"


def renamed(graph: Graph, rng: random.Random) -> Graph:
    """The same graph with shuffled, fresh node ids and a shuffled declaration order."""
    ids = [n.id for n in graph.nodes]
    fresh = [f"x{i}" for i in range(len(ids))]
    rng.shuffle(fresh)
    name = dict(zip(ids, fresh, strict=True))
    nodes = [Node(name[n.id], n.role, n.model) for n in graph.nodes]
    rng.shuffle(nodes)
    return Graph.build(nodes, {(name[u], name[v]) for u, v in graph.edges}, name[graph.output])


def isomorphic(a: Graph, b: Graph) -> bool:
    """Brute force over bijections of the executed nodes (small graphs only)."""
    xa, xb = list(a.executed), list(b.executed)
    if len(xa) != len(xb):
        return False
    label = lambda g, n: (g.node(n).role, g.node(n).model, n == g.output)  # noqa: E731
    ea = {(u, v) for u, v in a.edges if u in a.levels and v in a.levels}
    eb = {(u, v) for u, v in b.edges if u in b.levels and v in b.levels}
    for perm in itertools.permutations(xb):
        m = dict(zip(xa, perm, strict=True))
        if all(label(a, n) == label(b, m[n]) for n in xa) and {(m[u], m[v]) for u, v in ea} == eb:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(graphs(max_nodes=7), st.integers(0, 2**32 - 1))
def test_renaming_and_reordering_keep_the_key(graph: Graph, seed: int) -> None:
    other = renamed(graph, random.Random(seed))
    assert graph_key(other) == graph_key(graph)
    assert len(canonical_order(graph)) == len(graph.executed) and canonical_order(graph)[-1] == graph.output


@settings(max_examples=150, deadline=None)
@given(graphs(max_nodes=5), graphs(max_nodes=5))
def test_equal_keys_exactly_for_isomorphic_graphs(a: Graph, b: Graph) -> None:
    assert (graph_key(a) == graph_key(b)) == isomorphic(a, b)


def test_shared_input_differs_from_two_separate_inputs() -> None:
    # one 1B answer read by two refiners vs two 1B answers each read by one refiner: same tree unfolding
    shared = Graph.build([("a", "assistant", L1), ("b", "assistant", L1), ("c", "assistant", L1),
                          ("out", "assistant", L3)], {("a", "b"), ("a", "c"), ("b", "out"), ("c", "out")}, "out")
    separate = Graph.build([("a1", "assistant", L1), ("a2", "assistant", L1), ("b", "assistant", L1),
                            ("c", "assistant", L1), ("out", "assistant", L3)],
                           {("a1", "b"), ("a2", "c"), ("b", "out"), ("c", "out")}, "out")
    assert graph_key(shared) != graph_key(separate)


def test_dead_nodes_do_not_change_the_key() -> None:
    g = grid(2, 2, L1, L3)
    dead = g.with_changes(add_nodes=[Node("dead", Role.ASSISTANT, L3)])
    assert graph_key(dead) == graph_key(g)


def test_symmetric_grids_are_fast_and_invariant() -> None:
    g = grid(4, 2, L1, L3)  # 4 parallel chains of 2: refinement alone cannot order the chains
    assert graph_key(renamed(g, random.Random(1))) == graph_key(g)


def test_the_simulator_scores_a_renamed_graph_exactly_like_the_original() -> None:
    from tts_sim.sim.evaluator import SimulatedEvaluator

    g = grid(3, 2, L1, L3)
    other = renamed(g, random.Random(7))
    ev = SimulatedEvaluator("math")
    qs = range(100)
    assert ev.evaluate(other, qs, seed=3).accuracy == ev.evaluate(g, qs, seed=3).accuracy
    assert ev.expected(other, qs).accuracy == ev.expected(g, qs).accuracy
    assert len(ev.quality._plans) == 1  # one plan for both names
