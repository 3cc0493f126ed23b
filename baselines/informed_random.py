"""Informed random search: random graphs within the mixes Agent-REINFORCE's agent would pick.

The ablation that separates the agent's mix choice (Insight 1) from the rest of Agent-REINFORCE: one
``pick_mixes`` call to the same agent with the same request (``agent_reinforce.pick_mixes``: the
search's prior, ``n_picks`` mixes), then only random graphs, each on one of the picked mixes drawn
uniformly, in random slot order with sparse random edges and roles (the random baseline's sampler).
No pre-test, no agent loop, no edge-probability table. The agent call counts in the search cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from tts_sim.baselines.random_search import random_graph
from tts_sim.core.graph import Graph
from tts_sim.search.agent_api import build_agent, check_agent
from tts_sim.search.agent_reinforce import pick_mixes
from tts_sim.search.context import SearchContext
from tts_sim.search.mixes import enumerate_mixes
from tts_sim.search.searcher import BaseSearcher


@dataclass
class InformedRandom(BaseSearcher):
    """Options: ``agent`` (a registered agent with ``pick_mixes``) with ``agent_options``; ``n_picks``
    mixes (Agent-REINFORCE's default); ``edge_p`` and ``fuser_p`` of the random graphs."""

    name: ClassVar[str] = "informed-random"
    uses_prior: ClassVar[bool] = True  # through the agent's mix choice
    agent_methods: ClassVar[tuple[str, ...]] = ("pick_mixes",)

    agent: str = "insight"
    agent_options: dict[str, Any] = field(default_factory=dict)
    n_picks: int = 3
    edge_p: float = 0.3
    fuser_p: float = 0.2

    def __post_init__(self) -> None:
        check_agent(self.name, self.agent, self.agent_options, self.agent_methods)

    def run(self, ctx: SearchContext) -> Graph | None:
        space = ctx.space
        mixes = enumerate_mixes(space)
        if not mixes:  # the budget affords the output node alone
            ctx.evaluate(space.lone_output(), phase="only graph")
            return None
        agent = build_agent(self.name, self.agent, self.agent_options, self.agent_methods)
        picked = [mixes[i] for i in pick_mixes(ctx, agent, mixes, self.n_picks)]
        draw = 0
        while not ctx.done:
            graph = random_graph(space, ctx.rng("informed-random", draw), picked, self.edge_p, self.fuser_p)
            draw += 1
            ctx.evaluate(graph, phase="informed random")
        return None
