"""``tts-sim bench``: searchers x tasks x budgets x seeds on the simulator, streamed to JSONL
(resumable), analysed into mean +- CI tables, anytime curves, regret and paired tests, and written
up as a Markdown report with PNG plots.

    from tts_sim.bench import BenchConfig, run_bench, analyse, write_report
    run = run_bench(BenchConfig(searchers=("agent-reinforce", "random"), seeds=tuple(range(3))))
    analysis = analyse(run.rows)
"""

from tts_sim.bench.analysis import Analysis, Paired, SearcherStats, analyse, expected_check
from tts_sim.bench.config import BenchConfig, parse_seeds
from tts_sim.bench.executors import InlineExecutor, PoolExecutor, make_executor
from tts_sim.bench.jobs import Job, anytime_curve, execute
from tts_sim.bench.report import write_report
from tts_sim.bench.runner import BenchRun, plan_jobs, read_rows, run_bench

__all__ = [
    "Analysis", "BenchConfig", "BenchRun", "InlineExecutor", "Job", "Paired", "PoolExecutor", "SearcherStats",
    "analyse", "anytime_curve", "execute", "expected_check", "make_executor", "parse_seeds", "plan_jobs",
    "read_rows", "run_bench", "write_report",
]
