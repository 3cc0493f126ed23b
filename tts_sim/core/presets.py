"""The paper's fixed test-time-scaling shapes as graphs.

- parallel: ``width`` independent assistants feeding the output node (width scaling);
- chain: ``depth`` assistants in sequence, each refining the previous answer (depth scaling);
- grid: ``width`` parallel chains of ``depth`` assistants, every chain ending in the output node.
"""

from __future__ import annotations

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, DEFAULT_OUTPUT_MODEL, ModelCatalog
from tts_sim.errors import GraphError

#: Largest preset graph (worker nodes).
MAX_PRESET_NODES = 10_000


def grid(width: int, depth: int, model: str, output_model: str = DEFAULT_OUTPUT_MODEL,
         catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    """``width`` chains of ``depth`` assistants of ``model``; each chain's last node feeds the output.

    ``width == depth == 0`` gives a lone output node (a single direct call)."""
    if width < 0 or depth < 0 or (width == 0) != (depth == 0):
        raise GraphError(f"grid needs width >= 1 and depth >= 1 (or both 0), got width={width}, depth={depth}")
    if width * depth > MAX_PRESET_NODES:
        raise GraphError(f"grid of {width} x {depth} nodes is larger than {MAX_PRESET_NODES} nodes")
    nodes = [Node(f"c{c}d{d}", Role.ASSISTANT, model) for c in range(width) for d in range(depth)]
    edges = [(f"c{c}d{d}", f"c{c}d{d + 1}") for c in range(width) for d in range(depth - 1)]
    edges += [(f"c{c}d{depth - 1}", "out") for c in range(width)]
    return Graph.build([*nodes, Node("out", Role.ASSISTANT, output_model)], edges, "out", catalog)


def parallel(width: int, model: str, output_model: str = DEFAULT_OUTPUT_MODEL,
             catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    return grid(width, 1, model, output_model, catalog)


def chain(depth: int, model: str, output_model: str = DEFAULT_OUTPUT_MODEL,
          catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    return grid(1, depth, model, output_model, catalog)


def single(model: str, catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    """One direct call: the single-model baseline."""
    return Graph.build([Node("out", Role.ASSISTANT, model)], [], "out", catalog)

