"""Validate the simulator: run graphs for real and compare with what it predicted.

For each candidate graph (the top-k of a search result, or given graph files):

- **predicted**: the ``SimulatedEvaluator`` on a profile: expected accuracy (noise-free) with the 95%
  interval a run on the same number of questions would fall in, and per-query latency on a cluster
  (``cpu`` by default) in a closed loop with one query in flight (as the real runs are made);
- **measured**: the ``RealEvaluator`` on held-out questions (not in the profile): accuracy with its
  Wilson interval, per-query latency mean and p95;
- the relative errors of the latencies and, across graphs, Spearman's rank correlation of predicted
  and measured accuracy (and latency).

Graph models are catalog names; a ``model_map`` (e.g. every model -> ``smollm2-135m``) says which real
model runs each one. Latency is always predicted for the mapped graph (what really runs); accuracy for
the mapped graph when the profile has answer banks for its models (a measured profile), else for the
original graph (e.g. the default scenario), and the report says which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tts_sim.core.evaluation import Evaluation
from tts_sim.core.graph import Graph, Node
from tts_sim.core.identity import graph_key
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.core.profile import Profile
from tts_sim.errors import ConfigError, GraphError
from tts_sim.jsonio import read_json
from tts_sim.stats import spearman, wilson_interval
from tts_sim.tasks.spec import TaskSpec


# ----- candidates -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    graph: Graph
    origin: str  # file (and trial) it came from
    score: float | None = None  # search-time score, when known


def load_candidates(paths: Sequence[str | Path], top_k: int, catalog: ModelCatalog = DEFAULT_CATALOG
                    ) -> list[Candidate]:
    """Graphs to validate from search results (their top-k trials by score), graph files, or JSON lists of
    graphs / ``{"graph": ..., "score": ...}`` objects; the best ``top_k`` distinct graphs overall."""
    if top_k < 1:
        raise ConfigError(f"top-k must be >= 1, got {top_k}")
    if not paths:
        raise ConfigError("no search result or graph file given")
    found: list[Candidate] = []
    for path in paths:
        found.extend(_candidates_in(Path(path), top_k, catalog))
    ranked = sorted(enumerate(found), key=lambda ic: (ic[1].score is None, -(ic[1].score or 0.0), ic[0]))
    out: list[Candidate] = []
    seen: set[str] = set()
    for _, c in ranked:
        key = graph_key(c.graph)
        if key not in seen:
            seen.add(key)
            out.append(c)
        if len(out) == top_k:
            break
    return out


def _candidates_in(path: Path, top_k: int, catalog: ModelCatalog) -> list[Candidate]:
    from tts_sim.search.result import SCHEMA as RESULT_SCHEMA
    from tts_sim.search.result import SearchResult

    data = read_json(path, "candidate file")
    if isinstance(data, dict) and data.get("schema") == RESULT_SCHEMA:
        result = SearchResult.from_dict(data, catalog, origin=str(path))
        return [Candidate(t.graph, f"{path}#trial{t.index}", float(t.score)) for t in result.top_k(top_k)]
    if isinstance(data, dict) and "nodes" in data:
        return [Candidate(Graph.from_dict(data, catalog), str(path))]
    items = data.get("trials", data.get("evaluations")) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{path}: neither a search result, a graph, nor a list of graphs")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: item #{i} is not an object")
        graph_data = item.get("graph", item)
        try:
            graph = Graph.from_dict(graph_data, catalog)
        except GraphError as exc:
            raise GraphError(f"{path}: item #{i}: {exc}") from None
        score = item.get("score", item.get("accuracy"))
        out.append(Candidate(graph, f"{path}#{i}", float(score) if isinstance(score, (int, float)) else None))
    return out


# ----- model maps -----------------------------------------------------------------------------------
def parse_model_map(text: str | None) -> dict[str, str]:
    """``"llama-3.2-1b=smollm2-135m,gemma-3-1b=gemma-3-270m"`` -> a dict."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"bad model-map item {item!r} (expected CATALOG_MODEL=REAL_MODEL)")
        out[src.strip()] = dst.strip()
    return out


def build_model_map(graphs: Sequence[Graph], mapping: Mapping[str, str] | None = None,
                    substitute: str | None = None) -> dict[str, str]:
    """Every model of ``graphs`` -> the real model that runs it (``substitute`` for all, else ``mapping``,
    else itself)."""
    models = sorted({g.node(n).model for g in graphs for n in g.executed})
    mapping = dict(mapping or {})
    return {m: substitute or mapping.get(m, m) for m in models}


