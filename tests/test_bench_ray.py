"""``tts-sim bench --executor ray``: a bench on a Ray cluster the test starts (``ray start --head``)
gives the same rows as the process pool for the same seeds; a missing ray names its extra; a Ray
address without the Ray executor is refused."""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tts_sim.cli import main

REPO = Path(__file__).resolve().parents[1]
#: Fields that differ between any two runs of the same job (timings, worker process ids).
TIMING = ("wall_s", "pid")
COST_TIMING = ("wall_s", "evaluator_s")


def bench_argv(out: Path, *extra: str) -> list[str]:
    """2 searchers x 2 priors x 2 seeds on a main and a small cell, and the small cell's optimum: 17 jobs."""
    return ["bench", "--searchers", "agent-reinforce", "random", "--priors", "none", "published", "--tasks", "math",
            "--budgets", "18", "--seeds", "2", "--evals", "5", "--search-questions", "20", "--heldout-questions",
            "20", "--regret-budgets", "18", "--reference-evals", "0", "--workers", "2", "--out", str(out),
            "--quiet", "--json", *extra]


def rows_without_timings(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        for key in TIMING:
            row.pop(key)
        for key in COST_TIMING:
            row.get("cost", {}).pop(key, None)
        out[row["key"]] = row
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster():
    """(address, environment) of a one-node Ray cluster of 2 CPUs in its own processes, with token
    authentication, as a user's cluster would be (``ray get-auth-token --generate``, then ``ray start``
    and the bench under ``RAY_AUTH_MODE=token``); its workers import this checkout's tts_sim. Stopped
    afterwards."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'tts-sim[ray]')")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([ray_bin, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    start = [ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.mark.slow  # starting Ray and its workers takes 30-60 s on 2 cores
def test_a_bench_through_ray_matches_the_process_pool(tmp_path, capsys, ray_cluster):
    address, env = ray_cluster
    argv = bench_argv(tmp_path / "ray", "--executor", "ray", "--ray-address", address)
    bench = subprocess.Popen([sys.executable, "-m", "tts_sim.cli", *argv], env=env, cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # a driver as a user runs it
    stdout, stderr = bench.communicate(timeout=600)
    assert bench.returncode == 0, stderr
    data = json.loads(stdout)  # Ray's own logs stay out of the bench's stdout
    assert data["ran"] == data["jobs"] == 17 and not data["failed"]
    assert data["config"]["executor"] == "ray" and data["config"]["ray_address"] == address
    pids = {json.loads(line)["pid"] for line in (tmp_path / "ray" / "results.jsonl").read_text().splitlines()}
    assert bench.pid not in pids  # the jobs ran in Ray's workers
    via_ray = rows_without_timings(tmp_path / "ray" / "results.jsonl")

    assert main(bench_argv(tmp_path / "pool", "--executor", "process")) == 0, capsys.readouterr().err
    capsys.readouterr()
    via_pool = rows_without_timings(tmp_path / "pool" / "results.jsonl")
    assert sorted(via_ray) == sorted(via_pool)
    assert {r["kind"] for r in via_ray.values()} == {"search", "optimum"}
    for key, row in via_ray.items():
        assert row == via_pool[key], key


def test_a_failed_job_on_ray_fails_with_its_own_error():
    ray = pytest.importorskip("ray")

    from tts_sim.bench.ray_executor import RayExecutor
    from tts_sim.errors import ConfigError

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ex = RayExecutor(workers=1)
        assert ex.submit(divmod, 7, 2).result(timeout=120) == (3, 1)
        with pytest.raises(ConfigError, match="bad job"):  # the job's own error, not Ray's wrapper
            ex.submit(_raise_config_error, "bad job").result(timeout=120)
        ex.shutdown()
        assert ray.is_initialized()  # a Ray the caller started stays up
    finally:
        ray.shutdown()


def _raise_config_error(message: str) -> None:
    from tts_sim.errors import ConfigError

    raise ConfigError(message)


def test_without_ray_the_error_names_the_extra(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name.split(".")[0] == "ray":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for name in list(sys.modules):  # as on a machine without the extra
        if name.split(".")[0] == "ray":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(bench_argv(tmp_path / "b", "--executor", "ray"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install 'tts-sim[ray]'" in err, err


def test_a_ray_address_needs_the_ray_executor(capsys, tmp_path):
    code = main(bench_argv(tmp_path / "b", "--ray-address", "127.0.0.1:6379"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--ray-address needs --executor ray" in err, err
