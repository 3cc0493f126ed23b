"""Base (not chat-tuned) models get a plain dialogue; stale prepared folders are brought up to date."""

from __future__ import annotations

import pytest

pytest.importorskip("jinja2")

from tts_sim.backends.onnxruntime.chat import PLAIN_SOURCE, default_chat_template, render_chat  # noqa: E402
from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, _refresh_default_template, _Source  # noqa: E402
from tts_sim.backends.onnxruntime.manifest import ModelManifest  # noqa: E402

MESSAGES = [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "What is 2 + 3?"}]


def test_plain_dialogue_ends_where_the_model_should_answer():
    template, source = default_chat_template("gemma3_text", base=True)
    assert source == PLAIN_SOURCE
    text = render_chat(template, MESSAGES, bos_token="<bos>")
    assert text == "<bos>Be careful.\n\nUser: What is 2 + 3?\nAssistant:"
    assert "<start_of_turn>" not in text


def test_only_the_gemma_base_model_is_marked_base():
    assert BUILTIN_MODELS["gemma-3-270m"].base and not BUILTIN_MODELS["smollm2-135m"].base


def _manifest(template: str, source: str) -> ModelManifest:
    return ModelManifest(name="m", architecture="gemma3_text", quantization="fp32", source="s",
                         chat_template=template, eos_token_ids=(1,), pad_token_id=0, bos_token="<bos>",
                         eos_token="<eos>", chat_template_source=source)


def test_a_stale_default_template_is_refreshed_and_a_model_own_template_is_kept(tmp_path):
    old, old_source = default_chat_template("gemma3_text")
    _manifest(old, old_source).write(tmp_path)
    _refresh_default_template(tmp_path, _Source("m", "m", base=True))
    assert ModelManifest.read(tmp_path).chat_template_source == PLAIN_SOURCE

    _manifest("{{ messages }}", "gguf").write(tmp_path)
    _refresh_default_template(tmp_path, _Source("m", "m", base=True))
    assert ModelManifest.read(tmp_path).chat_template == "{{ messages }}"
