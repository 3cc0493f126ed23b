"""TextGrad-style search: a critic writes textual feedback on the last graph, an editor applies it.

The same LLM loop as Agent-REINFORCE but without the insights (no mix enumeration, no informed
initialisation, no heuristics, no edge-probability table): the first graph is a random one of the
whole space. The engine is any agent with ``critique`` and ``edit`` (``CritiqueEditAgent``), built
through the agents registry. The default, ``offline-textgrad`` (``OfflineTextGrad``), is offline and
deterministic: its critic compares the last score with the one before and says whether to keep or
undo the change; its editor applies one uniformly random unseen one-step edit. ``agent="chat"``
puts an LLM behind both steps (insight-free prompts), falling back to the offline engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.search import prompts
from tts_sim.search.agent_api import (
    CRITIQUE_EDIT_METHODS,
    AgentConfig,
    AgentReply,
    CritiqueEditAgent,
    ProposeRequest,
    build_agent,
    check_agent,
    estimate_tokens,
)
from tts_sim.search.context import SearchContext, stable_int
from tts_sim.search.edits import one_step_edits
from tts_sim.search.searcher import BaseSearcher
from tts_sim.search.space import ProbabilisticGraph, slot_id

UNDO = "undo the last change"


class OfflineTextGrad:
    """Deterministic critic and editor without domain knowledge."""

    name = "offline-textgrad"

    def critique(self, request: ProposeRequest) -> AgentReply:
        last = request.last.score
        if not request.memory:
            text = f"The graph scores {last:.4f}. Change one thing and see whether the score rises."
        elif last < request.memory[-1].score:
            text = (f"The last change lowered the score from {request.memory[-1].score:.4f} to {last:.4f}: "
                    f"{UNDO} and try a different one.")
        elif last > request.memory[-1].score:
            text = f"The last change raised the score to {last:.4f}: keep it and change something else."
        else:
            text = f"The score did not move ({last:.4f}): try a different change."
        return AgentReply(kind="critique", agent=self.name, text=text,
                          prompt_tokens=estimate_tokens(prompts.render(prompts.critique_messages(request))),
                          completion_tokens=estimate_tokens(text))

    def edit(self, request: ProposeRequest, feedback: str) -> AgentReply:
        rng = np.random.default_rng(request.seed)
        base = request.memory[-1].graph if UNDO in feedback and request.memory else request.last.graph
        seen = set(request.history)
        options = [e for e in one_step_edits(request.space, base, request.nodes) if graph_key(e.graph) not in seen]
        if not options:
            options = [e for e in one_step_edits(request.space, base, request.nodes, leave_mix=True)
                       if graph_key(e.graph) not in seen]
        if options:
            choice = options[int(rng.integers(len(options)))]
            graph, text = choice.graph, f"Applied the feedback: {choice.label}."
        else:
            graph, text = base, "No untried change is left."
        reply = prompts.graph_reply_json(graph, None, text)
        return AgentReply(kind="edit", agent=self.name, text=text, graph=graph.to_dict(), extras={"edit": "random"},
                          prompt_tokens=estimate_tokens(prompts.render(prompts.edit_messages(request, feedback))),
                          completion_tokens=estimate_tokens(reply))


@dataclass
class OfflineTextGradConfig(AgentConfig):
    """Agent ``offline-textgrad``: the deterministic critic and editor (no options)."""

    agent_class: ClassVar[type] = OfflineTextGrad

    def build(self) -> OfflineTextGrad:
        return OfflineTextGrad()


@dataclass
class TextGradSearch(BaseSearcher):
    """Options: ``agent`` (a registered agent with critique and edit) with ``agent_options``; ``memory``
    past rounds go into each prompt."""

    name: ClassVar[str] = "textgrad"
    #: Options given to the agent when its config has them and ``agent_options`` does not set them.
    agent_defaults: ClassVar[dict[str, Any]] = {"insights": False, "fallback": "offline-textgrad"}

    agent: str = "offline-textgrad"
    agent_options: dict[str, Any] = field(default_factory=dict)
    memory: int = 2
    max_repeats: int = 5  # consecutive already-evaluated edits before the search stops early

    def __post_init__(self) -> None:
        check_agent(self.name, self.agent, self.agent_options, CRITIQUE_EDIT_METHODS, self.agent_defaults)

    def engine(self) -> CritiqueEditAgent:
        engine: CritiqueEditAgent = build_agent(self.name, self.agent, self.agent_options, CRITIQUE_EDIT_METHODS,
                                                self.agent_defaults)
        return engine

    def run(self, ctx: SearchContext) -> Graph | None:
        from tts_sim.search.agent_reinforce import round_of

        space = ctx.space
        engine = self.engine()
        rng = ctx.rng("textgrad-init")
        first = ProbabilisticGraph.uniform(space).sample(space, rng)
        nodes = {slot_id(i): space.pool[int(rng.integers(len(space.pool)))] for i in range(space.max_nodes)}
        nodes.update({n.id: n.model for n in first.nodes if n.id != "out"})
        start = ctx.evaluate(first, phase="random start")
        rounds = [round_of(start)]
        step, repeats = 1, 0
        while not ctx.done and repeats < self.max_repeats:
            best = ctx.best_trial() or start
            request = ProposeRequest(
                space=space, step=step, nodes=dict(sorted(nodes.items())), last=rounds[-1], best=round_of(best),
                prev_best_score=None, edge_table={}, memory=tuple(rounds[-1 - self.memory:-1]),
                history=frozenset(t.graph_key for t in ctx.trials if t.full), objective=ctx.objective.describe(),
                show_latency=ctx.objective.needs_latency, seed=stable_int(ctx.seed, "textgrad", step) % 2 ** 32,
                prior=ctx.prior)
            feedback = ctx.agent_call("critique", partial(engine.critique, request))
            edited = ctx.agent_call("edit", partial(engine.edit, request, feedback.text))
            graph = Graph.from_dict(edited.graph, space.catalog) if edited.graph else request.last.graph
            before = ctx.evaluations
            rounds.append(round_of(ctx.evaluate(graph, phase=f"step {step}")))
            repeats = repeats + 1 if ctx.evaluations == before else 0
            step += 1
        return None
