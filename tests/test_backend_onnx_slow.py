"""Real models through the ONNX Runtime backend (minutes: the first run converts and caches them).

Run with ``pytest -m slow tests/test_backend_onnx_slow.py``; models go to ``$TTS_SIM_CACHE`` or
``~/.cache/tts-sim/models``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.exporters.onnx")

from tts_sim.backends.onnxruntime import OnnxEngine, OnnxRuntimeBackend, cpu_name, prepare_model  # noqa: E402
from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, default_cache_dir  # noqa: E402
from tts_sim.backends.onnxruntime.gguf_meta import read_gguf_fields  # noqa: E402
from tts_sim.core.backend import GenerationRequest  # noqa: E402

from .test_backend_onnx import _spm_reference  # noqa: E402

pytestmark = pytest.mark.slow
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def _quiet(_: str) -> None:
    pass


def _ask(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def test_smollm2_answers_a_chat_question():
    engine = OnnxEngine(prepare_model("smollm2-135m", "fp32", progress=_quiet), threads=2)
    assert engine.manifest.architecture == "llama" and engine.manifest.chat_template_source == "gguf"
    prompt = engine.apply_chat_template(FRANCE)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    result = engine.generate([engine.encode_chat(FRANCE)], max_new_tokens=48)[0]
    assert result.text.startswith("The capital of France is Paris"), result.text
    assert result.finish_reason == "stop" and result.decode_s > 0 and result.prefill_s > 0


@pytest.mark.parametrize("quantization", ["fp32", "int8", "int4"])
def test_smollm2_quantised_batches_stay_coherent(quantization):
    """A left-padded batch of questions the 135M model knows robustly (its France answer is a near-tie
    between "The" and "L'" that any quantisation may flip)."""
    engine = OnnxEngine(prepare_model("smollm2-135m", quantization, progress=_quiet), threads=2)
    questions = {"What is the capital of Germany?": "Berlin", "What is the capital city of Japan?": "Tokyo"}
    prompts = [engine.encode_chat(_ask(q)) for q in questions]
    assert len(prompts[0]) != len(prompts[1])
    for result, answer in zip(engine.generate(prompts, max_new_tokens=24), questions.values(), strict=True):
        assert answer in result.text, result.text


def test_smollm2_int8_dynamic_mixes_the_rows_of_a_batch():
    """quantize_dynamic quantises activations with one scale per tensor, i.e. across the batch; MatMulNBits
    (int8) quantises per row. Measured: a prompt's logits move by whole units next to another prompt."""
    def shift(quantization: str) -> float:
        engine = OnnxEngine(prepare_model("smollm2-135m", quantization, progress=_quiet), threads=2)
        a, b = engine.encode_chat(FRANCE), engine.encode_chat(_ask("What is the capital of Italy?"))
        assert len(a) == len(b)
        mask = np.ones((2, len(a)), dtype=np.int64)
        together = engine._forward(np.array([a, b]), mask, engine._empty_past(2))[0][0]
        alone = engine._forward(np.array([a]), mask[:1], engine._empty_past(1))[0][0]
        return float(np.abs(together - alone).max())

    assert shift("int8") < 1e-3
    assert shift("int8-dynamic") > 1.0


def test_smollm2_backend_batch_and_info():
    backend = OnnxRuntimeBackend(quantization="int8", threads=2, progress=_quiet)
    requests = [GenerationRequest(messages=tuple(_ask(q)), max_new_tokens=24)
                for q in ("What is the capital of Germany?", "What is the capital city of Japan?")]
    answers = backend.generate("smollm2-135m", requests)
    assert "Berlin" in answers[0].text and "Tokyo" in answers[1].text, [a.text for a in answers]
    info = backend.info("smollm2-135m")
    assert info.provider == "CPUExecutionProvider" and info.device == cpu_name() and info.quantization == "int8"


@pytest.fixture(scope="module")
def gemma_engine():
    return OnnxEngine(prepare_model("gemma-3-270m", "fp32", progress=_quiet), threads=2)


def test_gemma_tokenizer_ids_match_the_gguf_vocabulary(gemma_engine):
    """The transformers 4.57 GGUF loader builds a Unigram tokenizer for Gemma 3; ours must be SPM-BPE."""
    assert gemma_engine.manifest.tokenizer_rebuilt
    gguf = BUILTIN_MODELS["gemma-3-270m"].locate(default_cache_dir())
    fields = read_gguf_fields(gguf, ("tokenizer.ggml.tokens", "tokenizer.ggml.scores"))
    tokens, scores = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.scores"]
    assert gemma_engine.encode("Hello world") == [2, 9259, 1902]  # <bos> "Hello" "▁world" in Gemma 3's vocabulary
    for text in ["The capital of France is Paris.", "Tokenization: naïve café — 12345 + 678 = 13023!",
                 "Large language models collaborate in graphs.", "日本語のテキスト"]:
        ids = gemma_engine.encode(text)
        assert ids == [2] + _spm_reference(text, tokens, scores), text
        assert gemma_engine.decode(ids) == text
    # user-defined pieces (newline runs, space runs) match verbatim, as llama.cpp does
    ids = gemma_engine.encode("a\n\nb    c")
    assert tokens.index("\n\n") in ids and tokens.index("    ") in ids


def test_gemma_base_model_completes_a_fact(gemma_engine):
    result = gemma_engine.generate(["The capital of France is Paris. The capital of Germany is"], max_new_tokens=4)[0]
    assert result.text.startswith(" Berlin"), result.text
    story = gemma_engine.generate(["Once upon a time, there was a"], max_new_tokens=12)[0]
    assert story.completion_tokens == 12 and story.text.count(" ") >= 8, story.text  # words, not byte soup
    chat = gemma_engine.apply_chat_template(FRANCE)  # a base model: plain dialogue, not turns it never saw
    assert chat == "<bos>User: What is the capital of France?\nAssistant:"
    assert gemma_engine.tokenizer.token_to_id("<end_of_turn>") in gemma_engine.manifest.eos_token_ids
