"""The paper's FLOPs cost of a node and a graph, budget units, feasibility and budget repair.

    Np = A + d*B ; Nd = B
    prefill = 2*M*Np + 2*L*D*Np*(Np+1)
    decode  = 2*M*Nd + 2*L*D*Nd*(2*Np + Nd + 1)

Budget units are multiples of one direct call of the reference model (LLaMA-3.2-1B) on the task.
"""

from __future__ import annotations

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, DEFAULT_OUTPUT_MODEL, REFERENCE_MODEL, ModelCatalog, ModelSpec
from tts_sim.errors import BudgetError
from tts_sim.tasks import TaskSpec


def node_flops(model: ModelSpec, task: TaskSpec, in_degree: int) -> float:
    """FLOPs of one call of ``model`` with ``in_degree`` predecessor answers in its prompt."""
    m, layers, hidden = model.m_flops, model.layers, model.hidden
    n_prompt = task.prompt_tokens + in_degree * task.answer_tokens
    n_decode = task.answer_tokens
    prefill = 2 * m * n_prompt + 2 * layers * hidden * n_prompt * (n_prompt + 1)
    decode = 2 * m * n_decode + 2 * layers * hidden * n_decode * (2 * n_prompt + n_decode + 1)
    return prefill + decode


def graph_flops(graph: Graph, task: TaskSpec, catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Sum of ``node_flops`` over the executed nodes (the output node included)."""
    return sum(node_flops(catalog[graph.node(n).model], task, graph.in_degree(n)) for n in graph.executed)


def unit_flops(task: TaskSpec, catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """FLOPs of one budget unit: a direct call of the reference model on ``task``."""
    return node_flops(catalog[REFERENCE_MODEL], task, 0)


def budget_units(flops: float, task: TaskSpec, catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    return flops / unit_flops(task, catalog)


#: Largest ``b`` of ``reference_graph`` (its edges grow as b^2; the paper used up to 16).
MAX_REFERENCE_NODES = 256


def reference_graph(b: int, output_model: str = DEFAULT_OUTPUT_MODEL) -> Graph:
    """The original code's budget definition: ``b`` LLaMA-1B nodes in a fully connected DAG
    (node i feeds every later node) plus one output node fed by all of them."""
    if not 1 <= b <= MAX_REFERENCE_NODES:
        raise BudgetError(f"reference budget needs 1 to {MAX_REFERENCE_NODES} nodes, got {b}")
    nodes = [Node(f"n{i}", Role.ASSISTANT, REFERENCE_MODEL) for i in range(b)]
    nodes.append(Node("out", Role.ASSISTANT, output_model))
    edges = [(f"n{i}", f"n{j}") for i in range(b) for j in range(i + 1, b)] + [(f"n{i}", "out") for i in range(b)]
    return Graph.build(nodes, edges, "out")


def reference_budget_units(b: int, task: TaskSpec, catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    return budget_units(graph_flops(reference_graph(b), task, catalog), task, catalog)


def is_feasible(graph: Graph, task: TaskSpec, budget: float, catalog: ModelCatalog = DEFAULT_CATALOG) -> bool:
    """Whether the graph's FLOPs fit ``budget`` (in budget units)."""
    return budget_units(graph_flops(graph, task, catalog), task, catalog) <= budget + 1e-9


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


def _removal_order(graph: Graph, catalog: ModelCatalog) -> list[str]:
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
        order = _removal_order(graph, catalog)
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


def cheapest_graph_units(task: TaskSpec, output_model: str = DEFAULT_OUTPUT_MODEL,
                         catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Cost in units of the cheapest valid graph with this output model: the output node alone."""
    return budget_units(node_flops(catalog[output_model], task, 0), task, catalog)
