"""Hybrid (MaAS-like): alternate one policy-gradient step with one agent step.

Even rounds sample ``batch`` graphs from the GPTSwarm-style policy over the encoding and update it
(REINFORCE, moving-average baseline, Adam); odd rounds ask the agent (InsightAgent by default) for
one edit of the best graph so far, whose nodes are offered as the mix (any registered agent with
``propose``). Each graph the agent
proposes is also fed to the policy as a sample, so the policy learns from the agent's finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from tts_sim.core.graph import Graph
from tts_sim.search.agent_api import ProposeRequest, build_agent, check_agent
from tts_sim.search.agent_reinforce import round_of
from tts_sim.search.context import SearchContext, stable_int
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.policy import EncodingPolicy, reinforce_gradient
from tts_sim.search.searcher import BaseSearcher


@dataclass
class Hybrid(BaseSearcher):
    name: ClassVar[str] = "hybrid"
    uses_prior: ClassVar[bool] = True  # through its agent

    #: Hybrid asks its agent only for proposals.
    agent_methods: ClassVar[tuple[str, ...]] = ("propose",)

    agent: str = "insight"
    agent_options: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.1
    batch: int = 2
    edge_p: float = 0.3
    baseline_decay: float = 0.9

    def __post_init__(self) -> None:
        check_agent(self.name, self.agent, self.agent_options, self.agent_methods)

    def run(self, ctx: SearchContext) -> Graph | None:
        space = ctx.space
        agent = build_agent(self.name, self.agent, self.agent_options, self.agent_methods)
        encoding = GraphEncoding(space)
        policy = EncodingPolicy(encoding, edge_p=self.edge_p, lr=self.lr)
        avg: float | None = None
        last = None
        step = 0
        while not ctx.done:
            samples: list[tuple[list[int], float]] = []
            if step % 2 == 0 or last is None:
                rng = ctx.rng("hybrid-policy", step)
                for _ in range(self.batch):
                    if ctx.done:
                        break
                    x = policy.sample(rng)
                    last = ctx.evaluate(encoding.decode(x), phase=f"policy step {step}")
                    samples.append((x, last.score))
            else:
                best = ctx.best_trial() or last
                nodes = {n.id: n.model for n in best.graph.nodes if n.id != best.graph.output}
                request = ProposeRequest(
                    space=space, step=step, nodes=nodes, last=round_of(last), best=round_of(best),
                    prev_best_score=None, edge_table={}, memory=(), objective=ctx.objective.describe(),
                    history=frozenset(t.graph_key for t in ctx.trials if t.full),
                    show_latency=ctx.objective.needs_latency, seed=stable_int(ctx.seed, "hybrid", step) % 2 ** 32,
                    prior=ctx.prior)
                reply = ctx.agent_call("propose", partial(agent.propose, request))
                graph = Graph.from_dict(reply.graph, space.catalog) if reply.graph else best.graph
                last = ctx.evaluate(graph, phase=f"agent step {step}")
                samples.append((encoding.encode(last.graph), last.score))
            if samples:
                mean = sum(r for _, r in samples) / len(samples)
                policy.step(reinforce_gradient(policy, samples, avg if avg is not None else mean))
                avg = mean if avg is None else self.baseline_decay * avg + (1 - self.baseline_decay) * mean
            step += 1
        return None
