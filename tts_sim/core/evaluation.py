"""The Evaluator protocol and what it returns.

Searchers call ``Evaluator.evaluate`` and never learn whether it is simulated or real.
Questions are indices into the evaluator's question pool; ``split_questions`` makes the
disjoint search / held-out splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.core.models import ModelCatalog
from tts_sim.tasks import TaskSpec


@dataclass(frozen=True)
class LatencyStats:
    """Per-query latency of a graph on a cluster under a load."""

    mean_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    throughput_qps: float
    n_queries: int
    utilisation: dict[str, float] = field(default_factory=dict)  # device name -> busy fraction
    predictor: str = ""  # which latency predictor produced the service times
    cluster: str = ""
    load: str = ""  # the load it assumed: "open loop, 4 queries/s" | "closed loop, 16 in flight"
    offered_qps: float | None = None  # open-loop rate (None: closed loop)
    overloaded: bool = False  # the cluster cannot keep up: percentiles grow with n_queries
    overload_reason: str = ""
    latency_growth: float = 0.0  # seconds the mean latency rises along the run (trend line)
    scheduler: str = ""  # batching policy (static | continuous)
    kv_peak: dict[str, float] = field(default_factory=dict)  # device -> peak fraction of KV memory used
    preemptions: int = 0
    prefill_tokens: int = 0  # prompt tokens prefilled
    prefill_tokens_saved: int = 0  # prompt tokens prefix caching did not prefill again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """A graph's score on some questions of a task."""

    graph: Graph
    task: str
    accuracy: float
    ci_low: float
    ci_high: float
    n_questions: int
    flops: float
    budget_units: float
    per_question: tuple[float, ...] = ()  # correctness (0/1) or probability, aligned with ``questions``
    questions: tuple[int, ...] = ()
    latency: LatencyStats | None = None
    source: str = "simulated"  # "simulated" | "real"
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, per_question: bool = False) -> dict[str, Any]:
        out = {
            "task": self.task, "accuracy": self.accuracy, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "n_questions": self.n_questions, "flops": self.flops, "budget_units": self.budget_units,
            "latency": self.latency.to_dict() if self.latency else None, "source": self.source,
            "meta": self.meta, "graph": self.graph.to_dict(),
        }
        if per_question:
            out["per_question"] = list(self.per_question)
            out["questions"] = list(self.questions)
        return out


@runtime_checkable
class Evaluator(Protocol):
    """Scores graphs. ``n_questions`` is the size of its question pool (indices 0..n-1)."""

    task: TaskSpec
    catalog: ModelCatalog

    @property
    def n_questions(self) -> int: ...

    def evaluate(self, graph: Graph, questions: Sequence[int] | None = None, *,
                 seed: int | None = None) -> Evaluation:
        """Score ``graph`` on ``questions`` (all when None); ``seed`` fixes sampling noise."""
        ...


def split_questions(n: int, search: int, seed: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Disjoint (search, held-out) question index splits of a pool of ``n``, shuffled by ``seed``."""
    if not 0 < search < n:
        raise ValueError(f"search split must hold between 1 and {n - 1} questions, got {search}")
    perm = np.random.default_rng(seed).permutation(n)
    return tuple(int(i) for i in perm[:search]), tuple(int(i) for i in perm[search:])
