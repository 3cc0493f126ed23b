"""``tts-sim profile`` then ``tts-sim validate`` on the real SmolLM2-135M (a couple of minutes; ``-m slow``)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("onnxruntime")

from tts_sim.cli import main  # noqa: E402
from tts_sim.core.presets import parallel, single  # noqa: E402
from tts_sim.core.profile import Profile  # noqa: E402
from tts_sim.tasks import TASKS  # noqa: E402

pytestmark = pytest.mark.slow
MODEL, L1 = "smollm2-135m", "llama-3.2-1b"


def test_profile_then_validate_two_graphs(smollm2_add_profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))  # validate registers the measured `add` spec
    prof = smollm2_add_profile
    capsys.readouterr()
    graphs = tmp_path / "graphs.json"
    graphs.write_text(json.dumps([{"graph": single(L1).to_dict(), "score": 0.4},
                                  {"graph": parallel(2, L1, output_model=L1).to_dict(), "score": 0.5}]))
    report = tmp_path / "report.md"
    assert main(["validate", str(graphs), "--task", "add", "--profile", str(prof), "--questions", "3",
                 "--substitute", MODEL, "--threads", "2", "--report", str(report), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_map"] == {L1: MODEL} and len(data["graphs"]) == 2
    assert not set(data["config"]["heldout_question_ids"]) & set(Profile.load(prof).task("add").question_ids)
    for g in data["graphs"]:
        measured, predicted = g["measured"], g["predicted"]
        assert measured["n_questions"] == 3 and measured["meta"]["backend"][MODEL]["provider"] == "CPUExecutionProvider"
        assert predicted["latency"]["predictor"] == "profile-table" and predicted["latency"]["cluster"] == "1xcpu"
        assert math.isfinite(g["latency_relative_error"]["mean"])
        assert measured["meta"]["max_new_tokens"] == 24  # taken from the profile
    first, second = data["graphs"]
    assert first["search_score"] == 0.5 and second["search_score"] == 0.4  # parallel(2), then single
    assert first["predicted"]["latency"]["mean_s"] > second["predicted"]["latency"]["mean_s"]
    assert "smollm2-135m" in report.read_text()
