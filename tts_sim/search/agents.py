"""InsightAgent: an offline, deterministic stand-in for the paper's LLM agent.

It turns the three insights into concrete decisions and writes its reasoning as text:

- Insight 1 (mix choice): a prior score per mix from the single-model accuracies of the search's
  prior; on open-answer tasks (MATH-like) extra capable models add ensemble value, on
  multiple-choice and code tasks the strongest single model dominates.
- Insights 2 and 3 (shape): a preferred width and depth per task kind, with the interaction
  (wider graphs lower the best depth and vice versa), plus the paper's heuristics (large models on
  multi-input nodes, diverse predecessors, spend the budget).
- Feedback: the edge-probability table is updated with the paper's rule (raise an edge only if it
  was used and helped; lower it if it was used and hurt); the next graph is the best-ranked unseen
  one-step edit of the best graph so far, ranked by the heuristics, the table and whether the last
  kind of edit helped.

Everything task-specific comes from the request's ``Prior`` (``tts_sim.search.prior``): under
``none`` every model's accuracy is unknown (``UNKNOWN_ACCURACY``: all mixes tie and are taken in
enumeration order, leaders diverse) and the task kind is unknown (``DEFAULT_PRIOR``'s shape).

Token counts are estimates (characters / 4 of the prompt an LLM would have read and of the reply).
Registered as agent ``insight`` (``InsightConfig``); the edits it ranks come from ``search.edits``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.identity import graph_key
from tts_sim.errors import GraphError
from tts_sim.search import prompts
from tts_sim.search.agent_api import AgentConfig, AgentReply, MixOption, MixRequest, ProposeRequest, estimate_tokens
from tts_sim.search.edits import Edit, build_graph, depth_edits, one_step_edits, unseen
from tts_sim.search.evidence import Evidence
from tts_sim.search.prior import NO_PRIOR, Prior
from tts_sim.search.space import OUTPUT_ID, SearchSpace


@dataclass(frozen=True)
class TaskPrior:
    ensemble_gain: float  # Insight 1: how much extra capable models add
    weak_floor: float  # accuracy below which an extra model adds nothing
    width: int  # Insight 2: preferred width
    depth: int  # Insight 2: preferred depth
    note: str
    shape_weight: float = 0.05  # how strongly proposals are pulled towards (width, depth)


PRIORS: dict[str, TaskPrior] = {
    "math": TaskPrior(0.6, 0.2, 4, 2, "open-answer math: several mid-size models beat one large model"),
    "multiple-choice": TaskPrior(0.15, 0.45, 2, 1, "multiple choice: a single larger model wins"),
    "code": TaskPrior(0.15, 0.4, 2, 2, "code: a single larger model wins"),
}
#: Without a task kind there is no Insight-2 shape to aim at: the shape pull is off and the scores decide.
DEFAULT_PRIOR = TaskPrior(0.3, 0.3, 3, 2, "no task-specific insight: balanced ensemble value", shape_weight=0.0)
UNKNOWN_ACCURACY = 0.3


def prior_for(prior: Prior) -> TaskPrior:
    """The shape and ensemble prior of the task kind the search's prior names (neutral if none)."""
    return PRIORS.get(prior.task_kind or "", DEFAULT_PRIOR)


