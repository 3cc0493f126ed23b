"""The search checkpoint is an append-only journal: a kill at any moment (even while a resume is
replaying) loses nothing, a torn last line is dropped, and old-format checkpoints still resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace, run_search
from tts_sim.search.checkpoint import LEGACY_SCHEMA, Checkpoint

ROOT = Path(__file__).resolve().parents[1]

# Runs one search; with KILL_AT=k it SIGKILLs itself right after the k-th trial (replayed or new)
# reaches the progress callback, i.e. mid-replay when k is below the journal's trial count.
_SCRIPT = """
import json, os, signal, sys
from tests.search_fakes import FakeEvaluator
from tts_sim.search import SearchSpace, run_search

kill_at, seen = int(os.environ.get("KILL_AT", "0")), []
def progress(trial):
    seen.append(trial.index)
    if len(seen) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
space = SearchSpace("math", 18.0, max_nodes=4)
result = run_search("agent-reinforce", space, FakeEvaluator("math", 120), 25, seed=3,
                    checkpoint=sys.argv[1], progress=progress)
print(json.dumps({"trials": [[t.graph_key, t.score, t.n_questions] for t in result.trials],
                  "best": result.best.to_dict(), "heldout": result.heldout.accuracy,
                  "agent_calls": result.cost.agent_calls}))
"""


def _run(path: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_AT": str(kill_at)}
    return subprocess.run([sys.executable, "-c", _SCRIPT, str(path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_kill_during_replay_loses_nothing_and_the_resumed_search_equals_an_uninterrupted_one(tmp_path):
    path = tmp_path / "checkpoint.jsonl"
    first = _run(path, kill_at=12)
    assert first.returncode == -signal.SIGKILL
    state = Checkpoint(path).load()
    assert len(state.trials) == 12 and state.agent_calls
    journal = path.read_bytes()

    replaying = _run(path, kill_at=4)  # killed at the 4th of 12 replayed trials
    assert replaying.returncode == -signal.SIGKILL
    assert path.read_bytes() == journal  # replay wrote nothing: 12 trials still there (the old format kept 4)

    resumed = _run(path)
    assert resumed.returncode == 0, resumed.stderr
    clean = _run(tmp_path / "clean.jsonl")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(resumed.stdout) == json.loads(clean.stdout)
    assert path.read_bytes().startswith(journal)  # only appended to
    trials = Checkpoint(path).load().trials  # every evaluation exactly once, in order
    assert [t["index"] for t in trials] == list(range(len(json.loads(clean.stdout)["trials"])))


def _space() -> SearchSpace:
    return SearchSpace("math", 18.0, max_nodes=4)


def _summary(result) -> list:
    return [(t.graph_key, t.score, t.n_questions) for t in result.trials]


def test_a_torn_last_line_is_dropped_and_its_evaluation_runs_again(tmp_path):
    path = tmp_path / "c.jsonl"
    clean = run_search("random", _space(), FakeEvaluator("math", 120), 10, seed=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_search("random", _space(), FakeEvaluator("math", 120, fail_after=5), 10, seed=2, checkpoint=path)
    whole = path.read_bytes()
    lines = whole.split(b"\n")
    assert len(Checkpoint(path).load().trials) == 5
    path.write_bytes(whole[: len(whole) - len(lines[-2]) // 2 - 1])  # cut the 5th trial's line in half
    assert len(Checkpoint(path).load().trials) == 4
    ev = FakeEvaluator("math", 120)
    resumed = run_search("random", _space(), ev, 10, seed=2, checkpoint=path)
    assert ev.calls == clean.cost.evaluations - 4 + 1  # the torn one again, the rest, the held-out run
    assert _summary(resumed) == _summary(clean) and resumed.heldout.accuracy == clean.heldout.accuracy
    assert len(Checkpoint(path).load().trials) == clean.cost.evaluations  # the torn bytes were cut off


def test_a_bad_line_before_the_last_is_corruption(tmp_path):
    path = tmp_path / "c.jsonl"
    run_search("random", _space(), FakeEvaluator("math", 120), 4, seed=2, checkpoint=path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:10]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ConfigError, match="line 3"):
        run_search("random", _space(), FakeEvaluator("math", 120), 4, seed=2, checkpoint=path)


def test_an_old_format_checkpoint_resumes_and_becomes_a_journal(tmp_path):
    path = tmp_path / "c.jsonl"
    clean = run_search("agent-reinforce", _space(), FakeEvaluator("math", 120), 12, seed=4)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_search("agent-reinforce", _space(), FakeEvaluator("math", 120, fail_after=6), 12, seed=4,
                   checkpoint=path)
    state = Checkpoint(path).load()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": LEGACY_SCHEMA, "version": 1, "config": state.config,
                               "trials": state.trials, "agent_calls": state.agent_calls, "elapsed_s": 1.5}))
    ev = FakeEvaluator("math", 120)
    resumed = run_search("agent-reinforce", _space(), ev, 12, seed=4, checkpoint=old)
    assert ev.calls == clean.cost.evaluations - 6 + 1
    assert _summary(resumed) == _summary(clean)
    assert old.read_text().splitlines()[0].startswith('{"schema":"tts-sim/search-journal"')
    assert len(Checkpoint(old).load().trials) == clean.cost.evaluations
