"""Deterministic fake evaluator for search tests and benchmarks (no profile, no simulator).

Expected accuracy is a smooth made-up function of the graph: each node's accuracy comes from its
model's published accuracy and its predecessors' accuracies (ensemble gain that saturates with
width, a context penalty for small models reading many answers, a bonus for diverse inputs, a small
fuser bonus when merging several answers), and deep chains lose accuracy. Per-question
probabilities add a fixed difficulty per question; sampled correctness is Bernoulli, seeded.
Latency (optional) is the critical path of per-node service times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.flops import budget_units, graph_flops
from tts_sim.core.graph import Graph, Role
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.stats import wilson_interval
from tts_sim.tasks import TaskSpec, get_task


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class FakeEvaluator:
    """``fail_after``: raise after that many ``evaluate`` calls (to test checkpoints)."""

    def __init__(self, task: str | TaskSpec = "math", n_questions: int = 400, *, latency: bool = False,
                 fail_after: int | None = None, catalog: ModelCatalog = DEFAULT_CATALOG) -> None:
        self.task = get_task(task) if isinstance(task, str) else task
        self.catalog = catalog
        self._n = n_questions
        self.latency = latency
        self.fail_after = fail_after
        self.calls = 0
        self.difficulty = np.random.default_rng(12345).normal(0.0, 0.8, n_questions)
        self.gain = 0.5 if self.task.kind == "math" else 0.15

    @property
    def n_questions(self) -> int:
        return self._n

    def base(self, model: str) -> float:
        return self.task.published_accuracy.get(model, 0.3)

    def quality(self, graph: Graph) -> float:
        """Noise-free graph accuracy before per-question difficulty."""
        acc: dict[str, float] = {}
        for nid in graph.executed:
            node = graph.node(nid)
            own = self.base(node.model)
            preds = graph.predecessors(nid)
            if not preds:
                acc[nid] = own
                continue
            q = np.array([acc[p] for p in preds])
            k = len(q)
            mean, best = float(q.mean()), float(q.max())
            vote = mean + self.gain * (1 - mean) * mean * (1 - math.exp(-(k - 1) / 2.0))
            read = vote + (best - vote) * own * 0.5  # stronger readers pick out the best answer
            penalty = 0.03 * (k - 1) * (1 - own) ** 2  # long contexts hurt weak models
            diverse = 0.02 * (len({graph.node(p).model for p in preds}) - 1) / k if k > 1 else 0.0
            fuse = (0.02 if k >= 2 else -0.03) if node.role is Role.FUSER else 0.0
            acc[nid] = 0.6 * read + 0.4 * max(read, own) - penalty + diverse + fuse
        depth_penalty = 0.04 * max(0, graph.depth - 2)
        return float(np.clip(acc[graph.output] - depth_penalty, 0.02, 0.98))

    def probabilities(self, graph: Graph, questions: Sequence[int]) -> np.ndarray:
        z = _logit(self.quality(graph)) - self.difficulty[np.asarray(questions, dtype=int)]
        return 1.0 / (1.0 + np.exp(-z))

    def latency_of(self, graph: Graph) -> LatencyStats:
        finish: dict[str, float] = {}
        for nid in graph.executed:
            size = self.catalog[graph.node(nid).model].m_flops / 1e9
            own = 0.4 * math.sqrt(size) * (1 + 0.25 * graph.in_degree(nid))
            finish[nid] = own + max((finish[p] for p in graph.predecessors(nid)), default=0.0)
        mean = finish[graph.output]
        return LatencyStats(mean, mean, 1.3 * mean, 1.5 * mean, 1.0 / mean, 100, predictor="fake", cluster="fake")

    def _evaluation(self, graph: Graph, qs: tuple[int, ...], per_q: np.ndarray) -> Evaluation:
        n = len(qs)
        accuracy = float(per_q.mean()) if n else 0.0
        low, high = wilson_interval(accuracy * n, n)
        flops = graph_flops(graph, self.task, self.catalog)
        return Evaluation(graph=graph, task=self.task.name, accuracy=accuracy, ci_low=low, ci_high=high,
                          n_questions=n, flops=flops, budget_units=budget_units(flops, self.task, self.catalog),
                          per_question=tuple(float(x) for x in per_q), questions=qs,
                          latency=self.latency_of(graph) if self.latency else None, source="fake")

    def evaluate(self, graph: Graph, questions: Sequence[int] | None = None, *,
                 seed: int | None = None) -> Evaluation:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError(f"fake evaluator interrupted after {self.fail_after} calls")
        qs = tuple(range(self._n)) if questions is None else tuple(int(q) for q in questions)
        p = self.probabilities(graph, qs)
        u = np.random.default_rng(seed).random(self._n)[np.asarray(qs, dtype=int)]
        return self._evaluation(graph, qs, (u < p).astype(float))

    def expected(self, graph: Graph, questions: Sequence[int] | None = None) -> Evaluation:
        qs = tuple(range(self._n)) if questions is None else tuple(int(q) for q in questions)
        return self._evaluation(graph, qs, self.probabilities(graph, qs))
