"""One profiling run: latency tables, answer banks and fusion calibration, written as a ``Profile``.

The profile's metadata says what ran (backend, version, provider, device and CPU/GPU name,
quantisation, per model), how (sampling settings, prompt templates' version, seed) and what the
direct answers cost in tokens (``token_stats``: the A and B the simulator should use for this task
with these models, see ``measured_task_spec``).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tts_sim.core.backend import Backend, BackendInfo
from tts_sim.core.profile import Profile, TaskProfile
from tts_sim.core.prompts import DIRECT, PROMPTS_VERSION
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.real.executor import GraphExecutor
from tts_sim.real.profiling.banks import AnswerBanks, collect_answer_banks
from tts_sim.real.profiling.fusion import (
    FusionCall,
    fusion_from_banks,
    fusion_from_graphs,
    plan_deep_graphs,
    run_fusion_graphs,
)
from tts_sim.real.profiling.http_latency import filler_prompt
from tts_sim.real.profiling.journal import CallJournal, ProgressBar
from tts_sim.real.profiling.latency import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_CONTEXTS,
    DEFAULT_PASSES,
    DEFAULT_PROMPT_LENGTHS,
    device_key,
    measure_latency_table,
    measure_switch_costs,
    step_timer,
)
from tts_sim.tasks import TASKS, Question, TaskSpec, get_task, load_questions
from tts_sim.tasks.graders import Grader, get_grader

GENERATOR = "tts-sim profile"
#: ProfileConfig fields that shape the latency tables only
LATENCY_KEYS = ("prompt_lengths", "batch_sizes", "contexts", "repeats", "steps", "passes", "max_batch_tokens",
                "device")
GENERATOR_VERSION = 2  # 2: stop strings end a reply only after visible text (core.backend.stop_at)
#: How tables are timed, part of their journal key: 2 = decode steps choose tokens as the calls do (sampling)
TIMING_VERSION = 2
SWITCH_VERSION = 1  # how measure_switch_costs measures (in its journal key: a change measures again)


@dataclass
class ProfileConfig:
    """What to measure. ``models`` maps catalog names (as written into the profile) to backend names."""

    task: str
    models: dict[str, str]
    data: str | None = None
    questions: int = 20
    offset: int = 0
    samples: int = 8
    fusion_records: int = 40
    deep_records: int = 0  # at least this many more records from graphs three levels deep (plan_deep_graphs)
    fusion_graphs: int = 0
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    batch: int = 16
    latency: bool = True
    banks: bool = True
    prompt_lengths: tuple[int, ...] = DEFAULT_PROMPT_LENGTHS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    contexts: tuple[int, ...] = DEFAULT_CONTEXTS
    repeats: int = 3
    steps: int = 8
    passes: int = DEFAULT_PASSES  # timings of the grid per row, the fastest kept (measure_latency_table)
    max_batch_tokens: int | None = None  # skip prefill rows with more tokens per batch
    device: str | None = None  # DEVICES name for the tables (default: from the backend's info)
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("profile needs at least one model")
        for name in ("questions", "samples", "max_new_tokens", "batch", "repeats", "steps", "passes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if min(self.offset, self.fusion_records, self.deep_records, self.fusion_graphs) < 0:
            raise ConfigError("offset, fusion_records, deep_records and fusion_graphs must be >= 0")
        if not (self.latency or self.banks):
            raise ConfigError("nothing to measure: both latency tables and answer banks are switched off")


@dataclass
class ProfileRun:
    profile: Profile
    banks: AnswerBanks | None = None
    fusion: list[FusionCall] = field(default_factory=list)


def profile_questions(config: ProfileConfig) -> list[Question]:
    """The questions a profile covers: ``questions`` of the task's pool from ``offset`` on."""
    pool = load_questions(config.task, config.data, config.offset + config.questions)
    picked = pool[config.offset:]
    if not picked:
        raise ConfigError(f"{config.task}: offset {config.offset} leaves no questions (the pool has {len(pool)})")
    return picked


