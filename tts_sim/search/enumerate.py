"""Exhaustive enumeration of small spaces, the true optimum and each searcher's regret.

``enumerate_graphs`` lists every feasible graph of a space once up to isomorphism (every worker
executed, output node an assistant). It is meant for small spaces (about 3 slots and 2 models) and
refuses larger ones. Regret needs an evaluator that offers a noise-free score: ``ExpectedScorer``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tts_sim.core.evaluation import Evaluation
from tts_sim.core.graph import Graph, Role
from tts_sim.errors import ConfigError
from tts_sim.search.space import SearchSpace

DEFAULT_LIMIT = 300_000


@runtime_checkable
class ExpectedScorer(Protocol):
    """Optional evaluator method: the noise-free (expected) score of a graph."""

    def expected(self, graph: Graph, questions: Sequence[int] | None = None) -> Evaluation: ...


def raw_count(space: SearchSpace) -> int:
    """Labelled combinations the enumeration walks through (an upper bound of its work)."""
    p = len(space.pool)
    return sum(2 ** (k * (k - 1) // 2 + k) * 2 ** k * p ** k for k in range(space.max_nodes + 1))


def enumerate_graphs(space: SearchSpace, limit: int = DEFAULT_LIMIT) -> list[Graph]:
    """Every feasible graph of ``space`` once up to isomorphism, in a deterministic order."""
    work = raw_count(space)
    if work > limit:
        raise ConfigError(f"space too large to enumerate ({work:,} labelled combinations > {limit:,}); "
                          f"use at most about 3 slots and 2 models")
    pool, p = space.pool, len(space.pool)
    k_max = space.max_nodes
    cost = [[space.node_units(m, d) for d in range(k_max)] for m in pool]
    out_cost = [space.node_units(space.output_model, d) for d in range(k_max + 1)]
    found: list[Graph] = [space.lone_output()] if out_cost[0] <= space.budget + 1e-9 else []
    for k in range(1, k_max + 1):
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        perms = list(itertools.permutations(range(k)))
        seen: set[tuple] = set()
        for emask in range(2 ** len(pairs)):
            edges = [pr for b, pr in enumerate(pairs) if emask >> b & 1]
            preds: list[list[int]] = [[] for _ in range(k)]
            for i, j in edges:
                preds[j].append(i)
            for omask in range(1, 2 ** k):
                outs = [i for i in range(k) if omask >> i & 1]
                if not _all_reach(k, edges, outs):
                    continue
                indeg = [len(preds[j]) for j in range(k)]
                for roles in itertools.product((Role.ASSISTANT, Role.FUSER), repeat=k):
                    if not _roles_ok(roles, preds):
                        continue
                    for models in itertools.product(range(p), repeat=k):
                        units = sum(cost[m][indeg[i]] for i, m in enumerate(models)) + out_cost[len(outs)]
                        if units > space.budget + 1e-9:
                            continue
                        key = _canonical(perms, models, roles, edges, outs)
                        if key in seen:
                            continue
                        seen.add(key)
                        found.append(space.build([pool[m] for m in models], roles, edges, outs, repair=False))
    return found


def _all_reach(k: int, edges: list[tuple[int, int]], outs: list[int]) -> bool:
    reach = [False] * k
    for i in outs:
        reach[i] = True
    for i in range(k - 1, -1, -1):  # successors have higher indices
        if not reach[i] and any(u == i and reach[v] for u, v in edges):
            reach[i] = True
    return all(reach)


def _roles_ok(roles: Sequence[Role], preds: list[list[int]]) -> bool:
    for j, r in enumerate(roles):
        if r is Role.FUSER and (not preds[j] or any(roles[i] is Role.FUSER for i in preds[j])):
            return False
    return True


def _canonical(perms: list[tuple[int, ...]], models: tuple[int, ...], roles: Sequence[Role],
               edges: list[tuple[int, int]], outs: list[int]) -> tuple:
    best = None
    for perm in perms:
        labels: list[tuple[int, bool] | None] = [None] * len(perm)
        for old, new in enumerate(perm):
            labels[new] = (models[old], roles[old] is Role.FUSER)
        key = (tuple(labels), tuple(sorted((perm[i], perm[j]) for i, j in edges)), tuple(sorted(perm[i] for i in outs)))
        if best is None or key < best:
            best = key
    assert best is not None  # perms is never empty
    return best


def optimum(space: SearchSpace, scorer: ExpectedScorer, questions: Sequence[int] | None = None,
            limit: int = DEFAULT_LIMIT) -> tuple[Graph, float]:
    """The graph of ``space`` with the highest expected accuracy, and that accuracy."""
    if not isinstance(scorer, ExpectedScorer):
        raise ConfigError(f"{type(scorer).__name__} offers no expected() score: regret needs one")
    best_graph, best_value = None, -1.0
    for graph in enumerate_graphs(space, limit):
        value = scorer.expected(graph, questions).accuracy
        if value > best_value:
            best_graph, best_value = graph, value
    assert best_graph is not None  # the space holds at least the lone output node
    return best_graph, best_value


def regret(graph: Graph, space: SearchSpace, scorer: ExpectedScorer, questions: Sequence[int] | None = None,
           optimum_value: float | None = None) -> float:
    """Optimum expected accuracy minus ``graph``'s (>= 0 for any graph of the space)."""
    if optimum_value is None:
        optimum_value = optimum(space, scorer, questions)[1]
    if not isinstance(scorer, ExpectedScorer):
        raise ConfigError(f"{type(scorer).__name__} offers no expected() score: regret needs one")
    return optimum_value - scorer.expected(graph, questions).accuracy
