"""Fixed-length integer encoding of a space's graphs, for Bayesian optimisation and policy gradients.

Layout for K slots and a pool of P models (every entry an integer category):

    model[i]   in 0..P   for i < K   (0 = empty slot, m = pool[m-1])
    fuser[i]   in 0..1   for i < K   (1 = fuser)
    edge[i,j]  in 0..1   for i < j < K (slot i feeds slot j)
    out[i]     in 0..1   for i < K   (slot i feeds the output node)

``decode`` always returns a valid graph (edges touching empty slots dropped, dead nodes pruned,
role rules restored) and, unless ``repair=False``, one within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tts_sim.core.graph import Graph, Role
from tts_sim.errors import GraphError
from tts_sim.search.space import SearchSpace


@dataclass(frozen=True)
class Dimension:
    name: str
    size: int  # number of categories: values 0..size-1


class GraphEncoding:
    """The encoding of ``space`` (see the module docstring)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        k, p = space.max_nodes, len(space.pool)
        self.k = k
        self.pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        dims = [Dimension(f"model_{i}", p + 1) for i in range(k)]
        dims += [Dimension(f"fuser_{i}", 2) for i in range(k)]
        dims += [Dimension(f"edge_{i}_{j}", 2) for i, j in self.pairs]
        dims += [Dimension(f"out_{i}", 2) for i in range(k)]
        self.dimensions: tuple[Dimension, ...] = tuple(dims)

    def __len__(self) -> int:
        return len(self.dimensions)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([d.size for d in self.dimensions])

    def _split(self, x: Sequence[int]) -> tuple[list[int], list[int], list[int], list[int]]:
        if len(x) != len(self.dimensions):
            raise GraphError(f"encoded graph has {len(x)} entries, the encoding has {len(self.dimensions)}")
        v = [int(a) for a in x]  # numpy scalars from optimisers become plain ints
        for a, d in zip(v, self.dimensions, strict=True):
            if not 0 <= a < d.size:
                raise GraphError(f"encoded graph: {d.name}={a} outside 0..{d.size - 1}")
        k, e = self.k, len(self.pairs)
        return v[:k], v[k:2 * k], v[2 * k:2 * k + e], v[2 * k + e:]

    def decode(self, x: Sequence[int], *, repair: bool = True) -> Graph:
        models, fusers, edges, outs = self._split(x)
        pool = self.space.pool
        slot_models = [pool[m - 1] if m else None for m in models]
        roles = [Role.FUSER if f else Role.ASSISTANT for f in fusers]
        slot_edges = [pair for pair, bit in zip(self.pairs, edges, strict=True) if bit]
        to_out = [i for i, bit in enumerate(outs) if bit]
        return self.space.build(slot_models, roles, slot_edges, to_out, repair=repair)

    def encode(self, graph: Graph) -> list[int]:
        """The vector of a graph of the space; slots follow the topological order of executed nodes."""
        self.space.check(graph)
        workers = [n for n in graph.executed if n != graph.output]
        slot = {nid: i for i, nid in enumerate(workers)}
        x = [0] * len(self.dimensions)
        k, e = self.k, len(self.pairs)
        pair_index = {pair: idx for idx, pair in enumerate(self.pairs)}
        for nid, i in slot.items():
            node = graph.node(nid)
            x[i] = self.space.pool.index(node.model) + 1
            x[k + i] = int(node.role is Role.FUSER)
            for succ in graph.successors(nid):
                if succ == graph.output:
                    x[2 * k + e + i] = 1
                else:
                    x[2 * k + pair_index[(i, slot[succ])]] = 1
        return x

    def random(self, rng: np.random.Generator) -> list[int]:
        return [int(v) for v in rng.integers(0, self.sizes)]

    def neighbour(self, x: Sequence[int], rng: np.random.Generator, changes: int = 1) -> list[int]:
        """``x`` with ``changes`` distinct entries set to another value (a model, a role, an edge)."""
        y = [int(a) for a in x]
        sizes = self.sizes
        for i in rng.choice(len(y), size=changes, replace=False):
            y[i] = int((y[i] + rng.integers(1, sizes[i])) % sizes[i])
        return y

