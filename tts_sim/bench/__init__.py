"""``tts-sim bench``: searchers x tasks x budgets x seeds on the simulator, streamed to JSONL
(resumable), analysed into mean +- CI tables, anytime curves, regret and paired tests, and written
up as a Markdown report with PNG plots.

    from tts_sim.bench import BenchConfig, run_bench, analyse, write_report
    run = run_bench(BenchConfig(searchers=("agent-reinforce", "random"), seeds=tuple(range(3))))
    analysis = analyse(run.rows)
"""

import importlib
from typing import Any

# Exports load their submodule on first use, so the CLI (which imports tts_sim.cli.bench) does not
# pay for scipy.stats and matplotlib on every command.
_EXPORTS = {
    "analysis": ("Analysis", "Paired", "SearcherStats", "analyse", "expected_check"),
    "config": ("BenchConfig", "parse_seeds"),
    "executors": ("InlineExecutor", "PoolExecutor", "make_executor"),
    "jobs": ("Job", "anytime_curve", "execute"),
    "report": ("write_report",),
    "runner": ("BenchRun", "plan_jobs", "read_rows", "run_bench"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'tts_sim.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tts_sim.bench.{_MODULE_OF[name]}"), name)


__all__ = [
    "Analysis", "BenchConfig", "BenchRun", "InlineExecutor", "Job", "Paired", "PoolExecutor", "SearcherStats",
    "analyse", "anytime_curve", "execute", "expected_check", "make_executor", "parse_seeds", "plan_jobs",
    "read_rows", "run_bench", "write_report",
]
