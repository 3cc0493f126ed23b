import json

import pytest
from hypothesis import given, settings

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.presets import chain, grid, parallel, single
from tts_sim.errors import GraphError

from .strategies import graphs

L1, L3, G1 = "llama-3.2-1b", "llama-3.2-3b", "gemma-3-1b"


def diamond() -> Graph:
    return Graph.build(
        [("a", "assistant", L1), ("b", "assistant", G1), ("f", "fuser", L3), ("out", "assistant", L3)],
        [("a", "f"), ("b", "f"), ("f", "out"), ("a", "out")], "out")


def test_structure_of_a_diamond():
    g = diamond()
    assert g.predecessors("f") == ("a", "b")
    assert g.successors("a") == ("f", "out")
    assert g.in_degree("out") == 2
    assert g.topological_order == ("a", "b", "f", "out")
    assert g.levels == {"a": 0, "b": 0, "f": 1, "out": 2}
    assert (g.width, g.depth) == (2, 2)


def test_presets_have_the_named_width_and_depth():
    for w in range(1, 4):
        for d in range(1, 4):
            g = grid(w, d, L1)
            assert (g.width, g.depth, len(g.nodes)) == (w, d, w * d + 1)
    assert (parallel(5, L1).width, chain(4, L1).depth) == (5, 4)
    s = single(L3)
    assert (s.width, s.depth, s.executed) == (0, 0, ("out",))


def test_nodes_that_do_not_reach_the_output_are_not_executed():
    g = Graph.build([("a", "assistant", L1), ("z", "assistant", L1), ("out", "assistant", L3)],
                    [("a", "out")], "out")
    assert g.executed == ("a", "out")
    assert "(not executed)" in g.to_text()


def test_json_round_trip_and_text_rendering():
    g = diamond()
    again = Graph.from_dict(json.loads(g.to_json()))
    assert again == g and hash(again) == hash(g)
    lines = g.to_text().splitlines()
    assert len(lines) == 4
    assert lines[2].split()[:3] == ["f", L3, "fuser"] and "preds: a,b" in lines[2]


BAD = [
    ({"nodes": [], "edges": [], "output": "out"}, "graph has no nodes"),
    ({"nodes": [{"id": "a", "role": "critic", "model": L1}], "edges": [], "output": "a"}, "node 'a': unknown role"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": "gpt-9"}], "edges": [], "output": "a"},
     "node 'a': unknown model 'gpt-9'"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}], "edges": [["a", "zz"]], "output": "a"},
     "edge a->zz: node 'zz' does not exist"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}, {"id": "b", "role": "assistant", "model": L1},
                {"id": "o", "role": "assistant", "model": L1}],
      "edges": [["a", "b"], ["b", "a"], ["b", "o"]], "output": "o"}, "cycle: a -> b -> a"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}], "edges": [], "output": "out"},
     "output node 'out' does not exist"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}, {"id": "out", "role": "assistant", "model": L3}],
      "edges": [], "output": "out"}, "output node 'out' is unreachable"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}, {"id": "f", "role": "fuser", "model": L1},
                {"id": "g", "role": "fuser", "model": L1}, {"id": "out", "role": "assistant", "model": L3}],
      "edges": [["a", "f"], ["f", "g"], ["g", "out"]], "output": "out"}, "edge f->g joins two fusers"),
    ({"nodes": [{"id": "f", "role": "fuser", "model": L1}, {"id": "out", "role": "assistant", "model": L3}],
      "edges": [["f", "out"]], "output": "out"}, "node 'f' (fuser) needs at least one assistant predecessor"),
    ({"nodes": [{"id": "f", "role": "fuser", "model": L1}], "edges": [], "output": "f"}, "graph has no assistant"),
    ({"nodes": [{"id": "a", "role": "assistant", "model": L1}], "edges": [["a"]], "output": "a"}, "edge #0"),
    ({"schema": "other", "nodes": [], "edges": [], "output": "a"}, "not a graph file"),
    ({"version": 7, "nodes": [], "edges": [], "output": "a"}, "unsupported graph schema version 7"),
    ({"nodes": [], "edges": []}, "lacks the key 'output'"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_malformed_graphs_give_one_line_errors_naming_the_culprit(data, message):
    with pytest.raises(GraphError) as err:
        Graph.from_dict(data)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_load_reports_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(GraphError, match="cannot read graph file"):
        Graph.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nodes:")
    with pytest.raises(GraphError, match="not valid JSON"):
        Graph.load(bad)


def test_edits_return_new_validated_graphs():
    g = diamond()
    h = g.with_node("b", model=L3)
    assert h.node("b").model == L3 and g.node("b").model == G1
    with pytest.raises(GraphError, match="needs at least one assistant"):
        g.with_node("a", role=Role.FUSER).with_node("b", role="fuser")
    k = g.with_changes(add_nodes=[Node("c", Role.ASSISTANT, L1)], add_edges=[("c", "f")])
    assert k.predecessors("f") == ("a", "b", "c")


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_random_graphs_round_trip_and_have_consistent_levels(g):
    assert Graph.from_dict(json.loads(g.to_json())) == g
    for u, v in g.edges:
        if u in g.levels and v in g.levels:
            assert g.levels[u] < g.levels[v]
    assert g.executed[-1] == g.output
    assert g.depth <= len(g.nodes) - 1
