"""``RealEvaluator``: the ``Evaluator`` protocol on real model calls (``GraphExecutor`` on a ``Backend``).

Questions are indices into the task's question pool (``load_questions``). Queries run one after
another (a closed loop with one query in flight), so the measured per-query latency is the graph's
own latency on the backend with no queueing; ``LatencyStats.predictor`` is ``"measured"`` and
``cluster`` names the device that served the models. FLOPs and budget units follow the paper's
formula with the task's average token counts (as in the simulator); ``meta["measured_flops"]`` is
the same formula on the tokens each call really had.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.core.backend import Backend
from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.flops import budget_units, graph_flops
from tts_sim.core.graph import Graph
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.core.prompts import PromptTemplates
from tts_sim.errors import ConfigError
from tts_sim.real.executor import GraphExecutor, GraphRun
from tts_sim.stats import wilson_interval
from tts_sim.tasks import Question, TaskSpec, get_task, load_questions
from tts_sim.tasks.graders import Grader


def latency_stats(latencies: Sequence[float], cluster: str, busy_s: float | None = None) -> LatencyStats:
    """Measured per-query latency statistics (queries run back to back: throughput = n / total time)."""
    arr = np.asarray(latencies, dtype=float)
    if arr.size == 0:
        raise ConfigError("no query latencies to summarise")
    span = float(arr.sum()) if busy_s is None else busy_s
    p50, p95, p99 = (float(x) for x in np.percentile(arr, [50, 95, 99]))
    return LatencyStats(mean_s=float(arr.mean()), p50_s=p50, p95_s=p95, p99_s=p99,
                        throughput_qps=arr.size / span if span > 0 else float("inf"), n_queries=int(arr.size),
                        predictor="measured", cluster=cluster)


def node_call_flops(catalog: ModelCatalog, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The paper's FLOPs of one call with the real token counts (None for a model not in the catalog)."""
    if model not in catalog:
        return None
    spec = catalog[model]
    m, layers, hidden = spec.m_flops, spec.layers, spec.hidden
    n_p, n_d = prompt_tokens, completion_tokens
    return (2 * m * n_p + 2 * layers * hidden * n_p * (n_p + 1)
            + 2 * m * n_d + 2 * layers * hidden * n_d * (2 * n_p + n_d + 1))


