"""Run a fidelity check: held-out graphs for real on held-out questions, resumably, then predicted vs measured.

Each graph runs on every question. The first ``latency_questions`` run one at a time, each question
through every graph before the next (their wall times are the measured latency, a closed loop with
one query in flight, as the simulator predicts it: with ``primed``, each timed query comes right after
an untimed call of its graph's output model, ``GraphExecutor.prime``, as in a loop of that graph alone,
not after another graph's calls and the model switch they leave behind); then each graph runs the rest
``batch`` questions together (``GraphExecutor.run_batch``: one ``generate`` call per level and model),
which only speeds up measuring accuracy - replies do not depend on batching.
Every finished (graph, question) is appended to a journal (``tts_sim.journal``) with one fsynced
write per backend batch; a killed run resumes from it without running or counting anything twice
(batches re-form identically because whole batches are journalled). A journal written for another
run (other graphs, questions or settings) is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
from tts_sim.journal import Journal, config_mismatch
from tts_sim.progress import call_bar
from tts_sim.real.executor import GraphExecutor, GraphRun
from tts_sim.real.fidelity.report import FidelityReport, FidelityRow
from tts_sim.stats import wilson_interval
from tts_sim.tasks.graders import Grader
from tts_sim.tasks.question import Question

JOURNAL_SCHEMA = "tts-sim/fidelity-journal"
JOURNAL_VERSION = 1
_FIELDS = ("graph", "question", "correct", "wall_s", "single")


@dataclass(frozen=True)
class FidelityPlan:
    """What runs: every graph on every question; the first ``latency_questions`` one at a time."""

    task: str
    graphs: tuple[Graph, ...]
    questions: tuple[Question, ...]
    latency_questions: int = 30
    batch: int = 16
    seed: int = 0
    primed: bool = True  # each timed query after a call of its own output model (False: journals before it)

    def __post_init__(self) -> None:
        if not self.graphs:
            raise ConfigError("no graphs to check (give --graphs FILE and/or --generate N)")
        if not self.questions:
            raise ConfigError("no questions to run")
        if self.batch < 1 or self.latency_questions < 0:
            raise ConfigError(f"batch must be >= 1 and latency questions >= 0, got {self.batch} and "
                              f"{self.latency_questions}")
        keys = [graph_key(g) for g in self.graphs]
        if len(set(keys)) != len(keys):
            raise ConfigError("two of the graphs are the same graph (isomorphic)")

    @property
    def keys(self) -> list[str]:
        return [graph_key(g) for g in self.graphs]

    def journal_config(self, **settings: Any) -> dict[str, Any]:
        """What a journal must have been written for to be resumed: the plan and ``settings``."""
        # the graphs as written, node ids included: they seed the sampling (isomorphic is not enough)
        return {"task": self.task, "graphs": [g.to_dict() for g in self.graphs],
                "questions": [q.id for q in self.questions],
                "latency_questions": self.latency_questions, "batch": self.batch, "seed": self.seed,
                "primed": self.primed, **settings}

    def schedule(self, done: Sequence[set[str]]) -> list[tuple[int, list[Question], bool]]:
        """What is left (``done[i]``: the question ids graph ``i`` has run), in run order, as (graph
        index, questions, one at a time): first the latency questions question-major (each through
        every graph, so a change in the machine's load hits all graphs alike), then each graph's other
        questions in batches."""
        out: list[tuple[int, list[Question], bool]] = [
            (i, [q], True) for q in self.questions[:self.latency_questions]
            for i in range(len(self.graphs)) if q.id not in done[i]]
        for i in range(len(self.graphs)):
            rest = [q for q in self.questions[self.latency_questions:] if q.id not in done[i]]
            out += [(i, rest[k:k + self.batch], False) for k in range(0, len(rest), self.batch)]
        return out


def _extends(saved: Any, current: Any) -> bool:
    """Whether one question list starts with the other."""
    if not (isinstance(saved, list) and isinstance(current, list)):
        return bool(saved == current)
    n = min(len(saved), len(current))
    return bool(saved[:n] == current[:n])


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict) or any(k not in record for k in _FIELDS):
        raise ConfigError(f"{where}: not a fidelity record (needs {', '.join(_FIELDS)})")
    if not isinstance(record["graph"], int) or isinstance(record["graph"], bool) or not isinstance(
            record["question"], str):
        raise ConfigError(f"{where}: graph must be an index and question an id")
    wall = record["wall_s"]
    if not isinstance(wall, (int, float)) or isinstance(wall, bool) or not 0 <= wall < float("inf"):
        raise ConfigError(f"{where}: wall_s must be a finite number >= 0")


def _record(index: int, run: GraphRun, single: bool, grader: Grader) -> dict[str, Any]:
    """One journal line. ``nodes``: every executed node's extracted answer and whether it is correct,
    so a run can be studied node by node (``benchmarks/fidelity_nodes.py``)."""
    return {"graph": index, "question": run.question.id, "correct": run.correct, "answer": run.answer,
            "wall_s": run.wall_s, "single": single, "calls": len(run.nodes), "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "truncated": sum(t.finish_reason == "length" for t in run.nodes),
            "nodes": {t.node: [t.answer, bool(grader.is_correct(t.answer, run.question))] for t in run.nodes}}


def measure(plan: FidelityPlan, executor: GraphExecutor, journal_path: str | Path, config: dict[str, Any], *,
            quiet: bool = False, on_batch: Callable[[int], None] | None = None) -> list[dict[str, dict[str, Any]]]:
    """Run what the journal at ``journal_path`` does not hold yet; every record by graph (index into
    ``plan.graphs``; the journal's config holds the graphs) and question id. ``config``
    (``plan.journal_config(...)``) must equal the journal's, except that either question list may
    extend the other: a run grows with more questions from the same offset (the latency questions,
    the first ones, stay), or reports on fewer; and ``primed`` may differ when no timed query is left
    (``config["primed"]`` is then set to the journal's, so a report says how its latency was timed).
    ``on_batch(n)``: called after each journalled batch with the records written so far this call
    (tests interrupt with it)."""
    journal = Journal(journal_path, JOURNAL_SCHEMA, JOURNAL_VERSION, what="fidelity journal",
                      kind="tts-sim fidelity journal")
    loaded = journal.load(_check_record)
    done: list[dict[str, dict[str, Any]]] = [{} for _ in plan.graphs]
    if loaded is not None:
        saved, records = loaded
        saved.setdefault("primed", False)  # journals written before priming timed queries after other graphs
        key = config_mismatch({**saved, "questions": None, "primed": None}, {**config, "questions": None,
                                                                            "primed": None})
        if key is None and not _extends(saved.get("questions"), config.get("questions")):
            key = "questions"
        if key is not None:
            raise ConfigError(f"{journal.path} was written for another fidelity run ({key!r} differs): use another "
                              f"--out folder, or delete the journal to start again")
        for r in records:
            if 0 <= r["graph"] < len(done):
                done[r["graph"]].setdefault(r["question"], r)
    left = plan.schedule([set(d) for d in done])
    if loaded is not None and saved["primed"] != plan.primed and any(single for *_, single in left):
        raise ConfigError(f"{journal.path} timed its queries {'with' if saved['primed'] else 'without'} priming "
                          f"(GraphExecutor.prime): its latency questions cannot be completed "
                          f"{'with' if plan.primed else 'without'} it; use another --out folder")
    if loaded is not None:
        config["primed"] = saved["primed"]  # what the journal's timed queries had, for the report to say
    journal.begin(config)
    sizes = [len(g.executed) for g in plan.graphs]  # the bar counts model calls: graphs differ 1-20x in cost
    total = sum(sizes) * len(plan.questions)
    wanted = {q.id for q in plan.questions}
    initial = sum(len(set(d) & wanted) * k for d, k in zip(done, sizes, strict=True))
    written = 0
    with call_bar(total, initial, desc=f"fidelity {plan.task}", disable=quiet) as bar:
        for index, questions, single in left:
            if single and plan.primed:
                executor.prime(plan.graphs[index])
            runs = executor.run_batch(plan.graphs[index], questions, seed=plan.seed)
            records = [_record(index, run, single, executor.grader) for run in runs]
            journal.append(records)
            for r in records:
                done[index][r["question"]] = r
            written += len(records)
            bar.set_postfix_str(f"{'latency' if single else 'accuracy'}, graph {index + 1}/{len(plan.graphs)}",
                                refresh=False)
            bar.update(len(records) * sizes[index])
            if on_batch is not None:
                on_batch(written)
    return done


def assemble(plan: FidelityPlan, done: Sequence[dict[str, dict[str, Any]]], simulated: Any, *, profile: str,
             command: str, config: dict[str, Any] | None = None) -> FidelityReport:
    """The report: ``simulated`` (a ``SimulatedEvaluator`` on the profile, with a cluster) predicts each
    graph's accuracy - expected, with the 95% interval of a run on this many held-out questions that
    carries the fusion fit's uncertainty - and latency; ``done`` holds what the real runs measured."""
    rows = []
    n = len(plan.questions)
    for index, graph in enumerate(plan.graphs):
        recs = [done[index][q.id] for q in plan.questions if q.id in done[index]]
        if len(recs) < n:
            raise ConfigError(f"graph #{index}: {n - len(recs)} of {n} questions not measured yet")
        correct = sum(bool(r["correct"]) for r in recs)
        iv = simulated.quality.prediction_interval(graph, level=0.95, seed=plan.seed, heldout=n)
        walls = [float(r["wall_s"]) for r in recs if r["single"]]
        measured_lat = None
        if walls:
            p50, p95 = np.percentile(walls, [50, 95])
            measured_lat = (float(p50), float(p95))
        lat = simulated.latency(graph, plan.seed)
        extra = {"calls_per_query": float(np.mean([r["calls"] for r in recs])),
                 "prompt_tokens_per_query": float(np.mean([r["prompt_tokens"] for r in recs])),
                 "completion_tokens_per_query": float(np.mean([r["completion_tokens"] for r in recs])),
                 "truncated_calls": int(sum(r["truncated"] for r in recs))}
        rows.append(FidelityRow(
            index, graph, iv.accuracy, (iv.low, iv.high), correct / n, wilson_interval(correct, n), n,
            fit_sd=iv.fit_sd, includes=iv.includes,
            predicted_latency=None if lat is None else (lat.p50_s, lat.p95_s), measured_latency=measured_lat,
            latency_queries=len(walls), extra=extra, walls=tuple(walls)))
    return FidelityReport(plan.task, rows, profile, command, dict(config or {}))


def repredict(report: FidelityReport, quality: Any, *, profile: str, command: str, seed: int = 0) -> FidelityReport:
    """``report`` with each graph's accuracy predicted again by ``quality`` (a ``QualityModel``, e.g. of
    a refitted profile): expected accuracy and the 95% interval of a run on the report's held-out
    questions, as ``assemble`` computes them. The measurements (accuracy, latency, token figures) and the
    latency predictions are kept; the config records the command that measured them."""
    rows = []
    for row in report.rows:
        iv = quality.prediction_interval(row.graph, level=0.95, seed=seed, heldout=row.n_questions)
        rows.append(replace(row, predicted=iv.accuracy, interval=(iv.low, iv.high), fit_sd=iv.fit_sd,
                            includes=iv.includes))
    config = {**report.config, "repredicted": {
        "measured_by": report.config.get("repredicted", {}).get("measured_by", report.command),
        "note": "accuracy predictions recomputed from the same measurements; the latency predictions are the "
                "measuring run's"}}
    return FidelityReport(report.task, rows, profile, command, config)


def write_outputs(report: FidelityReport, out_dir: str | Path) -> dict[str, Path]:
    """``fidelity_TASK.json``, ``.md`` and ``.png`` in ``out_dir``; their paths by suffix."""
    import json

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"fidelity_{report.task}"
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    report.plot(paths["png"])
    paths["md"].write_text(report.to_markdown(paths["png"].name))
    return paths


def journal_path(out_dir: str | Path, task: str) -> Path:
    return Path(out_dir) / f"fidelity_{task}.journal.jsonl"


def model_pool(simulated: Any) -> list[str]:
    """The models a profile can predict for: those with answer banks for the task."""
    return sorted(simulated.quality.models)


def check_models(graphs: Sequence[Graph], pool: Sequence[str]) -> None:
    """Refuse (one line) a graph with a model the profile has no answer bank for."""
    for i, g in enumerate(graphs):
        missing = sorted({g.node(n).model for n in g.executed} - set(pool))
        if missing:
            raise ConfigError(f"graph #{i}: the profile has no answer banks for {', '.join(missing)} "
                              f"(it has: {', '.join(pool)})")
