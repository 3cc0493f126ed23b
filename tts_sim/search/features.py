"""Slot-order-free numeric features of a graph, the input of the model-based searchers' surrogates.

The slot encoding (``tts_sim.search.encoding``) is redundant: one graph has many encodings (any
order of its slots, any bits of dead or pruned nodes), and two encodings one bit apart can decode to
graphs that share nothing. A surrogate fitted on it ranks unseen graphs poorly. These features depend
on the graph alone (``graph_features(g) == graph_features(h)`` when ``graph_key(g) == graph_key(h)``)
and on nothing a searcher is not told: the space's pool, slots and budget. Every entry lies in
[0, 1] (budget use of a feasible graph included), so one kernel length scale suits all of them.
``role_features`` is the agent's view of the same graph (who answers first, who reads), which its
evidence regression standardises itself.

Layout for a pool of P models and K slots:

    count[m]    workers running pool model m, / K
    to_out[m]   workers running m that feed the output node, / K
    fusers      fuser workers, / K
    edges       worker-to-worker edges, / (K (K - 1) / 2)
    depth       longest chain of workers (``Graph.depth``), / K
    in_degree   inputs of the output node, / K
    budget_use  the graph's budget units / the space's budget
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tts_sim.core.graph import Graph, Role
from tts_sim.search.space import SearchSpace


def feature_names(space: SearchSpace) -> list[str]:
    """Names of the entries of ``graph_features`` for ``space``."""
    return ([f"count[{m}]" for m in space.pool] + [f"to_out[{m}]" for m in space.pool]
            + ["fusers", "edges", "depth", "in_degree", "budget_use"])


def graph_features(space: SearchSpace, graph: Graph) -> np.ndarray:
    """The feature vector of ``graph`` (a graph of ``space``; see the module docstring)."""
    pool = {m: i for i, m in enumerate(space.pool)}
    p, k = len(pool), space.max_nodes
    out = graph.output
    feeds_out = set(graph.predecessors(out))
    x = np.zeros(2 * p + 5)
    fusers = edges = 0
    for nid in graph.executed:
        if nid == out:
            continue
        node = graph.node(nid)
        m = pool[node.model]
        x[m] += 1
        if nid in feeds_out:
            x[p + m] += 1
        fusers += node.role is Role.FUSER
        edges += sum(1 for s in graph.successors(nid) if s != out)
    x[: 2 * p] /= k
    x[2 * p] = fusers / k
    x[2 * p + 1] = edges / max(1, k * (k - 1) // 2)
    x[2 * p + 2] = graph.depth / k
    x[2 * p + 3] = len(feeds_out) / k
    x[2 * p + 4] = space.units(graph) / space.budget
    return x


def feature_matrix(space: SearchSpace, graphs: Sequence[Graph]) -> np.ndarray:
    """``graph_features`` of each graph, one row per graph."""
    if not graphs:
        return np.zeros((0, 2 * len(space.pool) + 5))
    return np.vstack([graph_features(space, g) for g in graphs])


def role_features(space: SearchSpace, graph: Graph) -> np.ndarray:
    """The agent's evidence regression's view (``tts_sim.search.evidence``), unscaled: per pool model,
    workers running it that answer first, then workers running it that read other answers; then
    depth, width, edges per worker and the share of the budget spent."""
    index = {m: i for i, m in enumerate(space.pool)}
    p = len(space.pool)
    x = np.zeros(2 * p + 4)
    workers = [n for n in graph.executed if n != graph.output]
    for n in workers:
        i = index.get(graph.node(n).model)
        if i is not None:
            x[i + (p if graph.predecessors(n) else 0)] += 1.0
    x[2 * p] = graph.depth
    x[2 * p + 1] = graph.width
    x[2 * p + 2] = len(graph.edges) / max(1, len(workers))
    x[2 * p + 3] = space.units(graph) / space.budget
    return x
