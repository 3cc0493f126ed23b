"""Agent-REINFORCE: REINFORCE's sample -> gradient -> update as sample -> textual feedback -> update.

Steps (paper-facts.md):
0. enumerate model mixes that spend the budget (integer cost units, least leftover);
1. the agent picks promising mixes (Insight 1) from the search's prior (single-model accuracies and
   task kind under ``--prior published``; nothing but the mixes and their costs under ``none``);
2. pre-test: a few reduced variants of each pick on very few questions; the best mix is kept;
3. iteration 0: a random graph with that mix (sparse edges, roles under the rules), budget-repaired;
4. iterations 1..: the agent reads the last graph as text, its score (and latency when the
   objective asks), the edge-probability table and two rounds of memory, and returns the next graph
   and an updated table; budget repair; evaluate. Until the evaluation budget is spent.
The driver returns the best graph by search-time score (the release returned the last one) and
reports its held-out evaluation. Pre-tests count as evaluations (on fewer questions).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from tts_sim.core.graph import Graph
from tts_sim.search.agent_api import (
    PROPOSE_METHODS,
    Agent,
    MixOption,
    MixRequest,
    ProposeRequest,
    Round,
    build_agent,
    check_agent,
)
from tts_sim.search.agents import prior_for
from tts_sim.search.context import SearchContext, stable_int
from tts_sim.search.mixes import (
    available_units,
    enumerate_mixes,
    layered_variant,
    mix_models_by_size,
    parallel_variant,
    unit_costs,
)
from tts_sim.search.result import Trial
from tts_sim.search.searcher import BaseSearcher
from tts_sim.search.space import ProbabilisticGraph, slot_id

log = logging.getLogger("tts_sim.search")


def round_of(trial: Trial, note: str = "") -> Round:
    lat = trial.latency.get("p95_s") if trial.latency else None
    return Round(trial.graph, trial.score, trial.accuracy, trial.units, lat, note)


def pick_mixes(ctx: SearchContext, agent: Agent, mixes: Sequence[MixOption], n_picks: int) -> list[int]:
    """Step 1: ask the agent (through the driver) for up to ``n_picks`` of ``mixes``; their indices,
    without repeats (the first mix when the reply names none)."""
    space = ctx.space
    request = MixRequest(space=space, mixes=tuple(mixes), unit_costs=unit_costs(space),
                         available_units=available_units(space), n_picks=n_picks,
                         objective=ctx.objective.describe(), seed=stable_int(ctx.seed, "pick") % 2 ** 32,
                         prior=ctx.prior)
    reply = ctx.agent_call("pick", lambda: agent.pick_mixes(request))
    return [p for p in dict.fromkeys(reply.picks or []) if 0 <= p < len(mixes)][:n_picks] or [0]


@dataclass
class AgentReinforce(BaseSearcher):
    """Options: ``agent`` (a registered agent with pick_mixes and propose: "insight", "chat") with
    ``agent_options``; ``n_picks`` mixes
    pre-tested with ``pretest_variants`` variants each on ``pretest_questions`` questions (at most
    ``pretest_share`` of the evaluations); iteration 0 samples edges with ``edge_p`` and fusers with
    ``fuser_p``; ``memory`` past rounds go into each prompt."""

    name: ClassVar[str] = "agent-reinforce"
    uses_prior: ClassVar[bool] = True

    agent: str = "insight"
    agent_options: dict[str, Any] = field(default_factory=dict)
    n_picks: int = 3
    pretest_variants: int = 2
    pretest_questions: int | None = None  # default: a quarter of the search split (at least 10)
    pretest_share: float = 0.3
    edge_p: float = 0.3
    fuser_p: float = 0.2
    memory: int = 2
    max_repeats: int = 5  # consecutive already-evaluated proposals before the search stops early

    def __post_init__(self) -> None:
        check_agent(self.name, self.agent, self.agent_options, PROPOSE_METHODS)

    def make_agent(self) -> Agent:
        agent: Agent = build_agent(self.name, self.agent, self.agent_options, PROPOSE_METHODS)
        return agent

    def run(self, ctx: SearchContext) -> Graph | None:
        space = ctx.space
        agent = self.make_agent()
        mixes = enumerate_mixes(space)
        if not mixes:  # the budget affords the output node alone
            ctx.evaluate(space.lone_output(), phase="only graph")
            return None
        mix, pretested = self._choose_mix(ctx, agent, mixes)
        nodes = {slot_id(i): m for i, m in enumerate(mix)}
        pg = ProbabilisticGraph.for_mix(space, mix, self.edge_p, self.fuser_p)
        table = pg.edge_table(list(mix))
        if pretested is not None:  # start from the best pre-tested shape, re-scored on the full split
            last = ctx.evaluate(pretested, phase="iteration 0")
            rounds = [round_of(last, "start: the best pre-tested variant of the chosen mix")]
        else:
            last = ctx.evaluate(pg.sample(space, ctx.rng("iteration-0")), phase="iteration 0")
            rounds = [round_of(last, "sample: random graph of the chosen mix")]
        prev_best: float | None = None
        step, repeats = 1, 0
        objective = ctx.objective.describe()
        while not ctx.done:
            best = ctx.best_trial() or last
            request = ProposeRequest(
                space=space, step=step, nodes=nodes, last=rounds[-1], best=round_of(best),
                prev_best_score=prev_best, edge_table=table, memory=tuple(rounds[-1 - self.memory:-1]),
                history=frozenset(t.graph_key for t in ctx.trials if t.full), objective=objective,
                show_latency=ctx.objective.needs_latency, seed=stable_int(ctx.seed, "propose", step) % 2 ** 32,
                prior=ctx.prior,
            )
            reply = ctx.agent_call("propose", partial(agent.propose, request))
            if reply.edge_table:
                table = dict(reply.edge_table)
            graph = Graph.from_dict(reply.graph, space.catalog) if reply.graph else best.graph
            prev_best = best.score
            before = ctx.evaluations
            last = ctx.evaluate(graph, phase=f"iteration {step}")
            repeats = repeats + 1 if ctx.evaluations == before else 0
            if repeats >= self.max_repeats:
                log.info("agent-reinforce: %d proposals in a row were already evaluated; stopping early", repeats)
                break
            rounds.append(round_of(last, f"{reply.extras.get('edit', 'edit')}: {reply.extras.get('label', '')}"))
            step += 1
        return None

    def _choose_mix(self, ctx: SearchContext, agent: Agent, mixes: list) -> tuple[tuple[str, ...], Graph | None]:
        """The mix to search (Insight 1 + pre-test) and, when pre-tested, its best variant."""
        space = ctx.space
        picks = pick_mixes(ctx, agent, mixes, self.n_picks)
        budget = min(len(picks) * self.pretest_variants, int(ctx.max_evals * self.pretest_share))
        if len(picks) == 1 or budget < len(picks):
            return mix_models_by_size(space, mixes[picks[0]].models), None
        per_mix = max(1, budget // len(picks))
        n_questions = self.pretest_questions or max(10, len(ctx.search_questions) // 4)
        depth = prior_for(ctx.prior).depth
        scores: dict[int, float] = {}
        best_variant: dict[int, Graph] = {}
        for p in picks:
            models = mix_models_by_size(space, mixes[p].models)
            variants = [parallel_variant(space, models), layered_variant(space, models, depth)][:per_mix]
            results = [ctx.evaluate(g, phase=f"pretest mix {p}", n_questions=n_questions) for g in variants]
            scores[p] = sum(t.score for t in results) / len(results)
            best_variant[p] = max(results, key=lambda t: t.score).graph
        best = max(picks, key=lambda p: (scores[p], -picks.index(p)))
        return mix_models_by_size(space, mixes[best].models), best_variant[best]
