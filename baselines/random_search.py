"""Random search: random budget-spending graphs, the best by search-time score is kept.

As in the paper's baseline, each graph takes a random model mix that spends the budget
(``mode="mix"``) with sparse random edges and roles; ``mode="uniform"`` draws every slot's model
(or emptiness) uniformly instead. Every graph is budget-repaired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.search.agent_api import MixOption
from tts_sim.search.context import SearchContext
from tts_sim.search.mixes import enumerate_mixes
from tts_sim.search.searcher import BaseSearcher
from tts_sim.search.space import ProbabilisticGraph, SearchSpace


@dataclass
class RandomSearch(BaseSearcher):
    name: ClassVar[str] = "random"

    mode: str = "mix"  # "mix" | "uniform"
    edge_p: float = 0.3
    fuser_p: float = 0.2

    def __post_init__(self) -> None:
        if self.mode not in ("mix", "uniform"):
            raise ConfigError(f"random search: mode must be 'mix' or 'uniform', got {self.mode!r}")

    def run(self, ctx: SearchContext) -> Graph | None:
        mixes = enumerate_mixes(ctx.space) if self.mode == "mix" else []
        draw = 0
        while not ctx.done:
            graph = random_graph(ctx.space, ctx.rng("random", draw), mixes, self.edge_p, self.fuser_p)
            draw += 1
            ctx.evaluate(graph, phase="random")
        return None


def random_graph(space: SearchSpace, rng: np.random.Generator, mixes: Sequence[MixOption] | None = None,
                 edge_p: float = 0.3, fuser_p: float = 0.2) -> Graph:
    """A random budget-spending graph: a random mix of ``mixes`` (uniform slots when there is
    none) in random slot order, sparse random edges and roles, budget-repaired."""
    if mixes:
        mix = mixes[int(rng.integers(len(mixes)))].models
        order = rng.permutation(len(mix))
        pg = ProbabilisticGraph.for_mix(space, [mix[i] for i in order], edge_p, fuser_p)
    else:
        pg = ProbabilisticGraph.uniform(space, edge_p, fuser_p)
    return pg.sample(space, rng)


def initial_design(ctx: SearchContext, n: int) -> list[Graph]:
    """``n`` random budget-spending graphs: the shared initial design of the model-based baselines."""
    mixes = enumerate_mixes(ctx.space)
    return [random_graph(ctx.space, ctx.rng("initial-design", i), mixes) for i in range(n)]
