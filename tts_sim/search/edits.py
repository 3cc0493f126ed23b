"""One-step edits of a graph within a search space: the moves every agent picks from.

InsightAgent ranks them by the insights; TextGrad's offline editor picks one at random. Every edit
yields a valid, budget-repaired graph of the space (edits that break a rule are skipped).
``depth_edits`` adds the depth moves (a refiner after a node, a layer in front of the output, the last
layer removed) that single edge edits reach only in several steps; a move that grows the graph pays
for its new node by dropping other nodes (``fit_budget``) instead of letting the repair drop the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from tts_sim.core.edits import fix_roles, removal_order
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import graph_key
from tts_sim.errors import GraphError
from tts_sim.search.space import OUTPUT_ID, SearchSpace


@dataclass(frozen=True)
class Edit:
    kind: str  # add-edge | remove-edge | add-node | drop-node | flip-role | swap-models | change-model
    #          | refine | add-layer | remove-layer (depth_edits)
    label: str
    graph: Graph


def build_graph(space: SearchSpace, nodes: list[Node], edges: set[tuple[str, str]]) -> Graph:
    """The space's graph of worker ``nodes`` and ``edges`` (the output node added, roles fixed, repaired)."""
    edges = set(edges)
    all_nodes = [n for n in nodes if n.id != OUTPUT_ID] + [Node(OUTPUT_ID, Role.ASSISTANT, space.output_model)]
    all_nodes = fix_roles(all_nodes, edges)
    return space.repair(Graph.build(all_nodes, edges, OUTPUT_ID, space.catalog))


def unseen(edits: Iterable[Edit], seen: set[str]) -> list[Edit]:
    """The edits whose graph key is not in ``seen`` (first of each graph; ``seen`` is updated)."""
    out = []
    for edit in edits:
        key = graph_key(edit.graph)
        if key not in seen:
            seen.add(key)
            out.append(edit)
    return out


def one_step_edits(space: SearchSpace, base: Graph, nodes: Mapping[str, str],
                   leave_mix: bool = False) -> Iterator[Edit]:
    """Every one-step edit of ``base`` that yields a valid graph (budget-repaired), using the mix's
    ``nodes`` (id -> model); with ``leave_mix`` only edits that put another pool model on a node or add
    a node of any model."""
    present = [n for n in base.executed if n != base.output]
    order = list(nodes) + [n for n in present if n not in nodes]
    rank = {n: i for i, n in enumerate(order)}
    live = sorted(present, key=lambda n: rank[n])
    edges = set(base.edges)
    by_id = {n.id: n for n in base.nodes if n.id in base.levels}

    def make(kind: str, label: str, node_list: list[Node], edge_set: set[tuple[str, str]]) -> Edit | None:
        try:
            g = build_graph(space, node_list, edge_set)
        except GraphError:
            return None
        return Edit(kind, label, g)

    base_nodes = list(by_id.values())
    candidates: list[Edit | None] = []
    if leave_mix:
        free = next((f"n{i}" for i in range(len(order) + 1) if f"n{i}" not in by_id), "extra")
        for model in space.pool:
            for u in live:
                if by_id[u].model != model:
                    changed = [Node(n.id, n.role, model) if n.id == u else n for n in base_nodes]
                    candidates.append(make("change-model", f"run {u} on {model}", changed, set(edges)))
            if len(live) < space.max_nodes:
                grown = [*base_nodes, Node(free, Role.ASSISTANT, model)]
                candidates.append(make("add-node", f"add node {free} ({model}) feeding the output", grown,
                                       edges | {(free, OUTPUT_ID)}))
        yield from (c for c in candidates if c is not None)
        return
    for a, u in enumerate(live):
        for v in live[a + 1:]:
            if (u, v) in edges:
                candidates.append(make("remove-edge", f"remove edge {u}->{v}", base_nodes, edges - {(u, v)}))
            else:
                candidates.append(make("add-edge", f"add edge {u}->{v}", base_nodes, edges | {(u, v)}))
        if (u, OUTPUT_ID) in edges and len(base.successors(u)) > 1:
            candidates.append(make("remove-edge", f"remove edge {u}->{OUTPUT_ID}", base_nodes,
                                   edges - {(u, OUTPUT_ID)}))
        elif (u, OUTPUT_ID) not in edges:
            candidates.append(make("add-edge", f"add edge {u}->{OUTPUT_ID}", base_nodes, edges | {(u, OUTPUT_ID)}))
        kept = [n for n in base_nodes if n.id != u]
        rest = {e for e in edges if u not in e}
        # keep the dropped node's inputs flowing (p -> u -> s, so p -> s cannot close a cycle)
        rest |= {(p, s) for p in base.predecessors(u) for s in base.successors(u)}
        candidates.append(make("drop-node", f"drop node {u} ({by_id[u].model})", kept, rest))
        if base.predecessors(u):
            role = Role.ASSISTANT if by_id[u].role is Role.FUSER else Role.FUSER
            flipped = [Node(n.id, role, n.model) if n.id == u else n for n in base_nodes]
            candidates.append(make("flip-role", f"make {u} a {role.value}", flipped, set(edges)))
        for v in live[a + 1:]:
            if by_id[u].model != by_id[v].model:
                swapped = [Node(n.id, n.role, by_id[v].model if n.id == u else by_id[u].model if n.id == v
                                else n.model) for n in base_nodes]
                candidates.append(make("swap-models", f"swap the models of {u} and {v}", swapped, set(edges)))
    for nid, model in nodes.items():
        if nid not in by_id and model in space.pool:
            candidates.append(make("add-node", f"add node {nid} ({model}) feeding the output",
                                   [*base_nodes, Node(nid, Role.ASSISTANT, model)], edges | {(nid, OUTPUT_ID)}))
    yield from (c for c in candidates if c is not None)


