"""Third-party plug-ins: a tiny package in tests/plugin_pkg declares a searcher, a task and a device as
entry points, exactly as the built-ins are declared; installed, the CLI lists and uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(PLUGIN)],
                         capture_output=True, text=True, cwd=build)
    if out.returncode != 0:
        pytest.fail(f"pip could not install the dummy plug-in: {out.stderr[-2000:]}")
    return target


def cli(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "tts_sim.cli", *argv], capture_output=True, text=True, env=env)


def scenario_profile(site: Path, task: str, path: Path) -> Path:
    """A synthetic scenario profile for a third-party task (the shipped one covers the built-ins only)."""
    code = ("import sys; from tts_sim.sim.scenario import generate_profile; "
            f"generate_profile(0, questions={{{task!r}: 120}}, samples=32, records=300).save({str(path)!r})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return path


def test_the_cli_lists_and_runs_a_third_party_searcher_task_and_device(plugin_site, tmp_path):
    listed = cli(plugin_site, "search", "--list-searchers")
    assert listed.returncode == 0 and "single-best" in listed.stdout and "limit=3" in listed.stdout
    tasks = cli(plugin_site, "tasks", "--json")
    assert tasks.returncode == 0 and "coin" in {t["name"] for t in json.loads(tasks.stdout)}
    done = cli(plugin_site, "search", "--task", "coin", "--budget", "18", "--searcher", "single-best",
               "--set", "limit=2", "--evals", "5", "--cluster", "1xtiny-gpu", "--quiet", "--json",
               "--profile", str(scenario_profile(plugin_site, "coin", tmp_path / "coin.json.gz")),
               "--out", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["searcher"] == "single-best" and result["config"]["options"] == {"limit": 2}
    assert len(result["trials"]) == 2 and "tiny-gpu" in result["heldout"]["latency"]["cluster"]


def test_a_bad_option_for_a_third_party_searcher_is_one_line(plugin_site, tmp_path):
    bad = cli(plugin_site, "search", "--searcher", "single-best", "--set", "limit=many", "--out", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "searcher 'single-best' option limit: expected an integer" in bad.stderr
