"""Hypothesis strategies shared by tests: random valid collaboration graphs."""

from __future__ import annotations

from hypothesis import strategies as st

from tts_sim.core.edits import fix_roles
from tts_sim.core.graph import Graph, Node, Role

POOL = ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "gemma-3-1b", "gemma-2b", "gemma-7b")


@st.composite
def graphs(draw, max_nodes: int = 7, pool: tuple[str, ...] = POOL) -> Graph:
    """A valid graph: n worker nodes with random roles/models and forward edges, then an output
    node fed by every sink (so every node is executed) or by a random subset."""
    n = draw(st.integers(0, max_nodes))
    nodes = [Node(f"n{i}", draw(st.sampled_from(list(Role))), draw(st.sampled_from(pool))) for i in range(n)]
    edges = {(f"n{i}", f"n{j}") for i in range(n) for j in range(i + 1, n) if draw(st.booleans())}
    out = Node("out", Role.ASSISTANT, draw(st.sampled_from(pool)))
    sinks = [nd.id for nd in nodes if not any(u == nd.id for u, _ in edges)]
    edges |= {(s, "out") for s in sinks if draw(st.booleans()) or s == sinks[-1]}
    all_nodes = fix_roles([*nodes, out], edges)
    return Graph.build(all_nodes, edges, "out")
