"""Graph identity: a canonical key that is the same for isomorphic graphs, whatever their node ids.

Two graphs compute the same thing when their *executed* nodes (those with a path to the output) can be
matched one to one with equal role and model and equal edges. ``graph_key`` encodes the executed part
under a canonical node order, so renaming nodes, reordering declarations or adding dead nodes never
changes it, and two graphs with equal keys are isomorphic (the key is a full description of the graph).

The canonical order comes from colour refinement (1-dimensional Weisfeiler-Leman on the DAG, starting
from (is output, level, role, model)) and, where refinement leaves ties, individualisation of each
candidate in turn, keeping the smallest encoding. Interchangeable nodes ("twins": same role, model,
predecessors and successors, as in a parallel fan-out) are tried once, so the search stays tiny for the
graphs searchers produce. Past ``MAX_LEAVES`` explored orders the first order found is used: the key
then still never conflates two different graphs, but may tell two isomorphic ones apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from tts_sim.core.graph import Graph

MAX_LEAVES = 4096

Colours = dict[str, int]


def graph_key(graph: Graph) -> str:
    """The canonical key of ``graph``: equal for isomorphic graphs, different otherwise (see module doc)."""
    cached = _CACHE.get(graph)
    if cached is None:
        cached = _encode(graph, canonical_order(graph))
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[graph] = cached
    return cached


def canonical_order(graph: Graph) -> tuple[str, ...]:
    """The executed node ids in canonical order (output last)."""
    nodes = graph.executed
    preds = {n: tuple(p for p in graph.predecessors(n) if p in graph.levels) for n in nodes}
    succs = {n: tuple(s for s in graph.successors(n) if s in graph.levels) for n in nodes}
    initial = {n: (n == graph.output, graph.levels[n], graph.node(n).role.value, graph.node(n).model) for n in nodes}
    ranks = {sig: i for i, sig in enumerate(sorted(set(initial.values())))}
    colours = _refine({n: ranks[initial[n]] for n in nodes}, preds, succs)
    best: tuple[str, tuple[str, ...]] | None = None
    leaves = 0

    def search(col: Colours) -> None:
        nonlocal best, leaves
        if leaves >= MAX_LEAVES and best is not None:
            return
        cell = _first_tied_cell(col)
        if cell is None:
            leaves += 1
            order = tuple(sorted(col, key=col.__getitem__))
            encoded = _encode(graph, order)
            if best is None or encoded < best[0]:
                best = (encoded, order)
            return
        seen_twins: set[tuple[frozenset[str], frozenset[str]]] = set()
        for v in cell:
            twin_class = (frozenset(preds[v]), frozenset(succs[v]))
            if twin_class in seen_twins:
                continue
            seen_twins.add(twin_class)
            search(_refine(_individualise(col, v), preds, succs))

    search(colours)
    assert best is not None
    return best[1]


def _refine(col: Colours, preds: Mapping[str, tuple[str, ...]], succs: Mapping[str, tuple[str, ...]]) -> Colours:
    """Split colour classes by the multisets of neighbours' colours until nothing splits."""
    while True:
        sig = {n: (c, tuple(sorted(col[p] for p in preds[n])), tuple(sorted(col[s] for s in succs[n])))
               for n, c in col.items()}
        ranks = {s: i for i, s in enumerate(sorted(set(sig.values())))}
        new = {n: ranks[sig[n]] for n in col}
        if len(ranks) == len(set(col.values())):
            return new
        col = new


def _first_tied_cell(col: Colours) -> list[str] | None:
    cells: dict[int, list[str]] = {}
    for n, c in col.items():
        cells.setdefault(c, []).append(n)
    tied = [sorted(members) for c, members in sorted(cells.items()) if len(members) > 1]
    return tied[0] if tied else None


def _individualise(col: Colours, v: str) -> Colours:
    """``v`` gets a colour of its own, just before the rest of its class."""
    return {n: 2 * c + (0 if n == v or c != col[v] else 1) for n, c in col.items()}


def _encode(graph: Graph, order: tuple[str, ...]) -> str:
    pos = {nid: i for i, nid in enumerate(order)}
    nodes = [(graph.node(n).role.value, graph.node(n).model) for n in order]
    edges = sorted((pos[u], pos[v]) for u, v in graph.edges if u in pos and v in pos)
    return json.dumps([nodes, edges], separators=(",", ":"))


_CACHE_SIZE = 65536
_CACHE: dict[Graph, str] = {}