class RealEvaluator:
    """Scores graphs by running them. ``task`` names the task (or is a ``TaskSpec``; a task with no
    registered spec needs ``spec`` for FLOPs). The question pool is ``questions`` if given, else
    ``load_questions(task, data, limit)``. ``model_map`` maps catalog names in graphs to backend names."""

    def __init__(self, task: str | TaskSpec, backend: Backend, *, model_map: Mapping[str, str] | None = None,
                 data: str | Path | None = None, limit: int | None = None,
                 questions: Sequence[Question] | None = None, spec: TaskSpec | None = None,
                 max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 1.0, seed: int = 0,
                 catalog: ModelCatalog = DEFAULT_CATALOG, grader: Grader | None = None,
                 templates: PromptTemplates | None = None, parallel_models: bool | None = None,
                 keep_runs: bool = True, progress: Callable[[str], None] | None = None) -> None:
        name = task.name if isinstance(task, TaskSpec) else str(task)
        if spec is None:
            spec = task if isinstance(task, TaskSpec) else get_task(name)
        self.task: TaskSpec = spec
        self.catalog = catalog
        self.backend = backend
        self.pool: list[Question] = list(questions) if questions is not None else load_questions(name, data, limit)
        if not self.pool:
            raise ConfigError(f"{name}: empty question pool")
        self.seed = seed
        self.executor = GraphExecutor(backend, name, grader=grader, templates=templates, model_map=model_map,
                                      max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                      seed=seed, parallel_models=parallel_models)
        self.keep_runs = keep_runs
        self.runs: list[GraphRun] = []  # the last evaluate call's runs (when keep_runs)
        self.progress = progress
        self._info: dict[str, dict[str, Any]] = {}

    @property
    def n_questions(self) -> int:
        return len(self.pool)

    @property
    def model_map(self) -> dict[str, str]:
        return dict(self.executor.model_map)

    def backend_info(self, graph: Graph) -> dict[str, dict[str, Any]]:
        """``BackendInfo`` (as dicts) of every backend model the graph uses, by backend model name."""
        out = {}
        for model in sorted({self.executor.backend_model(graph.node(n).model) for n in graph.executed}):
            if model not in self._info:
                info = self.backend.info(model)
                self._info[model] = {"backend": info.backend, "version": info.version, "provider": info.provider,
                                     "device": info.device, "model": info.model, "quantization": info.quantization}
            out[model] = self._info[model]
        return out

    def evaluate(self, graph: Graph, questions: Sequence[int] | None = None, *,
                 seed: int | None = None) -> Evaluation:
        qs = tuple(range(self.n_questions)) if questions is None else tuple(int(q) for q in questions)
        bad = [q for q in qs if not 0 <= q < self.n_questions]
        if bad:
            raise ConfigError(f"question index {bad[0]} outside 0..{self.n_questions - 1} of task {self.task.name!r}")
        if not qs:
            raise ConfigError("evaluate needs at least one question")
        info = self.backend_info(graph)
        seed = self.seed if seed is None else seed
        runs: list[GraphRun] = []
        start = time.perf_counter()
        for i, q in enumerate(qs):
            runs.append(self.executor.run(graph, self.pool[q], seed=seed))
            if self.progress is not None:
                self.progress(f"question {i + 1}/{len(qs)}: {'correct' if runs[-1].correct else 'wrong'} "
                              f"({runs[-1].wall_s:.2f} s)")
        elapsed = time.perf_counter() - start
        self.runs = runs if self.keep_runs else []
        per_q = tuple(1.0 if r.correct else 0.0 for r in runs)
        n = len(per_q)
        accuracy = sum(per_q) / n
        low, high = wilson_interval(sum(per_q), n)
        flops = graph_flops(graph, self.task, self.catalog)
        devices = sorted({d["device"] for d in info.values()})
        latency = latency_stats([r.wall_s for r in runs], ", ".join(devices))
        return Evaluation(
            graph=graph, task=self.task.name, accuracy=accuracy, ci_low=low, ci_high=high, n_questions=n,
            flops=flops, budget_units=budget_units(flops, self.task, self.catalog), per_question=per_q,
            questions=qs, latency=latency, source="real", meta={
                "backend": info, "model_map": {m: self.executor.backend_model(m)
                                               for m in sorted({graph.node(x).model for x in graph.executed})},
                "seed": seed, "max_new_tokens": self.executor.max_new_tokens,
                "temperature": self.executor.temperature, "top_p": self.executor.top_p, "wall_s": elapsed,
                "question_ids": [self.pool[q].id for q in qs], **run_summary(runs, self.catalog),
            })


def run_summary(runs: Sequence[GraphRun], catalog: ModelCatalog = DEFAULT_CATALOG) -> dict[str, Any]:
    """Token and timing figures of a set of runs: means per call and per query, by prompt kind."""
    calls = [t for r in runs for t in r.nodes]
    if not calls:
        return {}
    by_kind: dict[str, list] = {}
    for t in calls:
        by_kind.setdefault(t.kind, []).append(t)
    flops = [node_call_flops(catalog, t.backend_model, t.prompt_tokens, t.completion_tokens) for t in calls]
    known_flops = [f for f in flops if f is not None]
    return {
        "mean_prompt_tokens": float(np.mean([t.prompt_tokens for t in calls])),
        "mean_completion_tokens": float(np.mean([t.completion_tokens for t in calls])),
        "mean_direct_prompt_tokens": (float(np.mean([t.prompt_tokens for t in by_kind["direct"]]))
                                      if "direct" in by_kind else None),
        "truncated_calls": sum(t.finish_reason == "length" for t in calls),
        "calls": len(calls),
        "by_kind": {k: {"calls": len(v), "prompt_tokens": float(np.mean([t.prompt_tokens for t in v])),
                        "completion_tokens": float(np.mean([t.completion_tokens for t in v]))}
                    for k, v in sorted(by_kind.items())},
        "measured_flops": (float(sum(known_flops)) / len(runs)) if len(known_flops) == len(flops) else None,
    }
