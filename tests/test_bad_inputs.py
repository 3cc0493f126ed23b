"""The one-line-error contract: every malformed input (graphs, profiles, models files, cluster
specs, budgets, objectives, bench options, CLI arguments; tests/bad_inputs.py) ends with exit
status 2 and exactly one non-empty line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bad_inputs import CASES, write_files
from tts_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    write_files(d)
    return d


def test_the_corpus_is_large():
    assert len(CASES) >= 100


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_line_and_exit_2(name, folder, capsys):
    argv = [a.replace("{d}", str(folder)) for a in CASES[name]]
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr: {err[-500:]!r}"
    assert len(lines) == 1 and err.endswith("\n") and err.count("\n") == 1, f"stderr: {err[-800:]!r}"
    prefix = re.match(r"tts-sim(?: [\w-]+)*: error: ", lines[0])  # usage errors name their (sub)command
    assert prefix and len(lines[0]) > prefix.end() + 5 and lines[0].count("error:") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["graph-check-deep-list", "profile-deep.json.gz", "profile-fusion-5-fields.json",
                                  "graph-check-id-newline", "bench-cluster-2x", "validate-missing-file"])
def test_the_installed_command_line_keeps_the_contract(name, folder):
    """The same through a real interpreter (no pytest capture; the default recursion limit)."""
    argv = [a.replace("{d}", str(folder)) for a in CASES[name]]
    proc = subprocess.run([sys.executable, "-m", "tts_sim.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