def run_profile(backend: Backend, config: ProfileConfig, *, grader: Grader | None = None,
                questions: Sequence[Question] | None = None,
                progress: Callable[[str], None] | None = None, journal: str | Path | None = None,
                bar: Callable[[int, int], ProgressBar] | None = None) -> ProfileRun:
    """Measure what ``config`` asks for on ``backend`` and assemble the ``Profile``.

    ``journal``: a JSONL file that keeps every finished batch of calls (and latency table); a rerun
    with the same configuration and questions replays it and only makes the missing calls.
    ``bar(total, done)``: a progress bar over the answer-bank and fusion calls (``done`` replayed)."""
    say = progress or (lambda _msg: None)
    if config.banks:  # an unknown task or a missing data file fails before minutes of latency timing
        grader = grader if grader is not None else get_grader(config.task)
        qs = list(questions) if questions is not None else profile_questions(config)
    infos = {m: backend.info(b) for m, b in config.models.items()}
    log = CallJournal(journal, _fingerprint(config, qs if config.banks else [], infos))
    if log.replayed or log.tables:
        say(f"journal {journal}: replayed {log.replayed} calls and {len(log.tables)} latency tables")
    timings: dict[str, float] = {}
    profile = Profile(metadata={})
    run = ProfileRun(profile)

    if config.latency:
        t0 = time.perf_counter()
        settings = _config_dict(config)
        grid = json.dumps({**{k: settings[k] for k in LATENCY_KEYS}, "timing": TIMING_VERSION}, sort_keys=True)
        for model, backend_model in config.models.items():
            key = f"{model} {grid}"  # a table measured on another grid is measured again
            if key not in log.tables:
                info = infos[model]
                timer = step_timer(backend, backend_model)
                log.record_table(key, measure_latency_table(
                    timer, model, device=config.device or device_key(info), backend=info.backend,
                    quantization=info.quantization, provider=info.provider, prompt_lengths=config.prompt_lengths,
                    batch_sizes=config.batch_sizes, contexts=config.contexts, repeats=config.repeats,
                    steps=config.steps, max_batch_tokens=config.max_batch_tokens, passes=config.passes,
                    temperature=config.temperature, top_p=config.top_p, progress=say))
            profile.latency.append(log.tables[key])
        if len(config.models) > 1 and not getattr(backend, "concurrent_models", True):
            # the models share the device one call after the other: what switching between them costs
            keys = {m: f"{m} {grid} switch {SWITCH_VERSION}" for m in config.models}
            if any(k not in log.tables for k in keys.values()):
                costs = measure_switch_costs(backend, config.models, prompt=filler_prompt(24, 0), progress=say)
                for model, table in zip(config.models, list(profile.latency), strict=True):
                    log.record_table(keys[model], dataclasses.replace(table, switch_s=costs[model]))
            profile.latency = [log.tables[keys[m]] for m in config.models]
        timings["latency_s"] = time.perf_counter() - t0

    token_stats: dict[str, Any] = {}
    if config.banks:
        assert grader is not None  # set above, before the latency tables
        total = len(config.models) * len(qs) * config.samples + config.fusion_records + config.deep_records
        progress_bar = bar(total, min(log.replayed, total)) if bar is not None else None
        t0 = time.perf_counter()
        banks = collect_answer_banks(backend, config.models, qs, grader, config.samples,
                                     max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                     top_p=config.top_p, seed=config.seed, batch=config.batch, journal=log,
                                     bar=progress_bar)
        timings["banks_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        calls = fusion_from_banks(backend, banks, config.models, config.fusion_records,
                                  max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                  top_p=config.top_p, seed=config.seed + 1, batch=config.batch, journal=log,
                                  bar=progress_bar)
        if config.deep_records:
            deep = plan_deep_graphs(banks, list(config.models), config.deep_records, seed=config.seed + 3)
            if progress_bar is not None and hasattr(progress_bar, "total"):  # the plan may hold a few more
                progress_bar.total += sum(len(g.graph.nodes) - len(g.sources) for g in deep) - config.deep_records
            calls += run_fusion_graphs(backend, banks, deep, config.models, key="deep",
                                       max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                       top_p=config.top_p, seed=config.seed + 3, batch=config.batch, journal=log,
                                       bar=progress_bar)
        if progress_bar is not None and hasattr(progress_bar, "close"):
            progress_bar.close()
        if config.fusion_graphs:
            executor = GraphExecutor(backend, config.task, grader=grader, model_map=config.models,
                                     max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                     top_p=config.top_p, seed=config.seed + 2)
            calls += fusion_from_graphs(executor, banks, list(config.models), config.fusion_graphs,
                                        seed=config.seed + 2, progress=say)
        timings["fusion_s"] = time.perf_counter() - t0
        run.banks, run.fusion = banks, calls
        profile.tasks[config.task] = TaskProfile(len(qs), banks.counts(), [c.record for c in calls],
                                                 [q.id for q in qs])
        token_stats[config.task] = {**banks.token_stats(), **fusion_token_stats(calls, banks)}

    models_meta: dict[str, dict[str, Any]] = {
        m: {"backend_model": config.models[m], "backend": i.backend, "version": i.version,
            "provider": i.provider, "device": i.device, "quantization": i.quantization}
        for m, i in infos.items()}
    if run.banks is not None:
        for m in models_meta:
            models_meta[m]["bank_accuracy"] = run.banks.accuracy(m)
    first = next(iter(infos.values()))
    profile.metadata = {
        "label": config.label or (f"measured: {', '.join(config.models)} on {first.device} "
                                  f"({first.backend} {first.version}, {first.provider})"),
        "generator": GENERATOR, "generator_version": GENERATOR_VERSION, "measured": True,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tts_sim_version": _version("tts-sim"), "python": platform.python_version(),
        "host": {"machine": platform.machine(), "system": platform.system()},
        "backend": first.backend, "backend_version": first.version, "provider": first.provider,
        "device": first.device, "quantization": first.quantization, "models": models_meta,
        "config": _config_dict(config), "prompts_version": PROMPTS_VERSION, "token_stats": token_stats,
        "timings": timings,
    }
    return run


