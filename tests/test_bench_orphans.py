"""A bench killed with SIGKILL leaves no worker behind; its resume finishes the work and leaves none
either; a bench whose every job fails says so in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tts_sim.bench.runner import RESULTS, read_rows

ROOT = Path(__file__).resolve().parents[1]

# A bench of 8 quick fake jobs on a 2-worker process pool; each job notes its worker's pid in
# PIDS and takes SLEEP seconds.
_SCRIPT = """
import os, sys, time
from pathlib import Path
from tts_sim.bench import BenchConfig, run_bench

def job(job, settings):
    with open(os.environ["PIDS"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(float(os.environ["SLEEP"]))
    return {"key": job.key}

config = BenchConfig(searchers=("random",), priors=("none",), tasks=("math",), budgets=(18.0,),
                     seeds=tuple(range(8)), regret_budgets=(), evals=2, reference_evals=0,
                     workers=2, executor="process", out=sys.argv[1])
run = run_bench(config, progress=False, job_fn=job)
print(run.ran, run.skipped, len(run.failed))
"""


def _start(out: Path, pids: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIDS": str(pids), "SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _pids(path: Path) -> set[int]:
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def _wait(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_killing_the_bench_kills_its_workers_and_the_resume_leaves_no_orphans(tmp_path):
    out, pids = tmp_path / "bench", tmp_path / "pids"
    bench = _start(out, pids, sleep=30.0)  # jobs far longer than the test: killed mid-job
    try:
        assert _wait(lambda: len(_pids(pids)) == 2, 60), bench.stderr.read() if bench.poll() is not None else ""
        workers = _pids(pids)
        assert all(_alive(p) for p in workers)
        bench.send_signal(signal.SIGKILL)
        bench.wait(10)
        assert _wait(lambda: not any(_alive(p) for p in workers), 5), "workers outlived the killed bench"
    finally:
        if bench.poll() is None:
            bench.kill()
    assert read_rows(out / RESULTS)[0] == []

    pids.unlink()
    resumed = _start(out, pids, sleep=0.05)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert stdout.split() == ["8", "0", "0"]
    assert len(read_rows(out / RESULTS)[0]) == 8
    assert _wait(lambda: not any(_alive(p) for p in _pids(pids)), 5), "the resumed bench left workers behind"


def test_a_bench_whose_every_job_fails_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    from tts_sim.bench import runner
    from tts_sim.cli import main

    real = runner.run_bench

    def failing(job, settings):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(runner, "run_bench", lambda config, **kw: real(config, **{**kw, "job_fn": failing}))
    code = main(["bench", "--searchers", "random", "--tasks", "math", "--budgets", "18", "--seeds", "2",
                 "--evals", "2", "--regret-budgets", "none", "--priors", "none", "--executor", "inline",
                 "--reference-evals", "0", "--out", str(tmp_path / "b"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "all 2 bench jobs failed" in err and "worker lost" in err
    assert not (tmp_path / "b" / "final.png").exists()
