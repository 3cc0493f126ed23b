"""SimulatedEvaluator: the quality model (accuracy) + the SimPy cluster simulator (latency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.flops import budget_units, graph_flops
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.core.profile import Profile
from tts_sim.stats import wilson_interval
from tts_sim.tasks import TaskSpec, get_task


class SimulatedEvaluator:
    """Scores graphs without running models.

    Accuracy comes from a ``QualityModel`` fitted to ``profile`` (the embedded default scenario
    when None); latency, when a ``cluster`` is given, from a ``ClusterSimulator`` driven by
    ``arrival`` (open loop at 1 query/s by default) over ``n_queries`` queries. ``predictor``: a
    name from ``LATENCY_PREDICTORS`` (default: the profile's measured tables where they cover a
    (model, device) and the roofline calibrated on them otherwise; the roofline without tables).
    ``scheduler``: a name from ``SCHEDULERS`` or ``auto`` (the default: continuous on GPUs, static
    with a CPU) with ``scheduler_options``; ``max_batch``: the scheduler's default when None.
    ``tp``: tensor-parallel degree of every replica (a positive integer or ``"auto"``).
    ``tokens``: the simulator's ``TokenModel``; None builds one from the profile's token statistics
    for the task (sampled reply lengths, template overheads) when it has them, else the paper's counts.
    ``intervals``: also put each result's 95% prediction interval (the fusion fit's coefficient
    uncertainty + the run's noise; ``accuracy_interval``) in its ``meta["accuracy_interval"]``;
    off by default because it costs ~30 extra quality-model runs per evaluation.
    """

    def __init__(
        self,
        task: str | TaskSpec,
        profile: Profile | None = None,
        cluster: Any = None,
        arrival: Any = None,
        n_queries: int = 1000,
        catalog: ModelCatalog = DEFAULT_CATALOG,
        replicates: int = 1,
        max_batch: int | None = None,
        tokens: Any = None,
        intervals: bool = False,
        scheduler: Any = None,
        scheduler_options: dict[str, Any] | None = None,
        predictor: str | None = None,
        tp: int | str | None = 1,
    ) -> None:
        from tts_sim.sim.quality import QualityModel
        from tts_sim.sim.scenario import load_default_profile

        self.task = get_task(task) if isinstance(task, str) else task
        self.catalog = catalog
        self.profile = profile if profile is not None else load_default_profile()
        self.quality = QualityModel.from_profile(self.profile, self.task, catalog)
        self.replicates = replicates
        self.intervals = intervals
        self.n_queries = n_queries
        self.simulator = None
        self.arrival = arrival
        if cluster is not None:
            from tts_sim.sim.cluster import ClusterSimulator, OpenLoop, parse_cluster, token_model_from_profile

            spec = parse_cluster(cluster) if isinstance(cluster, str) else cluster
            if tokens is None:
                tokens = token_model_from_profile(self.profile, self.task.name)
            self.simulator = ClusterSimulator(spec, predictor=self._predictor(predictor), catalog=catalog,
                                              max_batch=max_batch, tokens=tokens, scheduler=scheduler,
                                              scheduler_options=scheduler_options, tp=tp)
            self.arrival = arrival if arrival is not None else OpenLoop(1.0)
        self._latency_cache: dict[tuple[str, int], LatencyStats] = {}  # by (canonical graph key, seed)

    def _predictor(self, name: str | None) -> Any:
        from tts_sim.sim.cluster import predictor_for

        return predictor_for(self.profile, self.catalog, name)

    @property
    def n_questions(self) -> int:
        return self.quality.n_questions

    def latency(self, graph: Graph, seed: int = 0) -> LatencyStats | None:
        """Latency of ``graph`` on the cluster (None without one); cached per (canonical graph key, seed)."""
        if self.simulator is None:
            return None
        key = (graph_key(graph), seed)
        if key not in self._latency_cache:
            result = self.simulator.simulate(graph, self.task, self.arrival, self.n_queries, seed=seed)
            if len(self._latency_cache) >= 4096:  # bounded: long benches score many distinct graphs
                self._latency_cache.pop(next(iter(self._latency_cache)))
            self._latency_cache[key] = result.latency
        return self._latency_cache[key]

    def evaluate(self, graph: Graph, questions: Sequence[int] | None = None, *,
                 seed: int | None = None) -> Evaluation:
        qs = tuple(range(self.n_questions)) if questions is None else tuple(int(q) for q in questions)
        per_q = self.quality.predict(graph, qs, seed=seed, replicates=self.replicates)
        return self._evaluation(graph, qs, per_q, seed, {"mode": "sampled", "replicates": self.replicates})

    def expected(self, graph: Graph, questions: Sequence[int] | None = None) -> Evaluation:
        """Noise-free score: per-question probabilities of a correct answer (for regret)."""
        qs = tuple(range(self.n_questions)) if questions is None else tuple(int(q) for q in questions)
        return self._evaluation(graph, qs, self.quality.expected(graph, qs), 0, {"mode": "expected"})

    def expected_accuracy(self, graph: Graph, questions: Sequence[int] | None = None) -> float:
        """``expected(...).accuracy`` without the latency simulation (for the break-even presets)."""
        qs = tuple(range(self.n_questions)) if questions is None else tuple(int(q) for q in questions)
        return float(np.mean(self.quality.expected(graph, qs))) if qs else 0.0

    def accuracy_interval(self, graph: Graph, questions: Sequence[int] | None = None, level: float = 0.95) -> Any:
        """A ``PredictionInterval``: where one evaluation's accuracy is predicted to fall, the fusion
        fit's coefficient uncertainty included (``tts_sim.sim.quality.interval``)."""
        qs = tuple(range(self.n_questions)) if questions is None else tuple(int(q) for q in questions)
        return self.quality.prediction_interval(graph, qs, level=level)

    def _evaluation(self, graph: Graph, qs: tuple[int, ...], per_q: np.ndarray, seed: int | None,
                    meta: dict[str, Any]) -> Evaluation:
        n = len(qs)
        if self.intervals and n:
            meta = {**meta, "accuracy_interval": self.accuracy_interval(graph, qs).to_dict()}
        accuracy = float(np.mean(per_q)) if n else 0.0
        low, high = wilson_interval(accuracy * n, n)
        flops = graph_flops(graph, self.task, self.catalog)
        return Evaluation(
            graph=graph, task=self.task.name, accuracy=accuracy, ci_low=low, ci_high=high, n_questions=n,
            flops=flops, budget_units=budget_units(flops, self.task, self.catalog),
            per_question=tuple(float(x) for x in per_q), questions=qs,
            latency=self.latency(graph, seed or 0), source="simulated",
            meta={**meta, "profile": self.profile.label, "scenario": bool(self.profile.metadata.get("scenario"))},
        )
