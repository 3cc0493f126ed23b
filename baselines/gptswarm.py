"""GPTSwarm-style search: plain REINFORCE over edge, role and model logits of the encoding.

Per iteration ``batch`` graphs are sampled from the policy, budget-repaired and scored; the
score-function gradient (with a moving-average reward baseline when ``baseline`` is on; the
original had none) updates the logits with Adam (lr 0.1). The last evaluation goes to the final
graph: the most likely model and role per slot, edges with probability above 0.55, repaired. The
driver then returns the best graph by search-time score, or that final graph if ``return_final``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tts_sim.core.graph import Graph
from tts_sim.search.context import SearchContext
from tts_sim.search.encoding import GraphEncoding
from tts_sim.search.policy import EncodingPolicy, reinforce_gradient
from tts_sim.search.searcher import BaseSearcher


@dataclass
class GPTSwarmSearch(BaseSearcher):
    name: ClassVar[str] = "gptswarm"

    lr: float = 0.1
    batch: int = 3
    baseline: bool = True
    baseline_decay: float = 0.9
    edge_p: float = 0.5
    keep_p: float = 0.55
    return_final: bool = False

    def run(self, ctx: SearchContext) -> Graph | None:
        encoding = GraphEncoding(ctx.space)
        policy = EncodingPolicy(encoding, edge_p=self.edge_p, lr=self.lr)
        avg: float | None = None
        step = 0
        while ctx.remaining > 1 and not ctx.done:
            rng = ctx.rng("gptswarm", step)
            samples = []
            for _ in range(self.batch):
                if ctx.remaining <= 1 or ctx.done:
                    break
                x = policy.sample(rng)
                samples.append((x, ctx.evaluate(encoding.decode(x), phase=f"policy step {step}").score))
            if not samples:
                break
            mean = sum(r for _, r in samples) / len(samples)
            base = (avg if avg is not None else mean) if self.baseline else 0.0
            policy.step(reinforce_gradient(policy, samples, base))
            avg = mean if avg is None else self.baseline_decay * avg + (1 - self.baseline_decay) * mean
            step += 1
        final = encoding.decode(policy.mode(self.keep_p))
        if not ctx.done:
            ctx.evaluate(final, phase="final graph")
        extra = 0
        while not ctx.done:  # the final graph was already scored: spend what is left on samples
            ctx.evaluate(encoding.decode(policy.sample(ctx.rng("gptswarm-extra", extra))), phase="extra sample")
            extra += 1
        return final if self.return_final else None