def shape_targets(prior: TaskPrior, width: int, depth: int) -> tuple[int, int]:
    """Insight 3: the preferred (width, depth) given the other dimension's current value."""
    best_depth = max(1, prior.depth - max(0, width - prior.width) // 2)
    best_width = max(1, prior.width - max(0, depth - prior.depth))
    return best_width, best_depth


class InsightAgent:
    """Deterministic agent (given the request's seed). Options tune the update and ranking."""

    name = "insight"

    def __init__(self, step_size: float = 0.3, temperature: float = 0.02, table_weight: float = 0.5,
                 momentum: float = 0.05, evidence_weight: float = 1.0, optimism: float = 1.0,
                 open_models: bool = True) -> None:
        self.step_size = step_size
        self.temperature = temperature
        self.table_weight = table_weight
        self.momentum = momentum
        self.evidence_weight = evidence_weight
        self.optimism = optimism
        self.open_models = open_models

    # ----- step 1: mixes --------------------------------------------------------------------
    def mix_score(self, mix: MixOption, known: Prior = NO_PRIOR) -> float:
        prior = prior_for(known)
        accs = sorted((_accuracy(known, m) for m in mix.models), reverse=True)
        top = accs[0]
        extra = sum(max(0.0, a - prior.weak_floor) * (1.0 if j < prior.width else 0.3)
                    for j, a in enumerate(accs[1:]))
        return top + prior.ensemble_gain * (1.0 - top) * math.tanh(extra)

    def pick_mixes(self, request: MixRequest) -> AgentReply:
        space, prior = request.space, prior_for(request.prior)
        # ties (every mix, when no accuracy is known) go to less leftover, then to a draw of the
        # request's seed: different searches pre-test different mixes, not always the first ones
        draw = np.random.default_rng(request.seed).permutation(len(request.mixes))
        scored = sorted(((self.mix_score(o, request.prior), i) for i, o in enumerate(request.mixes)),
                        key=lambda t: (-round(t[0], 9), request.mixes[t[1]].leftover, draw[t[1]]))
        picks: list[int] = []
        leaders: set[str] = set()
        for _, i in scored:  # prefer picks led by different models (diverse pre-tests)
            lead = _leader(space, request.mixes[i])
            if lead not in leaders:
                picks.append(i)
                leaders.add(lead)
            if len(picks) == request.n_picks:
                break
        for _, i in scored:
            if len(picks) >= request.n_picks:
                break
            if i not in picks:
                picks.append(i)
        unknown = [m for m in space.pool if request.prior.accuracy(m) is None]
        lines = [f"Insight 1 for {space.task.name}: {prior.note}.",
                 "Prior score = best model's prior accuracy + ensemble value of the other capable models "
                 f"(gain {prior.ensemble_gain}, models under {prior.weak_floor:.0%} add nothing)."]
        if unknown:
            lines.append(f"No prior accuracy for {', '.join(unknown)}: assumed {UNKNOWN_ACCURACY:.0%}.")
        for rank, i in enumerate(picks):
            o = request.mixes[i]
            lines.append(f"Pick {rank + 1}: mix {i} = {o.label()} (prior {self.mix_score(o, request.prior):.3f}, "
                         f"leftover {o.leftover} units).")
        text = "\n".join(lines)
        return AgentReply(kind="pick", agent=self.name, text=text, picks=picks,
                          prompt_tokens=estimate_tokens(prompts.render(prompts.mix_messages(request))),
                          completion_tokens=estimate_tokens(text) + 8, tokens_estimated=True)

    # ----- step 4: feedback and update ------------------------------------------------------
    def update_table(self, request: ProposeRequest) -> tuple[dict[str, float], list[str]]:
        """The paper's rule: used edges go up if the last graph helped, down if it hurt."""
        table = dict(request.edge_table)
        prev = request.prev_best_score
        if prev is None:
            return table, ["first feedback round: the table keeps its prior"]
        helped, hurt = request.last.score > prev + 1e-12, request.last.score < prev - 1e-12
        used = [f"{u}->{v}" for u, v in sorted(request.last.graph.edges) if f"{u}->{v}" in table]
        notes = []
        if helped or hurt:
            for e in used:
                p = table[e]
                q = p + self.step_size * (1 - p) if helped else p - self.step_size * p
                table[e] = float(min(0.98, max(0.02, q)))
            verb = "raised" if helped else "lowered"
            notes.append(f"the last graph {'beat' if helped else 'fell below'} the best before it "
                         f"({request.last.score:.4f} vs {prev:.4f}): {verb} its {len(used)} used edge(s)")
        else:
            notes.append("the last graph tied the best: the table is unchanged")
        return table, notes

    def propose(self, request: ProposeRequest) -> AgentReply:
        rng = np.random.default_rng(request.seed)
        space, prior = request.space, prior_for(request.prior)
        table, notes = self.update_table(request)
        base = request.best.graph
        last_kind = request.last.note.split(":", 1)[0] if request.last.note else ""
        last_helped = request.prev_best_score is not None and request.last.score > request.prev_best_score + 1e-12
        seen = set(request.history) | {graph_key(base)}
        evidence = Evidence.fit(space, [r.graph for r in request.evidence], [r.score for r in request.evidence])
        ranked: list[tuple[float, Edit]] = []
        for edit in self.candidates(space, request, seen, rng):
            value = self.heuristic(space, prior, edit.graph, table, request.show_latency, request.prior)
            if evidence is not None:  # what the scores so far say, optimistic where they say little
                value += self.evidence_weight * (evidence.predict(edit.graph)
                                                 + self.optimism * evidence.spread(edit.graph))
            if last_kind and edit.kind == last_kind:
                value += self.momentum if last_helped else -self.momentum
            ranked.append((value + self.temperature * float(rng.gumbel()), edit))
        ranked.sort(key=lambda t: -t[0])
        w, d = base.width, base.depth
        tw, td = shape_targets(prior, w, d)
        last_text = prompts.describe_round(request.last, request.show_latency)
        lines = [f"Round {request.step}: last graph scored {last_text}; best so far {request.best.score:.4f}.",
                 "Table update: " + "; ".join(notes) + ".",
                 f"Working from the best graph (width {w}, depth {d}). Insight 2 for "
                 f"{request.prior.task_kind or 'an unknown task kind'}: "
                 f"width about {prior.width}, depth about {prior.depth}; Insight 3 at this shape: "
                 f"width {tw} for depth {d}, depth {td} for width {w}."]
        if evidence is not None:
            effects = sorted(evidence.model_effects().items(), key=lambda t: -t[1])
            lines.append(f"Evidence from {len(request.evidence)} scored rounds (score change per extra model): "
                         + ", ".join(f"{m} {v:+.3f}" for m, v in effects) + ".")
        if ranked:
            chosen = ranked[0][1]
            graph, kind, label = chosen.graph, chosen.kind, chosen.label
            lines.append(f"Edit: {chosen.label} ({_reason(chosen.kind)}).")
            if len(ranked) > 1:
                lines.append("Runners-up: " + "; ".join(e.label for _, e in ranked[1:4]) + ".")
        else:
            graph, kind = self._sample_unseen(space, request, table, rng, seen), "resample"
            label = "graph sampled from the edge-probability table"
            lines.append("Every one-step edit of the best graph was already tried: sampled a graph from the "
                         "edge-probability table instead.")
        text = "\n".join(lines)
        reply_json = prompts.graph_reply_json(graph, table, text)
        return AgentReply(kind="propose", agent=self.name, text=text, graph=graph.to_dict(), edge_table=table,
                          extras={"edit": kind, "label": label},
                          prompt_tokens=estimate_tokens(prompts.render(prompts.propose_messages(request))),
                          completion_tokens=estimate_tokens(reply_json), tokens_estimated=True)

    def candidates(self, space: SearchSpace, request: ProposeRequest, seen: set[str],
                   rng: np.random.Generator, limit: int = 30) -> list[Edit]:
        """Unseen one-step edits of the best graph; if none, of the last and remembered graphs;
        if none, unseen two-step edits of the best graph (at most ``limit``); if none (a tiny
        neighbourhood, all tried), edits that leave the mix: any pool model on any node."""
        bases, keys = [], set()
        for g in (request.best.graph, request.last.graph, *(r.graph for r in reversed(request.memory))):
            if graph_key(g) not in keys:
                keys.add(graph_key(g))
                bases.append(g)
        for base in bases:
            found = unseen(moves(space, base, request.nodes, self.open_models), seen)
            if found:
                return found
        first = list(moves(space, request.best.graph, request.nodes, self.open_models))
        found = []
        for i in rng.permutation(len(first)):
            step = first[int(i)]
            for edit in unseen(one_step_edits(space, step.graph, request.nodes), seen):
                found.append(Edit(edit.kind, f"{step.label}, then {edit.label}", edit.graph))
            if len(found) >= limit:
                break
        if not found:
            found = unseen(one_step_edits(space, request.best.graph, request.nodes, leave_mix=True), seen)
        return found

    # ----- ranking ----------------------------------------------------------------------------
    def heuristic(self, space: SearchSpace, prior: TaskPrior, graph: Graph, table: Mapping[str, float],
                  latency: bool, known: Prior = NO_PRIOR) -> float:
        """Higher is more promising by the insights (a prior, corrected by measured scores)."""
        width, depth = graph.width, graph.depth
        tw, td = shape_targets(prior, width, depth)
        value = -prior.shape_weight * (abs(width - tw) + abs(depth - td))
        largest = max(space.catalog[m].m_flops for m in space.pool)
        for nid in graph.executed:
            preds = graph.predecessors(nid)
            if not preds:
                continue
            model = graph.node(nid).model
            if nid != graph.output:  # long contexts hurt small models
                value -= 0.01 * (len(preds) - 1) * (1.0 - space.catalog[model].m_flops / largest)
            if len(preds) >= 2:  # diverse inputs help multi-input nodes
                value += 0.01 * len({graph.node(p).model for p in preds}) / len(preds)
        workers = [n for n in graph.executed if n != graph.output]
        value += 0.02 * sum(_accuracy(known, graph.node(n).model) for n in workers) / max(1, len(workers))
        value += 0.05 * space.units(graph) / space.budget
        if table:
            edges = {f"{u}->{v}" for u, v in graph.edges}
            ll = sum(math.log(p if k in edges else 1.0 - p) for k, p in table.items() if 0.0 < p < 1.0)
            value += self.table_weight * ll / len(table)
        if latency:
            value -= 0.03 * depth
        return value

    def _sample_unseen(self, space: SearchSpace, request: ProposeRequest, table: Mapping[str, float],
                       rng: np.random.Generator, seen: set[str]) -> Graph:
        ids = list(request.nodes)
        models = list(request.nodes.values())
        graph = request.best.graph
        for _ in range(20):
            edges = [(i, j) for i in range(len(ids)) for j in range(i + 1, len(ids))
                     if rng.random() < table.get(f"{ids[i]}->{ids[j]}", 0.3)]
            outs = [i for i in range(len(ids)) if rng.random() < table.get(f"{ids[i]}->{OUTPUT_ID}", 0.3)
                    or not any(a == i for a, _ in edges)]
            nodes = [Node(ids[i], Role.ASSISTANT, models[i]) for i in range(len(ids))]
            edge_set = {(ids[i], ids[j]) for i, j in edges} | {(ids[i], OUTPUT_ID) for i in outs}
            try:
                candidate = build_graph(space, nodes, edge_set)
            except GraphError:
                continue
            if graph_key(candidate) not in seen:
                return candidate
        return graph


def moves(space: SearchSpace, base: Graph, nodes: Mapping[str, str], open_models: bool = False) -> Iterator[Edit]:
    """The agent's one-step moves of ``base``: edge, node, role and model edits within the mix's
    ``nodes``, then the depth moves with new nodes running the mix's models; with ``open_models`` also
    any pool model on a node or a new node, and depth moves with any pool model."""
    yield from one_step_edits(space, base, nodes)
    if open_models:
        yield from one_step_edits(space, base, nodes, leave_mix=True)
    yield from depth_edits(space, base, space.pool if open_models else nodes.values())


def _accuracy(prior: Prior, model: str) -> float:
    acc = prior.accuracy(model)
    return UNKNOWN_ACCURACY if acc is None else acc


def _leader(space: SearchSpace, mix: MixOption) -> str:
    return max(mix.models, key=lambda m: (space.catalog[m].m_flops, m))


def _reason(kind: str) -> str:
    return {
        "add-edge": "Insights 2-3: more depth or a richer input set is still below the preferred shape",
        "remove-edge": "Insights 2-3: sparser, shallower; less context for the reader",
        "add-node": "grow outward from the output: spend unused budget on width",
        "drop-node": "Insight 2: too many weak models hurt; frees budget",
        "flip-role": "fusers merge several inputs; assistants refine a single one",
        "swap-models": "larger models on nodes with many predecessors; diverse inputs",
        "change-model": "the mix's neighbourhood is exhausted: try another model (Insight 1 again)",
        "refine": "Insight 2: depth; a second model checks and refines one answer",
        "add-layer": "Insight 2: depth; one node reads every answer before the output",
        "remove-layer": "Insight 2: past the best depth more steps hurt; frees budget",
    }.get(kind, kind)


@dataclass
class InsightConfig(AgentConfig):
    """Agent ``insight``: the offline InsightAgent (options tune the table update and the ranking)."""

    agent_class: ClassVar[type] = InsightAgent

    step_size: float = 0.3
    temperature: float = 0.02
    table_weight: float = 0.5
    momentum: float = 0.05
    evidence_weight: float = 1.0
    optimism: float = 1.0
    open_models: bool = True

    def build(self) -> InsightAgent:
        return InsightAgent(step_size=self.step_size, temperature=self.temperature, table_weight=self.table_weight,
                            momentum=self.momentum, evidence_weight=self.evidence_weight, optimism=self.optimism,
                            open_models=self.open_models)


__all__ = ["PRIORS", "InsightAgent", "InsightConfig", "TaskPrior", "prior_for", "shape_targets"]
