"""Run a bench: jobs = cells x searchers x seeds (+ one optimum per enumerable cell), handed to an
executor; each finished job is appended to ``results.jsonl`` as one JSON line (flushed and fsynced),
so an interrupted bench resumes where it stopped: jobs already in the file are skipped.

The folder also holds ``config.json`` (the settings the rows depend on; a bench refuses to resume
under different ones) and ``runs.jsonl`` (one line per invocation: wall time, jobs run/skipped).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.bench.config import DEFAULT_WORLD, MAIN, BenchConfig
from tts_sim.bench.executors import make_executor
from tts_sim.bench.jobs import Job, execute, profile_for
from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.jsonio import loads, read_json

log = logging.getLogger("tts_sim.bench")

RESULTS, CONFIG, RUNS = "results.jsonl", "config.json", "runs.jsonl"
#: rough relative cost of one search, for handing out the slow jobs first (shorter tail)
_COST = {"bo-forest": 8.0, "bo-gp": 8.0, "tpe": 3.0, "agent-reinforce": 1.5, "textgrad": 1.0}


@dataclass
class BenchRun:
    """What one ``run_bench`` call did."""

    out: Path
    rows: list[dict[str, Any]]  # every row of the bench's jobs (old and new)
    ran: int
    skipped: int
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    dropped_partial_line: bool = False


# ----- jobs ---------------------------------------------------------------------------------
def settings_for(config: BenchConfig) -> dict[str, Any]:
    """What a worker needs besides the job (plain JSON types: picklable for any executor)."""
    s = config.settings()
    s["regret_limit"] = config.regret_limit
    s["spaces"] = {name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.space_options(name).items()}
                   for name in {c[2] for c in config.cells()}}
    s["fingerprint"] = config.fingerprint()
    s["reference_evals"] = config.reference_evals
    s["world_profiles"] = world_profiles(config)
    return s


def world_profiles(config: BenchConfig) -> dict[str, str | None]:
    """{world name: profile path} (None: the embedded scenario); ensemble profiles are generated and
    cached on first use (``tts_sim.sim.worlds.world_profile``)."""
    from tts_sim.sim.profiles import load_profile
    from tts_sim.sim.worlds import world_profile

    out: dict[str, str | None] = {}
    for name, source in config.world_specs():
        if source is None:
            out[name] = config.profile
        elif isinstance(source, str):
            load_profile(source)  # one-line ProfileError for a missing file or an unknown name
            out[name] = source
        else:
            out[name] = str(world_profile(source))
    return out


def plan_jobs(config: BenchConfig) -> list[Job]:
    """Every job of the bench, slowest first. Checks names, budgets and enumerability up front, so a
    bad option fails in one line before any work starts."""
    from tts_sim.core.models import DEFAULT_CATALOG
    from tts_sim.search import SEARCHERS, SearchSpace, parse_objective
    from tts_sim.search.breakeven import agent_cost_spec
    from tts_sim.search.enumerate import raw_count
    from tts_sim.sim.cluster import parse_cluster
    from tts_sim.tasks import get_task

    agent_cost_spec(config.agent_cost_model, DEFAULT_CATALOG)  # one-line error naming an unknown model
    options = config.options_for()
    for name in config.searchers:
        SEARCHERS.build(name, options.get(name, {}))  # ConfigError naming an unknown searcher or option
    config.runs()  # ConfigError naming a searcher that no prior setting of the bench suits
    if config.cluster:
        parse_cluster(config.cluster)  # ClusterError naming the bad item, before any job fails on it
    if parse_objective(config.objective).needs_latency and not config.cluster:
        raise ConfigError(f"bench: objective {config.objective!r} needs latency: give a --cluster")
    if config.profile:
        from tts_sim.sim.profiles import load_profile

        load_profile(config.profile)  # a file, scenario or measured:TASK; else one line
    paths = world_profiles(config)
    for path in paths.values():
        profile = profile_for(path)
        for task in config.tasks:
            n = profile.task(get_task(task).name).n_questions  # ProfileError if the profile lacks the task
            if config.search_questions >= n:
                raise ConfigError(f"bench: --search-questions {config.search_questions} leaves no held-out "
                                  f"question of {task}'s {n}")
    jobs: list[Job] = []
    for task, budget, space_name in config.cells():
        space = SearchSpace(get_task(task), budget, **config.space_options(space_name))  # BudgetError if too small
        enumerable = raw_count(space) <= config.regret_limit
        if space_name != MAIN and not enumerable:
            raise ConfigError(f"bench: the small space ({config.regret_max_nodes} slots, "
                              f"{len(config.regret_pool)} models) is too large to enumerate for regret")
        for world in paths:
            w = "" if world == DEFAULT_WORLD else world
            if enumerable:
                jobs.append(Job("optimum", task, budget, space_name, world=w))
            if space_name == MAIN and config.reference_evals:
                jobs.append(Job("reference", task, budget, space_name, world=w))
            jobs += [Job("search", task, budget, space_name, name, seed, prior, label, world=w)
                     for label, name, prior in config.runs() for seed in config.seeds]
    return sorted(jobs, key=lambda j: (j.kind == "search", -_COST.get(j.searcher, 1.0) * j.budget ** -0.5))


# ----- the JSONL store ----------------------------------------------------------------------
def read_rows(path: Path, repair: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """Rows of ``results.jsonl`` and whether a truncated last line (a crash mid-write) was dropped;
    with ``repair`` the file is cut back to its last complete line. A bad line elsewhere is an error."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows: list[dict[str, Any]] = []
    dropped = False
    good_end = 0
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if not line.strip():
            good_end += len(line) + (0 if last else 1)
            continue
        try:
            row = loads(line, f"{path} line {i + 1}")
            if not isinstance(row, dict) or "key" not in row:
                raise ValueError("not a result row")
        except (ValueError, TtsSimError):
            if last or all(not rest.strip() for rest in lines[i + 1:]):
                dropped = True
                break
            raise ConfigError(f"{path}: line {i + 1} is not a result row (the file is corrupted)") from None
        if last:  # complete JSON but no newline: keep it, finish the line
            rows.append(row)
            good_end += len(line)
            if repair:
                with path.open("ab") as f:
                    f.write(b"\n")
                good_end += 1
            break
        rows.append(row)
        good_end += len(line) + 1
    if dropped and repair:
        with path.open("r+b") as f:
            f.truncate(good_end)
    return rows, dropped


