"""Graph edits that keep a graph legal: pruning dead nodes, restoring role rules after an edit, and
repairing a graph to fit a FLOPs budget (the one home of these rules; searchers' one-step edits in
``tts_sim.search.edits`` build on them)."""

from __future__ import annotations

from tts_sim.core.flops import budget_units, graph_flops, is_feasible
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.errors import BudgetError
from tts_sim.tasks import TaskSpec


def prune_dead(graph: Graph, catalog: ModelCatalog | None = DEFAULT_CATALOG) -> Graph:
    """Drop nodes that do not reach the output node (they are never executed)."""
    live = set(graph.executed)
    dead = [n.id for n in graph.nodes if n.id not in live]
    return graph.with_changes(remove_nodes=dead, catalog=catalog) if dead else graph


def fix_roles(nodes: list[Node], edges: set[tuple[str, str]]) -> list[Node]:
    """Make roles legal after an edit: a fuser fed by a fuser loses that edge (the caller's
    ``edges`` is edited in place) and a fuser left without an assistant predecessor becomes an
    assistant. Repeats until stable, since turning a fuser into an assistant can legalise others."""
    role = {n.id: n.role for n in nodes}
    changed = True
    while changed:
        changed = False
        for u, v in sorted(edges):
            if role[u] is Role.FUSER and role[v] is Role.FUSER:
                edges.discard((u, v))
                changed = True
        for n in nodes:
            if role[n.id] is Role.FUSER and not any(
                role[u] is Role.ASSISTANT for (u, v) in edges if v == n.id
            ):
                role[n.id] = Role.ASSISTANT
                changed = True
    return [Node(n.id, role[n.id], n.model) for n in nodes]


def removal_order(graph: Graph, catalog: ModelCatalog) -> list[str]:
    """Non-output executed nodes, least useful first: smallest model (the paper's rule), then
    fewest successors (least influence), then the latest in topological order."""
    topo = {n: i for i, n in enumerate(graph.topological_order)}
    candidates = [n for n in graph.executed if n != graph.output]
    return sorted(candidates, key=lambda n: (catalog[graph.node(n).model].m_flops,
                                             len(graph.successors(n)), -topo[n]))


def repair(graph: Graph, task: TaskSpec, budget: float, catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    """Return a valid graph within ``budget`` units, removing the least useful nodes first.

    Dead nodes are pruned; role rules are restored after each removal; the output node is kept.
    Raises ``BudgetError`` if even the output node alone exceeds the budget.
    """
    graph = prune_dead(graph, catalog)
    while not is_feasible(graph, task, budget, catalog):
        order = removal_order(graph, catalog)
        if not order:
            cost = budget_units(graph_flops(graph, task, catalog), task, catalog)
            raise BudgetError(f"budget {budget:g} units is below the cheapest valid graph "
                              f"(a lone {graph.node(graph.output).model} output node costs {cost:.2f} units)")
        victim = order[0]
        nodes = [n for n in graph.nodes if n.id != victim]
        edges = {e for e in graph.edges if victim not in e}
        nodes = fix_roles(nodes, edges)
        out_preds = [u for u, v in edges if v == graph.output]
        if not out_preds and len(nodes) > 1:  # keep the output fed: connect the last remaining sink
            sinks = [n.id for n in nodes if n.id != graph.output and not any(u == n.id for u, _ in edges)]
            edges.add((sinks[-1], graph.output))
        graph = prune_dead(Graph.build(nodes, edges, graph.output, catalog), catalog)
    return graph