def map_graph(graph: Graph, model_map: Mapping[str, str], catalog: ModelCatalog = DEFAULT_CATALOG) -> Graph:
    """The graph with every node's model replaced by its image under ``model_map``."""
    nodes = [Node(n.id, n.role, model_map.get(n.model, n.model)) for n in graph.nodes]
    return Graph.build(nodes, graph.edges, graph.output, catalog)


# ----- settings shared by the commands that run graphs for real against a profile (validate, fidelity) -----
def task_spec_for(profile: Profile, task: str) -> tuple[TaskSpec, bool]:
    """The task's spec with the A and B the profile measured (when it has token statistics for the
    task), and whether it had them."""
    from tts_sim.real.profiling.run import measured_task_spec
    from tts_sim.tasks import get_task

    has_stats = bool(profile.metadata.get("token_stats", {}).get(task))
    return (measured_task_spec(profile, task) if has_stats else get_task(task)), has_stats


def sampling_settings(profile: Profile, max_new_tokens: int | None, temperature: float | None,
                      top_p: float | None = None) -> tuple[int, float, float]:
    """Max new tokens, temperature and top-p: as given, else the (measured) profile's, else 256, 0.7 and 1.0
    (a real run samples as the profile it is compared with did)."""
    profiled = profile.metadata.get("config", {}) if profile.metadata.get("measured") else {}
    max_new = max_new_tokens or int(profiled.get("max_new_tokens", 256))
    temperature = temperature if temperature is not None else float(profiled.get("temperature", 0.7))
    return max_new, temperature, top_p if top_p is not None else float(profiled.get("top_p", 1.0))


def engine_batching(backend: Any) -> dict[str, Any]:
    """How the real backend batches, as ``latency_simulator`` takes it: its batch limit (None: the
    scheduler's default) and whether it batches equal prompts only."""
    return {"max_batch": getattr(backend, "max_batch", None),
            "same_prompt_only": bool(getattr(backend, "equal_prompt_batches", False))}


def latency_simulator(profile: Profile, spec: TaskSpec, *, cluster: str, tokens: str, n_questions: int,
                      max_batch: int | None, catalog: ModelCatalog = DEFAULT_CATALOG,
                      same_prompt_only: bool = False) -> tuple[Any, str]:
    """A ``SimulatedEvaluator`` that predicts what the real runs measure (``cluster`` in a closed loop
    with one query in flight), and the token lengths it uses: ``tokens`` = ``sampled`` or ``mean``
    reply lengths from the profile's token statistics (with template overheads), or ``paper`` (A + d*B
    and B; also what profiles without token statistics give). ``same_prompt_only``: the real engine
    batches equal prompts only (the backend's ``equal_prompt_batches``); a static-batching cluster
    then serves a query's fusion nodes one at a time, as the engine does."""
    from tts_sim.sim.cluster import ClosedLoop, TokenModel, parse_cluster, token_model_from_profile
    from tts_sim.sim.cluster.schedulers import resolve_auto
    from tts_sim.sim.evaluator import SimulatedEvaluator

    model = None if tokens == "paper" else token_model_from_profile(profile, spec.name, tokens == "sampled")
    # sampled reply lengths make latency a distribution: enough simulated queries to pin its p50 and p95
    n_sim = max(20, n_questions) if model is None or not model.sampled else max(500, n_questions)
    options: dict[str, Any] = {}
    if same_prompt_only and resolve_auto(None, [d.kind for d in parse_cluster(cluster).devices]) == "static":
        options = {"scheduler": "static", "scheduler_options": {"same_prompt_only": True}}
    simulated = SimulatedEvaluator(spec, profile=profile, cluster=cluster, arrival=ClosedLoop(1), n_queries=n_sim,
                                   catalog=catalog, max_batch=max_batch,
                                   tokens=model if model is not None else TokenModel(), **options)
    return simulated, "paper" if model is None else tokens


