"""Cost of grading HumanEval completions in the sandbox (bubblewrap, two sandboxes per check).

Targets (issue 9): at most 150 ms of overhead per graded completion on this machine, and 164 problems x
16 samples graded in under 5 minutes on 2 cores.

Part 1 times one check of a trivial problem (HumanEval/0, canonical solution: its tests take about a
millisecond, so the time is the sandboxes' overhead) next to its parts: a bare interpreter start, one
sandboxed run of ``pass``, and the weak mode (no bwrap) for comparison. Wall times on a machine shared
with other jobs: read them with the load average printed alongside.

Part 2 grades problems x samples with a thread pool (``--workers``; the work is in the sandboxes' processes).
The samples are the canonical solutions, each made distinct by a comment so no cache hides a check; all
must pass. ``--problems`` below 164 grades a subset and extrapolates (said so in the output). Wrong
completions cost about the same; ones that hang cost up to their timeout each (10 s + start-up allowance).

    python benchmarks/bench_sandbox.py [--repeat 30] [--problems 164] [--samples 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tts_sim.tasks import Question, load_questions, sandbox
from tts_sim.tasks.humaneval import HumanEvalGrader, build_solution
from tts_sim.tasks.humaneval_check import check_in_sandbox


def time_calls(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 90th-percentile wall time per call, in ms."""
    call()  # warm-up (first-use probes and caches)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        walls.append(time.perf_counter() - start)
    walls.sort()
    return 1000 * statistics.median(walls), 1000 * walls[int(0.9 * (len(walls) - 1))]


def check(question: Question, completion: str, allow_weak: bool | None = None) -> bool:
    prompt = str(question.metadata.get("code_prompt", ""))
    return check_in_sandbox(prompt, build_solution(question, completion), question.reference,
                            str(question.metadata["entry_point"]), allow_weak=allow_weak).passed


def per_call(questions: list[Question], repeat: int) -> None:
    q0 = questions[0]
    solution = q0.metadata["canonical_solution"]
    assert check(q0, solution), "the canonical solution of HumanEval/0 must pass"
    rows = {
        "bare interpreter start (python -I -S -c pass)":
            lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True),
        "one sandbox: run_sandboxed('pass', guard=False)": lambda: sandbox.run_sandboxed("pass", guard=False),
        "HumanEval/0 check (candidate + checker sandboxes)": lambda: check(q0, solution),
    }
    print(f"per call, {repeat} calls each (ms)                          median     p90")
    for name, call in rows.items():
        median, p90 = time_calls(call, repeat)
        print(f"  {name:<52} {median:7.1f} {p90:7.1f}")
    real_problem = sandbox.bwrap_problem
    sandbox.bwrap_problem = lambda: "weak mode timed for comparison"  # type: ignore[assignment]
    try:
        median, p90 = time_calls(lambda: check(q0, solution, allow_weak=True), repeat)
        print(f"  {'HumanEval/0 check in the weak mode (no bwrap)':<52} {median:7.1f} {p90:7.1f}")
    finally:
        sandbox.bwrap_problem = real_problem  # type: ignore[assignment]


def throughput(questions: list[Question], problems: int, samples: int, workers: int) -> None:
    chosen = questions[:problems]
    jobs = [(q, q.metadata["canonical_solution"] + f"\n# sample {k}\n") for q in chosen for k in range(samples)]
    grader = HumanEvalGrader()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(lambda job: grader.is_correct(job[1], job[0]), jobs))
    wall = time.perf_counter() - start
    print(f"throughput: {len(chosen)} problems x {samples} samples = {len(jobs)} checks, {workers} workers: "
          f"{wall:.1f} s wall ({1000 * wall / len(jobs):.1f} ms/check), {passed}/{len(jobs)} passed")
    if len(chosen) < len(questions):
        full = len(questions) * samples
        print(f"  extrapolated to {len(questions)} x {samples} = {full} checks: {wall / len(jobs) * full:.0f} s "
              f"(from this subset of {len(chosen)} problems)")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    questions = load_questions("humaneval")
    print(f"sandbox mode: {sandbox.sandbox_mode()}; {os.cpu_count()} CPUs; load average {load()}")
    per_call(questions, args.repeat)
    if not args.skip_throughput:
        throughput(questions, args.problems, args.samples, args.workers)
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