def append_row(f: Any, row: dict[str, Any]) -> None:
    """One JSON line, flushed and fsynced (a crash loses at most the line being written)."""
    f.write(json.dumps(row, separators=(",", ":"), default=_plain) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def verify_settings(out: Path, config: BenchConfig) -> None:
    """Raise if ``out`` holds results of other settings than ``config``'s (``RESULT_SETTINGS``)."""
    cfg = out / CONFIG
    if not (cfg.exists() and (out / RESULTS).exists()):
        return
    try:
        old = read_json(cfg, "bench settings")["settings"]
        if not isinstance(old, dict):
            raise TypeError("settings is not an object")
    except (TtsSimError, KeyError, TypeError, IndexError):
        raise ConfigError(f"{cfg} is corrupted; delete it or use another --out") from None
    new = config.settings()
    diff = [k for k in sorted(set(new) | set(old)) if old.get(k) != new.get(k)]
    if diff:
        raise ConfigError(f"{out} holds a bench with another {diff[0]} ({old.get(diff[0])!r} there, "
                          f"{new.get(diff[0])!r} now): use another --out, or --no-resume to start afresh")


def check_folder(out: Path, config: BenchConfig, resume: bool) -> None:
    """Create ``out``; refuse to resume a bench of other settings; start afresh without ``resume``."""
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        verify_settings(out, config)
    else:
        for name in (RESULTS, RUNS):
            (out / name).unlink(missing_ok=True)
    (out / CONFIG).write_text(json.dumps({"settings": config.settings(), "config": config.to_dict()}, indent=1)
                              + "\n")


# ----- running ------------------------------------------------------------------------------
def run_bench(config: BenchConfig, *, resume: bool = True, executor: Executor | None = None,
              progress: bool | None = None, job_fn: Callable[[Job, dict[str, Any]], dict[str, Any]] = execute,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> BenchRun:
    """Run the bench's missing jobs and return every row of its jobs.

    ``executor`` overrides ``config.executor`` (it is then not shut down here); ``progress`` shows a
    tqdm bar (None: only on a terminal); ``job_fn`` is the worker function (tests count calls)."""
    t0 = time.perf_counter()
    jobs = plan_jobs(config)
    out = Path(config.out)
    check_folder(out, config, resume)
    path = out / RESULTS
    old_rows, dropped = read_rows(path, repair=True)
    if dropped:
        log.warning("%s: dropped a truncated last line (its job runs again)", path)
    wanted = {j.key for j in jobs}
    done = {r["key"]: r for r in old_rows if r["key"] in wanted}
    todo = [j for j in jobs if j.key not in done]
    settings = settings_for(config)
    run = BenchRun(out, list(done.values()), ran=0, skipped=len(done), dropped_partial_line=dropped)
    own = executor is None
    pool: Executor = executor if executor is not None else make_executor(config.executor, config.workers,
                                                                          config.ray_address)
    bar = _bar(len(jobs), len(done), progress)
    interrupted = False
    pending: dict[Future, Job] = {}
    try:
        with path.open("a") as f:
            try:
                queue = iter(todo)
                _fill(pool, pending, queue, job_fn, settings, limit=max(2 * config.workers, 4))
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        _record(pending.pop(fut), fut, f, run, on_row)
                        bar.update(1)
                    _fill(pool, pending, queue, job_fn, settings, limit=max(2 * config.workers, 4))
            except KeyboardInterrupt:
                interrupted = True
                for fut, job in list(pending.items()):  # keep what finished before the interrupt
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        _record(job, fut, f, run, on_row)
                raise
    finally:
        bar.close()
        if own:
            pool.shutdown(wait=not interrupted, cancel_futures=True)
        run.wall_s = time.perf_counter() - t0
        _log_run(out / RUNS, run, len(jobs), interrupted)
    return run


def _record(job: Job, fut: Future, f: Any, run: BenchRun, on_row: Callable[[dict[str, Any]], None] | None) -> None:
    """Append a finished job's row, or note its failure (one failed job must not lose the others)."""
    try:
        row = fut.result()
    except TtsSimError as exc:
        run.failed.append(f"{job.key}: {exc}")
        return
    except Exception as exc:  # noqa: BLE001
        run.failed.append(f"{job.key}: {type(exc).__name__}: {exc}")
        return
    append_row(f, row)
    run.rows.append(row)
    run.ran += 1
    if on_row is not None:
        on_row(row)


def _fill(pool: Executor, pending: dict[Future, Job], queue: Iterable[Job], job_fn: Callable, settings: dict,
          limit: int) -> None:
    """Keep at most ``limit`` jobs in flight (an interrupt then loses little queued work)."""
    while len(pending) < limit:
        job = next(queue, None)  # type: ignore[call-overload]
        if job is None:
            return
        pending[pool.submit(job_fn, job, settings)] = job


def _bar(total: int, initial: int, progress: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="bench", unit="job", disable=None if progress is None
                else not progress, dynamic_ncols=True)


def last_wall(out: Path) -> float | None:
    """Wall time of the last bench invocation logged in ``out/runs.jsonl`` (None if none)."""
    try:
        entries = [loads(x, "runs log") for x in (out / RUNS).read_text().splitlines() if x.strip()]
        return float(entries[-1]["wall_s"]) if entries and "wall_s" in entries[-1] else None
    except (OSError, ValueError, TypeError, TtsSimError):
        return None


def _log_run(path: Path, run: BenchRun, total: int, interrupted: bool) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": round(run.wall_s, 3), "jobs": total,
             "ran": run.ran, "skipped": run.skipped, "failed": len(run.failed), "interrupted": interrupted,
             "dropped_partial_line": run.dropped_partial_line}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
