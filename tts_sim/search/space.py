"""The search space: task, budget, model pool, node slots, output node; and the paper's
probabilistic graph (edge probabilities, per-slot model and role distributions) with constrained
sampling.

Worker nodes live in ``max_nodes`` slots called ``n0 .. n{K-1}``; an edge may only run from a lower
slot to a higher one (so every sample is a DAG). The output node ``out`` is an assistant running
``output_model``. Every graph a searcher proposes goes through ``SearchSpace.repair``: dead nodes
pruned, role rules restored, nodes removed (smallest model first) until the FLOPs budget fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_sim.core.edits import fix_roles
from tts_sim.core.edits import repair as repair_to_budget
from tts_sim.core.flops import budget_units, cheapest_graph_units, graph_flops, is_feasible, node_flops
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.models import DEFAULT_CATALOG, DEFAULT_OUTPUT_MODEL, PAPER_POOL, ModelCatalog
from tts_sim.errors import BudgetError, ConfigError, GraphError
from tts_sim.tasks import TaskSpec, get_task

OUTPUT_ID = "out"


def slot_id(i: int) -> str:
    return f"n{i}"


#: Most worker slots a space may have (encodings are K x K; the paper searched 8).
MAX_SLOTS = 64



@dataclass(frozen=True, eq=False)
class SearchSpace:
    """What a searcher may build. ``budget`` is in budget units (multiples of one direct
    LLaMA-1B call on the task); ``max_nodes`` counts worker nodes, the output node excluded."""

    task: TaskSpec
    budget: float
    pool: tuple[str, ...] = PAPER_POOL
    max_nodes: int = 8
    output_model: str = DEFAULT_OUTPUT_MODEL
    catalog: ModelCatalog = field(default=DEFAULT_CATALOG, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.task, str):
            object.__setattr__(self, "task", get_task(self.task))
        object.__setattr__(self, "pool", tuple(self.pool))
        if not self.pool:
            raise ConfigError("search space: the model pool is empty")
        if len(set(self.pool)) != len(self.pool):
            raise ConfigError(f"search space: the model pool lists a model twice: {', '.join(self.pool)}")
        for m in (*self.pool, self.output_model):
            self.catalog[m]  # ConfigError naming the unknown model
        if (not isinstance(self.max_nodes, int) or isinstance(self.max_nodes, bool)
                or not 1 <= self.max_nodes <= MAX_SLOTS):
            raise ConfigError(f"search space: max_nodes must be an integer from 1 to {MAX_SLOTS}, "
                              f"got {self.max_nodes!r}")
        try:
            budget = float(self.budget)
        except (TypeError, ValueError):
            raise ConfigError(f"search space: budget must be a number of units, got {self.budget!r}") from None
        if not math.isfinite(budget) or budget <= 0:
            raise BudgetError(f"budget must be a positive number of units, got {self.budget!r}")
        object.__setattr__(self, "budget", budget)
        cheapest = cheapest_graph_units(self.task, self.output_model, self.catalog)
        if budget < cheapest - 1e-9:
            raise BudgetError(f"budget {budget:g} units is below the cheapest valid graph on {self.task.name} "
                              f"({cheapest:.2f} units: a lone {self.output_model} output node)")

    # ----- costs ----------------------------------------------------------------------------
    def units(self, graph: Graph) -> float:
        return budget_units(graph_flops(graph, self.task, self.catalog), self.task, self.catalog)

    def flops(self, graph: Graph) -> float:
        return graph_flops(graph, self.task, self.catalog)

    def node_units(self, model: str, in_degree: int = 0) -> float:
        """Cost in units of one call of ``model`` with ``in_degree`` predecessor answers."""
        return budget_units(node_flops(self.catalog[model], self.task, in_degree), self.task, self.catalog)

    def feasible(self, graph: Graph) -> bool:
        return is_feasible(graph, self.task, self.budget, self.catalog)

    # ----- membership and repair ------------------------------------------------------------
    def check(self, graph: Graph) -> None:
        """Raise ``GraphError`` if ``graph`` lies outside the space (budget aside)."""
        out = graph.node(graph.output)
        if out.model != self.output_model:
            raise GraphError(f"output node {out.id!r} runs {out.model}; the space's output model is "
                             f"{self.output_model}")
        workers = [n for n in graph.nodes if n.id != graph.output and n.id in graph.levels]
        if len(workers) > self.max_nodes:
            raise GraphError(f"graph has {len(workers)} executed worker nodes, the space allows {self.max_nodes}")
        for n in workers:
            if n.model not in self.pool:
                raise GraphError(f"node {n.id!r}: model {n.model} is not in the pool ({', '.join(self.pool)})")

    def repair(self, graph: Graph) -> Graph:
        """Prune dead nodes and remove nodes (smallest model first) until the budget fits."""
        return repair_to_budget(graph, self.task, self.budget, self.catalog)

    def lone_output(self) -> Graph:
        """The cheapest graph of the space: the output node answering alone."""
        return Graph.build([Node(OUTPUT_ID, Role.ASSISTANT, self.output_model)], [], OUTPUT_ID, self.catalog)

    def build(self, models: Sequence[str | None], roles: Sequence[Role | str], edges: Sequence[tuple[int, int]],
              to_output: Sequence[int], *, repair: bool = True) -> Graph:
        """A graph from slot contents (``None`` = empty slot), slot edges ``(i, j)`` with ``i < j``
        and the slots feeding the output. Edges touching empty slots are dropped, dead nodes pruned,
        role rules restored (``fix_roles``); then, if ``repair``, the budget is enforced."""
        if len(models) > self.max_nodes:
            raise GraphError(f"{len(models)} slots given, the space has {self.max_nodes}")
        active = {i for i, m in enumerate(models) if m is not None}
        edge_set = {(slot_id(i), slot_id(j)) for i, j in edges if i < j and i in active and j in active}
        edge_set |= {(slot_id(i), OUTPUT_ID) for i in to_output if i in active}
        nodes = [Node(slot_id(i), Role(roles[i]), str(models[i])) for i in sorted(active)]
        nodes.append(Node(OUTPUT_ID, Role.ASSISTANT, self.output_model))
        nodes = fix_roles(nodes, edge_set)
        live = _reaching(OUTPUT_ID, edge_set)
        nodes = [n for n in nodes if n.id in live]
        edge_set = {e for e in edge_set if e[0] in live and e[1] in live}
        graph = Graph.build(nodes, edge_set, OUTPUT_ID, self.catalog)
        return self.repair(graph) if repair else graph

    # ----- description ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"task": self.task.name, "budget_units": self.budget, "pool": list(self.pool),
                "max_nodes": self.max_nodes, "output_model": self.output_model}

    @classmethod
    def from_reference(cls, task: str | TaskSpec, b: int, **kwargs: Any) -> SearchSpace:
        """Budget given as the original code did: ``b`` LLaMA-1B nodes fully connected plus the output."""
        from tts_sim.core.flops import reference_budget_units

        spec = get_task(task) if isinstance(task, str) else task
        return cls(spec, reference_budget_units(b, spec, kwargs.get("catalog", DEFAULT_CATALOG)), **kwargs)


def _reaching(target: str, edges: set[tuple[str, str]]) -> set[str]:
    preds: dict[str, list[str]] = {}
    for u, v in edges:
        preds.setdefault(v, []).append(u)
    seen, stack = {target}, [target]
    while stack:
        for p in preds.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


@dataclass
class ProbabilisticGraph:
    """The paper's distribution over graphs of a space.

    ``edge_p[i, j]`` (i < j < K) is the probability of slot edge i -> j and ``edge_p[i, K]`` that of
    i -> output; ``model_p[i]`` is a distribution over ``(empty, *pool)`` for slot i; ``fuser_p[i]`` the
    probability that slot i is a fuser (kept only where the role rules allow it).
    """

    edge_p: np.ndarray
    model_p: np.ndarray
    fuser_p: np.ndarray

    def __post_init__(self) -> None:
        k = self.model_p.shape[0]
        if self.edge_p.shape != (k, k + 1) or self.fuser_p.shape != (k,):
            raise ConfigError(f"probabilistic graph: shapes {self.edge_p.shape}, {self.model_p.shape}, "
                              f"{self.fuser_p.shape} do not agree")

    @classmethod
    def uniform(cls, space: SearchSpace, edge_p: float = 0.3, fuser_p: float = 0.2,
                empty_p: float | None = None) -> ProbabilisticGraph:
        """Every slot equally likely to hold any pool model (or be empty with ``empty_p``)."""
        k, p = space.max_nodes, len(space.pool)
        empty = 1.0 / (p + 1) if empty_p is None else empty_p
        model_p = np.full((k, p + 1), (1.0 - empty) / p)
        model_p[:, 0] = empty
        return cls(_edge_matrix(k, edge_p), model_p, np.full(k, fuser_p))

    @classmethod
    def for_mix(cls, space: SearchSpace, models: Sequence[str], edge_p: float = 0.3,
                fuser_p: float = 0.2) -> ProbabilisticGraph:
        """Slots 0..len(models)-1 hold exactly ``models``; the others stay empty."""
        k, pool = space.max_nodes, list(space.pool)
        if len(models) > k:
            raise ConfigError(f"mix of {len(models)} models does not fit {k} slots")
        model_p = np.zeros((k, len(pool) + 1))
        model_p[:, 0] = 1.0
        for i, m in enumerate(models):
            if m not in pool:
                raise ConfigError(f"mix model {m!r} is not in the pool ({', '.join(pool)})")
            model_p[i, 0] = 0.0
            model_p[i, pool.index(m) + 1] = 1.0
        return cls(_edge_matrix(k, edge_p), model_p, np.full(k, fuser_p))

    def sample_slots(self, space: SearchSpace, rng: np.random.Generator) -> tuple[
            list[str | None], list[Role], list[tuple[int, int]], list[int]]:
        """Constrained sample: models, then forward edges, then every sink feeds the output (no
        dead node), then roles under the rules (a fuser needs an assistant predecessor and never
        follows a fuser)."""
        k: int = self.model_p.shape[0]
        pool = (None, *space.pool)
        models: list[str | None] = [pool[int(rng.choice(len(pool), p=self.model_p[i]))] for i in range(k)]
        active = [i for i in range(k) if models[i] is not None]
        draws = rng.random((k, k + 1))
        edges = [(i, j) for a, i in enumerate(active) for j in active[a + 1:] if draws[i, j] < self.edge_p[i, j]]
        has_succ = {i for i, _ in edges}
        to_out = [i for i in active if draws[i, k] < self.edge_p[i, k] or i not in has_succ]
        role_draw = rng.random(k)
        roles = [Role.ASSISTANT] * k
        for j in active:  # slots in order: predecessors' roles are already settled
            preds = [i for i, jj in edges if jj == j]
            if preds and role_draw[j] < self.fuser_p[j] and all(roles[i] is Role.ASSISTANT for i in preds):
                roles[j] = Role.FUSER
        return models, roles, edges, to_out

    def sample(self, space: SearchSpace, rng: np.random.Generator, *, repair: bool = True) -> Graph:
        """A valid graph drawn from the distribution (budget-repaired unless ``repair=False``)."""
        return space.build(*self.sample_slots(space, rng), repair=repair)

    def edge_table(self, models: Sequence[str | None] | None = None) -> dict[str, float]:
        """Edge probabilities as ``{"u->v": p}`` over non-empty slots (all slots when ``models`` is None)."""
        k = self.model_p.shape[0]
        live = [i for i in range(k) if models is None or (i < len(models) and models[i] is not None)]
        table = {f"{slot_id(i)}->{slot_id(j)}": float(self.edge_p[i, j])
                 for a, i in enumerate(live) for j in live[a + 1:]}
        table.update({f"{slot_id(i)}->{OUTPUT_ID}": float(self.edge_p[i, k]) for i in live})
        return table


def _edge_matrix(k: int, p: float) -> np.ndarray:
    m = np.zeros((k, k + 1))
    for i in range(k):
        m[i, i + 1:] = p
    return m


def edge_table_text(table: Mapping[str, float]) -> str:
    """The table as the agent reads it: one ``u -> v: p`` line per edge."""
    return "\n".join(f"{k.replace('->', ' -> ')}: {v:.2f}" for k, v in table.items())