def fit_budget(space: SearchSpace, nodes: list[Node], edges: set[tuple[str, str]], keep: set[str]) -> Graph | None:
    """The space's graph of ``nodes`` and ``edges`` with nodes outside ``keep`` dropped (repair order:
    smallest model first; a dropped node's inputs flow on to its successors) until the budget fits;
    None when it cannot fit without dropping a node of ``keep`` or the graph is invalid."""
    nodes, edges = list(nodes), set(edges)
    while True:
        try:
            fixed = fix_roles([n for n in nodes if n.id != OUTPUT_ID] + [Node(OUTPUT_ID, Role.ASSISTANT,
                                                                               space.output_model)], edges)
            graph = Graph.build(fixed, edges, OUTPUT_ID, space.catalog)
        except GraphError:
            return None
        if space.feasible(graph):
            repaired = space.repair(graph)  # prunes dead nodes only: the budget already fits
            return repaired if keep <= set(repaired.executed) else None
        order = [n for n in removal_order(graph, space.catalog) if n not in keep]
        if not order:
            return None
        victim = order[0]
        preds, succs = graph.predecessors(victim), graph.successors(victim)
        edges = {e for e in edges if victim not in e} | {(p, s) for p in preds for s in succs}
        nodes = [n for n in nodes if n.id != victim]


def depth_edits(space: SearchSpace, base: Graph, models: Iterable[str]) -> Iterator[Edit]:
    """Depth moves of ``base`` with new nodes running one of ``models``: ``refine`` (a new node reads
    node u and takes over u's edge to the output, with or without keeping u's answer there),
    ``add-layer`` (a new node reads every node feeding the output and feeds it, alone or beside them),
    ``remove-layer`` (the deepest workers dropped, their inputs passed on). New nodes are paid for by
    dropping other nodes (``fit_budget``); moves that cannot fit are skipped."""
    workers = [n for n in base.executed if n != base.output]
    if not workers:
        return
    edges = set(base.edges)
    by_id = {n.id: n for n in base.nodes if n.id in base.levels}
    base_nodes = list(by_id.values())
    fresh = next(f"n{i}" for i in range(len(by_id) + 1) if f"n{i}" not in by_id)
    feeders = [u for u in workers if (u, OUTPUT_ID) in edges]
    grows = len(workers) < space.max_nodes
    for model in dict.fromkeys(m for m in models if m in space.pool):
        if not grows:
            break
        new = Node(fresh, Role.ASSISTANT, model)
        for u in feeders:
            for skip in (False, True):
                e = edges | {(u, fresh), (fresh, OUTPUT_ID)}
                g = fit_budget(space, [*base_nodes, new], e if skip else e - {(u, OUTPUT_ID)}, {u, fresh})
                if g is not None:
                    yield Edit("refine", f"add {fresh} ({model}) refining {u}" + (" (skip kept)" if skip else ""), g)
        for skip in (False, True):
            e = edges | {(u, fresh) for u in feeders} | {(fresh, OUTPUT_ID)}
            if not skip:
                e -= {(u, OUTPUT_ID) for u in feeders}
            g = fit_budget(space, [*base_nodes, new], e, {fresh})
            if g is not None:
                yield Edit("add-layer", f"add layer {fresh} ({model}) reading {', '.join(feeders)}"
                           + (" (their answers kept)" if skip else ""), g)
    top = max(base.levels[u] for u in workers)
    last = {u for u in workers if base.levels[u] == top and top > 0}
    if last and len(last) < len(workers):
        rest = {e for e in edges if not set(e) & last}
        rest |= {(p, s) for u in last for p in base.predecessors(u) for s in base.successors(u) if s not in last}
        try:
            yield Edit("remove-layer", f"remove the last layer ({', '.join(sorted(last))})",
                       build_graph(space, [n for n in base_nodes if n.id not in last], rest))
        except GraphError:
            pass


__all__ = ["Edit", "build_graph", "depth_edits", "fit_budget", "one_step_edits", "unseen"]
