"""A dummy third-party tts-sim plug-in: a searcher, a task and a device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tts_sim.core.devices import DeviceSpec
from tts_sim.core.graph import Graph
from tts_sim.search.searcher import BaseSearcher
from tts_sim.tasks.spec import TaskSpec


@dataclass
class SingleBest(BaseSearcher):
    """Evaluates each pool model (at most ``limit`` of them) feeding the output node; keeps the best."""

    name: ClassVar[str] = "single-best"
    limit: int = 3

    def run(self, ctx):  # type: ignore[no-untyped-def]
        for model in ctx.space.pool[: self.limit]:
            if ctx.done:
                break
            nodes = [("a", "assistant", model), ("out", "assistant", ctx.space.output_model)]
            ctx.evaluate(Graph.build(nodes, [("a", "out")], "out"), phase="single")
        return None


COIN = TaskSpec("coin", "multiple-choice", 30, 5, {"llama-3.2-1b": 0.6, "llama-3.2-3b": 0.7, "llama-3.1-8b": 0.8,
                                                   "llama-3.1-70b": 0.9, "gemma-3-1b": 0.6, "gemma-2b": 0.55,
                                                   "gemma-7b": 0.7},
                chance=0.5, source="dummy plug-in")

TINY_GPU = DeviceSpec("tiny-gpu", "gpu", 10e12, 100e9, 16e9, "dummy plug-in")