# ----- comparison -----------------------------------------------------------------------------------
def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured (NaN when nothing was measured)."""
    return (predicted - measured) / measured if measured > 0 else math.nan


@dataclass(frozen=True)
class GraphValidation:
    """One graph: predicted vs measured."""

    rank: int
    candidate: Candidate
    mapped: Graph
    predicted: Evaluation
    measured: Evaluation
    accuracy_graph: str  # "mapped" or "original": which graph the accuracy prediction is for

    @property
    def predicted_interval(self) -> tuple[float, float]:
        """95% interval of a run on the measured number of questions, if the prediction is right."""
        n = self.measured.n_questions
        return wilson_interval(self.predicted.accuracy * n, n)

    def latency_errors(self) -> dict[str, float]:
        p, m = self.predicted.latency, self.measured.latency
        if p is None or m is None:
            return {}
        return {"mean": relative_error(p.mean_s, m.mean_s), "p50": relative_error(p.p50_s, m.p50_s),
                "p95": relative_error(p.p95_s, m.p95_s)}

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.predicted_interval
        p, m = self.predicted, self.measured
        return {
            "rank": self.rank, "origin": self.candidate.origin, "search_score": self.candidate.score,
            "graph": self.candidate.graph.to_dict(), "mapped_graph": self.mapped.to_dict(),
            "accuracy_graph": self.accuracy_graph,
            "predicted": {"accuracy": p.accuracy, "interval": [lo, hi], "n_profile_questions": p.n_questions,
                          "latency": p.latency.to_dict() if p.latency else None},
            "measured": {"accuracy": m.accuracy, "ci": [m.ci_low, m.ci_high], "n_questions": m.n_questions,
                         "latency": m.latency.to_dict() if m.latency else None,
                         "per_question": list(m.per_question), "meta": m.meta},
            "accuracy_within_interval": lo <= m.accuracy <= hi,
            "latency_relative_error": self.latency_errors(),
        }


@dataclass
class ValidationReport:
    task: str
    rows: list[GraphValidation]
    model_map: dict[str, str]
    profile: str
    cluster: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def spearman_accuracy(self) -> float | None:
        """Rank correlation of predicted and measured accuracy across graphs (None if undefined)."""
        return spearman([r.predicted.accuracy for r in self.rows], [r.measured.accuracy for r in self.rows])

    @property
    def spearman_latency(self) -> float | None:
        pairs = [(p, m) for r in self.rows if (p := r.predicted.latency) and (m := r.measured.latency)]
        return spearman([p.mean_s for p, _ in pairs], [m.mean_s for _, m in pairs])

    def summary(self) -> dict[str, Any]:
        errs = [r.latency_errors() for r in self.rows]
        mean_errs = [abs(e["mean"]) for e in errs if e and math.isfinite(e["mean"])]
        p95_errs = [abs(e["p95"]) for e in errs if e and math.isfinite(e["p95"])]
        return {
            "graphs": len(self.rows),
            "spearman_accuracy": self.spearman_accuracy, "spearman_latency": self.spearman_latency,
            "accuracy_within_interval": sum(r.to_dict()["accuracy_within_interval"] for r in self.rows),
            "median_abs_rel_error_latency_mean": _median(mean_errs),
            "median_abs_rel_error_latency_p95": _median(p95_errs),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "profile": self.profile, "cluster": self.cluster, "model_map": self.model_map,
                "config": self.config, "summary": self.summary(), "graphs": [r.to_dict() for r in self.rows]}

    def table_rows(self) -> list[tuple[Any, ...]]:
        out = []
        for r in self.rows:
            lo, hi = r.predicted_interval
            p, m = r.predicted.latency, r.measured.latency
            e = r.latency_errors()
            g = r.candidate.graph
            out.append((
                r.rank, f"{len(g.executed)}n w{g.width} d{g.depth}",
                "-" if r.candidate.score is None else f"{r.candidate.score:.3f}",
                f"{r.predicted.accuracy:.2f} [{lo:.2f},{hi:.2f}]",
                f"{r.measured.accuracy:.2f} [{r.measured.ci_low:.2f},{r.measured.ci_high:.2f}]",
                pair_text(p.mean_s if p else None, m.mean_s if m else None, e.get("mean")),
                pair_text(p.p95_s if p else None, m.p95_s if m else None, e.get("p95")),
            ))
        return out

    HEADERS = ("#", "graph", "score", "pred acc [95% int]", "meas acc [95% CI]", "mean s pred/meas (err)",
               "p95 s pred/meas (err)")

    def to_text(self) -> str:
        from tts_sim.text_table import table

        s = self.summary()
        lines = [table(self.HEADERS, self.table_rows()), "",
                 f"Spearman over {s['graphs']} graphs (predicted vs measured accuracy): "
                 f"{_num(s['spearman_accuracy'])}; "
                 f"latency: {_num(s['spearman_latency'])}",
                 f"measured accuracy inside the predicted interval: {s['accuracy_within_interval']}/{s['graphs']}",
                 f"median |relative error| of latency: mean {_pct(s['median_abs_rel_error_latency_mean'])}, "
                 f"p95 {_pct(s['median_abs_rel_error_latency_p95'])}",
                 "model map: " + ", ".join(f"{k} -> {v}" for k, v in self.model_map.items())]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        s = self.summary()
        cfg = self.config
        head = "| " + " | ".join(self.HEADERS) + " |\n|" + "---|" * len(self.HEADERS) + "\n"
        body = "".join("| " + " | ".join(str(c) for c in row) + " |\n" for row in self.table_rows())
        mapping = "\n".join(f"| {k} | {v} |" for k, v in self.model_map.items())
        graphs = "\n\n".join(f"**#{r.rank}** ({r.candidate.origin}, accuracy predicted for the {r.accuracy_graph} "
                             f"graph)\n\n```\n{r.candidate.graph.to_text()}\n```" for r in self.rows)
        return (
            f"# Validation: predicted vs measured ({self.task})\n\n"
            f"- profile: {self.profile}\n- simulated cluster: {self.cluster} (closed loop, 1 query in flight)\n"
            f"- real backend: {cfg.get('backend', '')}; held-out questions: {cfg.get('n_questions', '')} "
            f"(not in the profile); max new tokens {cfg.get('max_new_tokens', '')}, temperature "
            f"{cfg.get('temperature', '')}, seed {cfg.get('seed', '')}\n\n"
            f"## Results\n\n{head}{body}\n"
            f"- Spearman rank correlation over {s['graphs']} graphs, predicted vs measured accuracy: "
            f"{_num(s['spearman_accuracy'])} "
            f"(latency: {_num(s['spearman_latency'])})\n"
            f"- measured accuracy inside the predicted 95% interval: {s['accuracy_within_interval']} of "
            f"{s['graphs']} graphs\n"
            f"- median |relative error| of predicted latency: mean {_pct(s['median_abs_rel_error_latency_mean'])}, "
            f"p95 {_pct(s['median_abs_rel_error_latency_p95'])}\n\n"
            f"## Model mapping (catalog model -> model that really ran)\n\n| catalog | real |\n|---|---|\n"
            f"{mapping}\n\n## Graphs\n\n{graphs}\n"
        )


def _median(values: Sequence[float]) -> float | None:
    import numpy as np

    return float(np.median(values)) if values else None


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def pair_text(pred: float | None, meas: float | None, err: float | None) -> str:
    """``"pred/meas (+err%)"`` of a latency, or ``-`` without both."""
    if pred is None or meas is None:
        return "-"
    return f"{pred:.2f}/{meas:.2f} ({'n/a' if err is None or not math.isfinite(err) else f'{100 * err:+.0f}%'})"


# ----- the run ----------------------------------------------------------------------------------------
def validate_graphs(candidates: Sequence[Candidate], real: Any, simulated: Any, *, model_map: Mapping[str, str],
                    questions: Sequence[int] | None = None, seed: int = 0,
                    catalog: ModelCatalog = DEFAULT_CATALOG, progress: Any = None,
                    config: Mapping[str, Any] | None = None) -> ValidationReport:
    """Predict (``simulated``: a ``SimulatedEvaluator`` with a cluster) and measure (``real``: a
    ``RealEvaluator`` whose pool holds the held-out questions) every candidate."""
    if not candidates:
        raise ConfigError("no graphs to validate")
    bank_models = set(simulated.quality.models)
    rows = []
    for rank, cand in enumerate(candidates, 1):
        mapped = map_graph(cand.graph, model_map, catalog)
        mapped_models = {mapped.node(n).model for n in mapped.executed}
        original_models = {cand.graph.node(n).model for n in cand.graph.executed}
        if mapped_models <= bank_models:
            acc_graph, which = mapped, "mapped"
        elif original_models <= bank_models:
            acc_graph, which = cand.graph, "original"
        else:
            missing = sorted(mapped_models - bank_models)
            raise ConfigError(f"graph #{rank}: the profile has no answer banks for {', '.join(missing)} "
                              f"(it has: {', '.join(sorted(bank_models))})")
        predicted = replace(simulated.expected(acc_graph), latency=simulated.latency(mapped, seed))
        if progress is not None:
            n_run = len(questions) if questions is not None else real.n_questions
            progress(f"graph #{rank}: running {len(mapped.executed)} nodes on {n_run} questions")
        measured = real.evaluate(cand.graph, questions, seed=seed)
        rows.append(GraphValidation(rank, cand, mapped, predicted, measured, which))
    sim_cluster = str(simulated.simulator.cluster) if simulated.simulator is not None else ""
    return ValidationReport(real.task.name, rows, dict(model_map), simulated.profile.label, sim_cluster,
                            dict(config or {}))
