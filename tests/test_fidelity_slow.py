"""``tts-sim profile`` then ``tts-sim fidelity`` on the real SmolLM2-135M (a few minutes; ``-m slow``)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from tts_sim.cli import main  # noqa: E402
from tts_sim.core.profile import Profile  # noqa: E402
from tts_sim.real.fidelity import SUMMARY_KEYS  # noqa: E402
from tts_sim.tasks import TASKS  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


def test_profile_then_fidelity_on_two_drawn_graphs(smollm2_add_profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))
    prof = smollm2_add_profile
    capsys.readouterr()
    out = tmp_path / "fid"
    args = ["fidelity", "--profile", str(prof), "--generate", "2", "--max-width", "2", "--max-depth", "1",
            "--questions", "3", "--offset", "4", "--latency-questions", "1", "--batch", "2", "--threads", "2",
            "--out", str(out), "--quiet", "--json", "--seed", "1"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["summary"]) == list(SUMMARY_KEYS) and data["summary"]["n_graphs"] == 2
    assert not set(data["config"]["questions"]) & set(Profile.load(prof).task("add").question_ids)
    for row in data["rows"]:
        assert row["measured"]["n_questions"] == 3 and row["measured"]["latency"]["p50_s"] > 0
        assert row["predicted"]["latency"]["p50_s"] > 0
    assert data["config"]["served_by"][MODEL]["provider"] == "CPUExecutionProvider"
    assert (out / "fidelity_add.png").stat().st_size > 0 and (out / "fidelity_add.md").exists()
    journal = (out / "fidelity_add.journal.jsonl").read_text().splitlines()
    assert len(journal) == 1 + 2 * 3
    assert main(args) == 0  # resumed: everything from the journal
    again = json.loads(capsys.readouterr().out)
    assert again["rows"] == data["rows"]