def fusion_token_stats(calls: Sequence[FusionCall], banks: AnswerBanks) -> dict[str, Any]:
    """Token facts the simulator's ``A + d*B`` prompt model leaves out (read by
    ``tts_sim.sim.cluster.TokenModel.from_stats``): the completion-length histogram of direct answers
    (``answer_tokens_histogram``) and of fusion calls per prompt kind
    (``answer_tokens_histogram_by_kind``), both per model (``answer_tokens_histogram_by_model``: model ->
    kind -> histogram), and the template tokens a fusion prompt adds beyond the
    question's direct prompt and its inputs' replies: ``fusion_overhead_tokens`` (mean over calls), and
    per kind ``fusion_overhead_tokens_by_kind[kind] + fusion_overhead_tokens_per_input * inputs``
    (least squares, one slope shared by the kinds; 0 when every call of a kind has as many inputs)."""
    out: dict[str, Any] = {"answer_tokens_histogram": _histogram(s.completion_tokens for s in banks.samples)}
    by_kind: dict[str, list[int]] = {}
    by_model: dict[str, dict[str, list[int]]] = {}
    for sample in banks.samples:
        by_model.setdefault(sample.model, {}).setdefault(DIRECT, []).append(sample.completion_tokens)
    for c in calls:
        by_kind.setdefault(c.kind, []).append(c.completion_tokens)
        by_model.setdefault(c.record.model, {}).setdefault(c.kind, []).append(c.completion_tokens)
    if by_kind:
        out["answer_tokens_histogram_by_kind"] = {k: _histogram(v) for k, v in sorted(by_kind.items())}
    if by_model:
        out["answer_tokens_histogram_by_model"] = {m: {k: _histogram(v) for k, v in sorted(kinds.items())}
                                                   for m, kinds in sorted(by_model.items())}
    direct: dict[tuple[str, int], int] = {(s.model, s.question): s.prompt_tokens for s in banks.samples}
    rows = [(c.kind, len(c.input_tokens),
             c.record.prompt_tokens - direct[(c.record.model, c.record.question)] - sum(c.input_tokens))
            for c in calls if c.input_tokens and (c.record.model, c.record.question) in direct]
    if rows:
        out["fusion_overhead_tokens"] = sum(r[2] for r in rows) / len(rows)
        out.update(_overhead_by_kind(rows))
    return out


