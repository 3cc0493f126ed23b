"""Random search: random budget-spending graphs, the best by search-time score is kept.

As in the paper's baseline, each graph takes a random model mix that spends the budget
(``mode="mix"``) with sparse random edges and roles; ``mode="uniform"`` draws every slot's model
(or emptiness) uniformly instead. Every graph is budget-repaired.

Under ``--prior published`` the mix is drawn with ``tts_sim.search.prior.mix_weights`` (mixes whose
best model has a higher prior accuracy more often, temperature ``prior_temperature``); under
``none`` uniformly. The model-based baselines (BO, TPE) take their initial design from the same
sampler (``initial_design``), so they use the prior the same way.
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
from tts_sim.search.prior import MIX_TEMPERATURE, Prior, mix_weights
from tts_sim.search.searcher import BaseSearcher
from tts_sim.search.space import ProbabilisticGraph, SearchSpace


@dataclass
class RandomSearch(BaseSearcher):
    name: ClassVar[str] = "random"
    uses_prior: ClassVar[bool] = True

    mode: str = "mix"  # "mix" | "uniform"
    edge_p: float = 0.3
    fuser_p: float = 0.2
    prior_temperature: float = MIX_TEMPERATURE

    def __post_init__(self) -> None:
        if self.mode not in ("mix", "uniform"):
            raise ConfigError(f"random search: mode must be 'mix' or 'uniform', got {self.mode!r}")
        if not (isinstance(self.prior_temperature, (int, float)) and self.prior_temperature > 0):
            raise ConfigError(f"random search: prior_temperature must be positive, got {self.prior_temperature!r}")

    def run(self, ctx: SearchContext) -> Graph | None:
        mixes = enumerate_mixes(ctx.space) if self.mode == "mix" else []
        weights = prior_weights(ctx.prior, mixes, self.prior_temperature)
        draw = 0
        while not ctx.done:
            graph = random_graph(ctx.space, ctx.rng("random", draw), mixes, self.edge_p, self.fuser_p, weights)
            draw += 1
            ctx.evaluate(graph, phase="random")
        return None


def prior_weights(prior: Prior, mixes: Sequence[MixOption], temperature: float = MIX_TEMPERATURE
                  ) -> np.ndarray | None:
    """Draw probabilities of ``mixes`` under ``prior`` (None: uniform)."""
    return mix_weights(prior, [m.models for m in mixes], temperature)


def random_graph(space: SearchSpace, rng: np.random.Generator, mixes: Sequence[MixOption] | None = None,
                 edge_p: float = 0.3, fuser_p: float = 0.2, weights: np.ndarray | None = None) -> Graph:
    """A random budget-spending graph: a random mix of ``mixes`` (uniform slots when there is
    none; drawn with ``weights`` when given, uniformly otherwise) in random slot order, sparse random
    edges and roles, budget-repaired."""
    if mixes:
        index = int(rng.integers(len(mixes))) if weights is None else int(rng.choice(len(mixes), p=weights))
        mix = mixes[index].models
        order = rng.permutation(len(mix))
        pg = ProbabilisticGraph.for_mix(space, [mix[i] for i in order], edge_p, fuser_p)
    else:
        pg = ProbabilisticGraph.uniform(space, edge_p, fuser_p)
    return pg.sample(space, rng)


def initial_design(ctx: SearchContext, n: int) -> list[Graph]:
    """``n`` random budget-spending graphs: the shared initial design of the model-based baselines
    (mixes weighted by the search's prior, uniform under ``none``)."""
    mixes = enumerate_mixes(ctx.space)
    weights = prior_weights(ctx.prior, mixes)
    return [random_graph(ctx.space, ctx.rng("initial-design", i), mixes, weights=weights) for i in range(n)]
