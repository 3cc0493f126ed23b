"""The paper's FLOPs cost of a node and a graph, budget units and feasibility (budget repair: ``edits``).

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


def cheapest_graph_units(task: TaskSpec, output_model: str = DEFAULT_OUTPUT_MODEL,
                         catalog: ModelCatalog = DEFAULT_CATALOG) -> float:
    """Cost in units of the cheapest valid graph with this output model: the output node alone."""
    return budget_units(node_flops(catalog[output_model], task, 0), task, catalog)