def _histogram(lengths: Iterable[int]) -> dict[str, int]:
    hist: dict[int, int] = {}
    for n in lengths:
        hist[int(n)] = hist.get(int(n), 0) + 1
    return {str(k): hist[k] for k in sorted(hist)}


def _overhead_by_kind(rows: Sequence[tuple[str, int, int]]) -> dict[str, Any]:
    """Fit overhead = base[kind] + slope * inputs (within-kind least squares)."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for kind, d, extra in rows:
        groups.setdefault(kind, []).append((d, extra))
    means = {k: (sum(d for d, _ in g) / len(g), sum(e for _, e in g) / len(g)) for k, g in groups.items()}
    sxy = sum((d - means[k][0]) * (e - means[k][1]) for k, g in groups.items() for d, e in g)
    sxx = sum((d - means[k][0]) ** 2 for k, g in groups.items() for d, _ in g)
    slope = sxy / sxx if sxx > 0 else 0.0
    return {"fusion_overhead_tokens_by_kind": {k: means[k][1] - slope * means[k][0] for k in sorted(groups)},
            "fusion_overhead_tokens_per_input": slope}


def measured_task_spec(profile: Profile, task: str, base: TaskSpec | None = None) -> TaskSpec:
    """The task's spec with A and B (prompt and answer tokens) replaced by what the profile measured.

    A task without a registered spec gets a minimal one (kind "math", no published accuracies)."""
    stats = profile.metadata.get("token_stats", {}).get(task)
    if not stats:
        raise ProfileError(f"profile {profile.label!r} has no token statistics for task {task!r}")
    if base is None:
        base = get_task(task) if task in TASKS else TaskSpec(task, "math", 1.0, 1.0, source="measured profile")
    return dataclasses.replace(base, prompt_tokens=float(stats["prompt_tokens"]),
                               answer_tokens=float(stats["answer_tokens"]),
                               source=f"{base.source}; A and B measured in {profile.label}".lstrip("; "))


def _fingerprint(config: ProfileConfig, questions: Sequence[Question],
                 infos: Mapping[str, BackendInfo]) -> dict[str, Any]:
    """What a journal must match to be replayed: every setting that changes a call or its order (not the
    batch size, label or progress), the questions' ids, the prompt templates' version and what serves
    each model (backend, version, provider, device, quantisation). Not whether or on which grid latency
    tables are measured (tables are journaled under their grid): a run with ``--no-latency`` can be
    completed with its tables later (say, on a quiet machine). Nor the number of deep records: their plan
    for more records starts with the plan for fewer, so a profile can be given more of them later."""
    d = _config_dict(config)
    for key in ("batch", "label", "latency", "deep_records", *LATENCY_KEYS):
        d.pop(key)
    served = {m: [i.backend, i.version, i.provider, i.device, i.quantization] for m, i in sorted(infos.items())}
    return {**d, "question_ids": [q.id for q in questions], "prompts_version": PROMPTS_VERSION,
            "generator_version": GENERATOR_VERSION, "backends": served}


def _config_dict(config: ProfileConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    for key in ("prompt_lengths", "batch_sizes", "contexts"):
        d[key] = list(d[key])
    return d


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def parse_models(specs: Sequence[str]) -> dict[str, str]:
    """``["a", "b=served-b"]`` -> ``{"a": "a", "b": "served-b"}`` (catalog name = backend name unless given)."""
    out: dict[str, str] = {}
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, served = item.partition("=")
            if not name or (_ and not served):
                raise ConfigError(f"bad model {item!r} (expected NAME or NAME=BACKEND_MODEL)")
            out[name.strip()] = served.strip() or name.strip()
    if not out:
        raise ConfigError("no model given")
    return out


def check_models(models: Mapping[str, str], catalog: Any) -> None:
    unknown = [m for m in models if m not in catalog]
    if unknown:
        raise ConfigError(f"model {unknown[0]!r} is not in the model catalog (profiles are keyed by catalog names; "
                          "write NAME=BACKEND_MODEL)")
