"""Agent-REINFORCE: REINFORCE's sample -> gradient -> update as sample -> textual feedback -> update.

Steps (paper-facts.md, with this project's changes marked *):
0. enumerate model mixes that spend the budget (integer cost units, least leftover);
1. the agent picks promising mixes (Insight 1) from the search's prior (single-model accuracies and
   task kind under ``--prior published``; nothing but the mixes and their costs under ``none``, where
   ties are broken by the search's seed*);
2. pre-test: a few reduced variants of each pick (parallel, proposers -> aggregators*, layered), scored on the
   whole search split* (the release: very few questions; here an evaluation costs the same either way);
2b.* blend: the two best pre-tested mixes blended (models of each in turn, ``mixes.blend_mixes``) and
   pre-tested too, when the pre-test share leaves room (diverse predecessors help multi-input nodes);
3. iteration 0: the best pre-tested variant of the best mix (a random graph of the mix when there was no pre-test);
4. iterations 1..: the agent reads the last graph as text, its score (and latency when the objective asks),
   the edge-probability table, two rounds of memory and* every scored round (``evidence``), and returns
   the next graph and an updated table; budget repair; evaluate. Until the evaluation budget is spent;
5.* recovery: after ``patience`` new evaluations without beating the best graph of the current start,
   the loop starts again from the best graph not started from yet (the next pre-tested mix, or the
   runner-up of the search).
The driver returns the best graph by search-time score (the release returned the last one) and
reports its held-out evaluation. Pre-tests count as evaluations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
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
    aggregator_variant,
    available_units,
    blend_mixes,
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
class Basin:
    """One mix the loop searches: its slots (id -> model) and the graph the search starts from."""

    nodes: dict[str, str]
    start: Graph | None  # None: a random graph of the mix


@dataclass
class AgentReinforce(BaseSearcher):
    """Options: ``agent`` (a registered agent with pick_mixes and propose: "insight", "chat") with
    ``agent_options``; ``n_picks`` mixes pre-tested with ``pretest_variants`` variants each (parallel, then
    proposers feeding aggregators (``aggregators``; else layered with the prior's depth), then layered with the
    prior's depth (else one layer deeper)) on ``pretest_questions`` questions (default:
    the whole search split; at most ``pretest_share`` of the evaluations); iteration 0 samples edges with
    ``edge_p`` and fusers with ``fuser_p``; ``memory`` past rounds go into each prompt. With ``blend`` the two best
    pre-tested mixes are blended and the blend pre-tested within the same share. After ``patience``
    new evaluations without beating the best graph of the current start (a stall), the loop starts again
    from the best full-split graph not started from yet: the next pre-tested mix (recovery from a bad
    pre-test pick) or the runner-up of the search."""

    name: ClassVar[str] = "agent-reinforce"
    uses_prior: ClassVar[bool] = True

    agent: str = "insight"
    agent_options: dict[str, Any] = field(default_factory=dict)
    n_picks: int = 3
    pretest_variants: int = 2
    pretest_questions: int | None = None  # default: the whole search split
    pretest_share: float = 0.3
    edge_p: float = 0.3
    fuser_p: float = 0.2
    memory: int = 2
    patience: int = 6
    blend: bool = True
    aggregators: bool = True
    max_repeats: int = 5  # consecutive already-evaluated proposals before the search stops early

    def __post_init__(self) -> None:
        check_agent(self.name, self.agent, self.agent_options, PROPOSE_METHODS)
        if not (isinstance(self.patience, int) and self.patience >= 1):
            raise ConfigError(f"{self.name}: patience must be a positive integer, got {self.patience!r}")

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
        basins = self._choose_mixes(ctx, agent, mixes)
        started: set[str] = set()  # graph keys the loop started from
        step, repeats, index = 1, 0, 0
        objective = ctx.objective.describe()
        while not ctx.done:
            basin = basins[index]
            table, last, rounds = self._open(ctx, basin, index)
            local, stall, prev = last, 0, None
            while not ctx.done and stall < self.patience:
                request = ProposeRequest(
                    space=space, step=step, nodes=basin.nodes, last=rounds[-1], best=round_of(local),
                    prev_best_score=prev, edge_table=table,
                    memory=tuple(rounds[-1 - self.memory:-1]), objective=objective,
                    history=frozenset(t.graph_key for t in ctx.trials if t.full),
                    show_latency=ctx.objective.needs_latency, seed=stable_int(ctx.seed, "propose", step) % 2 ** 32,
                    prior=ctx.prior, evidence=tuple(round_of(t) for t in ctx.trials if t.full),
                )
                reply = ctx.agent_call("propose", partial(agent.propose, request))
                if reply.edge_table:
                    table = dict(reply.edge_table)
                graph = Graph.from_dict(reply.graph, space.catalog) if reply.graph else local.graph
                before = ctx.evaluations
                last = ctx.evaluate(graph, phase=f"iteration {step}")
                repeats = repeats + 1 if ctx.evaluations == before else 0
                if repeats >= self.max_repeats:
                    log.info("agent-reinforce: %d proposals in a row were already evaluated; stopping early", repeats)
                    return None
                prev = local.score
                if last.full and last.score > local.score + 1e-12:
                    local, stall = last, 0
                elif ctx.evaluations > before:
                    stall += 1
                rounds.append(round_of(last, f"{reply.extras.get('edit', 'edit')}: {reply.extras.get('label', '')}"))
                step += 1
            started.add(graph_key(basin.start or local.graph))
            basins.append(self._restart(ctx, basins, started, local))
            index = len(basins) - 1
        return None

    def _restart(self, ctx: SearchContext, basins: list[Basin], started: set[str], local: Trial) -> Basin:
        """Recovery after a stall: start again from the best full-split graph not started from yet,
        a pre-tested mix's best variant (re-opening that mix) or the runner-up of the search so far;
        the best graph itself when every graph was a start."""
        pool = [t for t in ctx.trials if t.full and t.graph_key not in started] or [local]
        best = min(pool, key=lambda t: (-t.score, t.flops, t.index))
        for b in basins:
            if b.start is not None and graph_key(b.start) == best.graph_key:
                return Basin(b.nodes, best.graph)
        nodes = {n: best.graph.node(n).model for n in best.graph.executed if n != best.graph.output}
        return Basin({**basins[-1].nodes, **nodes}, best.graph)

    def _open(self, ctx: SearchContext, basin: Basin, index: int) -> tuple[dict[str, float], Trial, list[Round]]:
        """Start searching ``basin``: its edge table, its first trial (free when already evaluated), the rounds."""
        models = list(basin.nodes.values())[:ctx.space.max_nodes]
        pg = ProbabilisticGraph.for_mix(ctx.space, models, self.edge_p, self.fuser_p)
        what = "re-opened: " if index else "start: "
        if basin.start is not None:
            last = ctx.evaluate(basin.start, phase="iteration 0" if index == 0 else f"re-open {index}")
            return pg.edge_table(models), last, [round_of(last, what + "the best graph found for this mix")]
        last = ctx.evaluate(pg.sample(ctx.space, ctx.rng("iteration-0", index)), phase="iteration 0")
        return pg.edge_table(models), last, [round_of(last, what + "random graph of the mix")]

    def _choose_mixes(self, ctx: SearchContext, agent: Agent, mixes: list) -> list[Basin]:
        """The mixes to search, best pre-test first (Insight 1 + pre-test + blend), each with its best variant."""
        space = ctx.space
        picks = pick_mixes(ctx, agent, mixes, self.n_picks)
        picked = [mix_models_by_size(space, mixes[p].models) for p in picks]

        def basin(models: tuple[str, ...], start: Graph | None) -> Basin:
            return Basin({slot_id(i): m for i, m in enumerate(models)}, start)

        cap = int(ctx.max_evals * self.pretest_share)
        budget = min(len(picks) * self.pretest_variants, cap)
        if len(picks) == 1 or budget < len(picks):
            return [basin(models, None) for models in picked]
        per_mix = max(1, budget // len(picks))
        n_questions = self.pretest_questions or len(ctx.search_questions)
        depth = prior_for(ctx.prior).depth

        def pretest(models: tuple[str, ...], label: str, n_variants: int) -> tuple[float, Graph]:
            shapes = ([aggregator_variant(space, models), layered_variant(space, models, depth)] if self.aggregators
                      else [layered_variant(space, models, depth), layered_variant(space, models, depth + 1)])
            variants = [parallel_variant(space, models), *shapes][:n_variants]
            results = [ctx.evaluate(g, phase=f"pretest {label}", n_questions=n_questions) for g in variants]
            return sum(t.score for t in results) / len(results), max(results, key=lambda t: t.score).graph

        tested = [(*pretest(models, f"mix {p}", per_mix), models) for p, models in zip(picks, picked, strict=True)]
        ranked = sorted(range(len(tested)), key=lambda i: (-tested[i][0], i))
        if self.blend:  # step 2b: the two best mixes blended, pre-tested within what the share leaves
            blend = blend_mixes(space, tested[ranked[0]][2], tested[ranked[1]][2])
            n_blend = min(per_mix, cap - len(picks) * per_mix)
            if n_blend > 0 and sorted(blend) not in [sorted(m) for m in picked]:
                tested.append((*pretest(blend, "blend", n_blend), blend))
                ranked = sorted(range(len(tested)), key=lambda i: (-tested[i][0], i))
        return [basin(tested[i][2], tested[i][1]) for i in ranked]
