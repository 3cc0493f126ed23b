"""Real models on the genai engine: greedy fp32 equals transformers token for token (minutes: the first run
dequantises the GGUF and builds the genai graphs into the cache)."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("torch")

from benchmarks.genai_agreement import PROMPTS, agreement  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma-3-270m"])
def test_genai_fp32_greedy_equals_transformers_on_real_models(model):
    report = agreement(model, tokens=32, quantizations=())
    assert report["fp32_vs_transformers"]["sequences_equal"] == len(PROMPTS), report
