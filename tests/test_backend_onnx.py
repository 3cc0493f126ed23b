"""ONNX Runtime backend on tiny random LLaMA and Gemma 3 models built here, exported with optimum.

The engine's greedy tokens must equal transformers' ``generate``; everything else (sampling, stop strings,
batching, quantised exports, chat templates, the Backend protocol) runs through the real engine too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sim.core.backend import stop_at

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from tts_sim.backends.onnxruntime import (  # noqa: E402
    OnnxEngine,
    OnnxRuntimeBackend,
    SamplingParams,
    cpu_name,
    prepare_model,
)
from tts_sim.backends.onnxruntime.chat import CHATML_TEMPLATE, GEMMA_TEMPLATE, render_chat  # noqa: E402
from tts_sim.backends.onnxruntime.quantize import QUANTIZERS  # noqa: E402
from tts_sim.backends.onnxruntime.sampling import choose_token, nucleus_probabilities  # noqa: E402
from tts_sim.backends.onnxruntime.tokenizer_fix import spm_bpe_tokenizer  # noqa: E402
from tts_sim.core.backend import Backend, GenerationRequest  # noqa: E402
from tts_sim.errors import ConfigError  # noqa: E402

VOCAB = 512
WORDS = ("the quick brown fox jumps over lazy dog what is capital of france paris rome berlin answer question "
         "number seven eight nine plus minus equals model token graph search budget compute agent fuse "
         "assistant user system hello world python function return value list dict string integer float "
         "alpha beta gamma delta epsilon zeta theta lambda sigma omega red green blue yellow purple orange "
         "cat mouse horse sheep goat cow chicken river mountain forest ocean desert island valley").split()
LLAMA_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def _corpus() -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=30)) + f" {i} {i * 7 % 13}." for i in range(300)]


def _tokenizer(specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    return tok


def _build(arch: str, folder: Path):
    """A tiny random model + tokenizer saved as a Hugging Face folder; returns the torch model."""
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(0 if arch == "llama" else 1)
    if arch == "llama":
        tok = _tokenizer(LLAMA_SPECIALS)
        config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                             tie_word_embeddings=True)  # tied like SmolLM2: optimum exports Transpose(embedding)
        model = LlamaForCausalLM(config)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                       pad_token="<|endoftext|>", chat_template=CHATML_TEMPLATE)
    else:
        tok = _tokenizer(GEMMA_SPECIALS)
        # sliding window 8 < the sequences below, so windowed attention through the KV cache is exercised
        config = Gemma3TextConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                  max_position_embeddings=512, sliding_window=8, pad_token_id=0, eos_token_id=1,
                                  bos_token_id=2)
        model = Gemma3ForCausalLM(config)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    assert tok.get_vocab_size() == VOCAB
    model.eval()
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return model


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """{arch: (torch model, fp32 ONNX folder, HF folder, cache dir)} for "llama" and "gemma3"."""
    root = tmp_path_factory.mktemp("onnx_tiny")
    out = {}
    for arch in ("llama", "gemma3"):
        hf = root / f"{arch}_hf"
        model = _build(arch, hf)
        cache = root / "cache"
        out[arch] = (model, prepare_model(str(hf), "fp32", cache_dir=cache, progress=lambda _: None), hf, cache)
    return out


@pytest.fixture(scope="session")
def engines(tiny):
    """Engines on ``$TTS_SIM_TEST_DEVICE`` (default cpu; ``benchmarks/gpu_check.sh`` sets cuda)."""
    device = os.environ.get("TTS_SIM_TEST_DEVICE", "cpu")
    return {arch: OnnxEngine(folder, threads=1, device=device) for arch, (_, folder, _, _) in tiny.items()}


def _reference(model, prompt: list[int], n: int, eos: tuple[int, ...]) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, eos_token_id=list(eos), pad_token_id=0)
    return out[0, len(prompt):].tolist()


PROMPTS = ["the quick brown fox jumps over the lazy dog and then", "what is the capital of france", "7 plus"]
ARCHS = ["llama", "gemma3"]


# ----- exactness against transformers ---------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_prefill_logits_match_torch(arch, tiny, engines):
    model, engine = tiny[arch][0], engines[arch]
    ids = engine.encode(PROMPTS[0])
    logits, _ = engine._forward(np.array([ids]), np.ones((1, len(ids)), dtype=np.int64), engine._empty_past(1))
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0, -1].numpy()
    assert logits.shape == (1, VOCAB)
    np.testing.assert_allclose(logits[0], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_transformers_batch_of_one(arch, prompt, tiny, engines):
    model, engine = tiny[arch][0], engines[arch]
    ids = engine.encode(prompt)
    result = engine.generate([ids], max_new_tokens=24)[0]
    assert list(result.token_ids) == _reference(model, ids, 24, engine.manifest.eos_token_ids)
    assert result.prompt_tokens == len(ids) and result.completion_tokens == len(result.token_ids)


@pytest.mark.parametrize("arch", ARCHS)
def test_left_padded_batch_equals_unpadded_reference(arch, tiny, engines):
    model, engine = tiny[arch][0], engines[arch]
    prompts = [engine.encode(PROMPTS[0]), engine.encode(PROMPTS[2])]
    assert len(prompts[0]) - len(prompts[1]) >= 5
    results = engine.generate(prompts, max_new_tokens=20)
    for prompt, result in zip(prompts, results, strict=True):
        assert list(result.token_ids) == _reference(model, prompt, 20, engine.manifest.eos_token_ids)
    assert results[0].prompt_tokens == len(prompts[0]) and results[1].prompt_tokens == len(prompts[1])
    assert results[0].prefill_s == results[1].prefill_s > 0


def test_position_ids_input_follows_the_graph(engines):
    assert engines["llama"].has_position_ids and not engines["gemma3"].has_position_ids


# ----- sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_sampling_is_reproducible_and_seed_dependent(arch, engines):
    engine = engines[arch]
    ids = engine.encode(PROMPTS[1])
    runs = [engine.generate([ids], max_new_tokens=16, temperature=1.5, seed=s)[0].token_ids for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    greedy = engine.generate([ids], max_new_tokens=16)[0].token_ids
    assert runs[0] != greedy


def test_batch_row_i_samples_with_seed_plus_i(engines):
    engine = engines["llama"]
    ids = engine.encode(PROMPTS[1])
    batch = engine.generate([ids, ids, ids], max_new_tokens=10, temperature=1.0, seed=3)
    singles = [engine.generate([ids], max_new_tokens=10, temperature=1.0, seed=3 + i)[0] for i in range(3)]
    assert [r.token_ids for r in batch] == [r.token_ids for r in singles]
    assert len({r.token_ids for r in batch}) > 1


def test_tiny_top_p_is_greedy(engines):
    engine = engines["gemma3"]
    ids = engine.encode(PROMPTS[0])
    sampled = engine.generate([ids], max_new_tokens=12, temperature=1.0, top_p=1e-9, seed=0)[0]
    assert sampled.token_ids == engine.generate([ids], max_new_tokens=12)[0].token_ids


@settings(max_examples=60, deadline=None)
@given(logits=st.lists(st.floats(-20, 20), min_size=2, max_size=40),
       temperature=st.floats(0.05, 5.0), top_p=st.floats(1e-6, 1.0))
def test_nucleus_keeps_the_smallest_top_set(logits, temperature, top_p):
    x = np.array(logits, dtype=np.float32)
    p = nucleus_probabilities(x, temperature, top_p)
    assert p.sum() == pytest.approx(1.0)
    full = np.exp((x.astype(np.float64) - x.max()) / temperature)
    full /= full.sum()
    kept = p > 0
    # every kept token is at least as likely as every dropped one
    if (~kept).any():
        assert full[kept].min() >= full[~kept].max()
    # the kept mass reaches top_p, and dropping the least likely kept token would fall short
    mass = full[kept].sum()
    assert mass >= top_p - 1e-9
    if kept.sum() > 1:
        assert mass - full[kept].min() < top_p + 1e-9
    # within the kept set, probabilities keep their ratios
    np.testing.assert_allclose(p[kept], full[kept] / mass, rtol=1e-6)


def test_top_p_one_is_plain_softmax_and_draws_follow_it():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    np.testing.assert_allclose(nucleus_probabilities(logits, 1.0, 1.0), [0.5, 0.3, 0.15, 0.05], rtol=1e-6)
    rng = np.random.default_rng(0)
    params = SamplingParams(temperature=1.0, top_p=0.8)  # keeps 0.5 + 0.3 -> renormalised 0.625 / 0.375
    draws = np.bincount([choose_token(logits, params, rng) for _ in range(4000)], minlength=4) / 4000
    assert draws[2] == draws[3] == 0
    assert abs(draws[0] - 0.625) < 0.03


@pytest.mark.parametrize("kwargs", [dict(temperature=-1.0), dict(top_p=0.0), dict(top_p=1.5),
                                    dict(max_new_tokens=0), dict(stop="x"), dict(stop=("",))])
def test_bad_sampling_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        SamplingParams(**kwargs)


# ----- stopping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_stop_string_truncates_text(arch, engines):
    engine = engines[arch]
    ids = engine.encode(PROMPTS[0])
    full = engine.generate([ids], max_new_tokens=30)[0]
    assert len(full.text) >= 6, full.text
    stop = full.text[len(full.text) // 2:len(full.text) // 2 + 3]
    cut = stop_at(full.text, (stop,))  # the one rule: the first occurrence after the reply's first visible character
    assert cut is not None
    stopped = engine.generate([ids], max_new_tokens=30, stop=[stop, "never-appears"])[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[:cut]
    assert stopped.token_ids == full.token_ids[:len(stopped.token_ids)]
    assert stop_at(engine.decode(stopped.token_ids), (stop,)) is not None  # it stopped at the first token that
    assert stop_at(engine.decode(stopped.token_ids[:-1]), (stop,)) is None  # completed the stop string


@pytest.mark.parametrize("n", [1, 5, 17])
def test_max_new_tokens_cuts_a_prefix(n, engines):
    engine = engines["llama"]
    ids = engine.encode(PROMPTS[2])
    long = engine.generate([ids], max_new_tokens=30)[0]
    short = engine.generate([ids], max_new_tokens=n)[0]
    assert short.token_ids == long.token_ids[:n]
    if len(long.token_ids) > n:
        assert short.finish_reason == "length" and short.completion_tokens == n
        assert short.text == engine.decode(long.token_ids[:n])


def test_eos_ends_a_sequence_but_not_its_batch(tiny, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny["llama"][1], folder)
    engine = OnnxEngine(tiny["llama"][1], threads=1)
    prompts = [engine.encode(PROMPTS[0]), engine.encode(PROMPTS[1])]
    free = engine.generate(prompts, max_new_tokens=12)
    eos = free[0].token_ids[4]
    manifest = json.loads((folder / "tts_sim_model.json").read_text())
    manifest["eos_token_ids"] = [eos]
    (folder / "tts_sim_model.json").write_text(json.dumps(manifest))
    stopped = OnnxEngine(folder, threads=1).generate(prompts, max_new_tokens=12)
    first = free[0].token_ids.index(eos)
    assert stopped[0].token_ids == free[0].token_ids[:first + 1]
    assert stopped[0].finish_reason == "stop" and stopped[0].text == engine.decode(free[0].token_ids[:first])
    if eos not in free[1].token_ids:
        assert stopped[1].token_ids == free[1].token_ids and stopped[1].finish_reason == "length"
    assert stopped[0].decode_s <= stopped[1].decode_s or eos in free[1].token_ids


# ----- timing hooks -----------------------------------------------------------------------------
def test_step_hook_sees_every_forward_pass(tiny):
    events = []
    engine = OnnxEngine(tiny["llama"][1], threads=1, step_hook=events.append)
    engine.generate([[5, 6, 7, 8, 9], [5, 6, 7]], max_new_tokens=4, stop=())
    kinds = [(e.kind, e.batch, e.new_tokens, e.context) for e in events]
    steps_run = len(events) - 1
    assert kinds[0] == ("prefill", 2, 5, 0)
    assert kinds[1:] == [("decode", 2, 1, 5 + i) for i in range(steps_run)]
    assert 1 <= steps_run <= 3 and all(e.seconds > 0 for e in events)
    assert engine.time_prefill(16, batch=2, repeats=2) > 0
    assert engine.time_decode(16, batch=2, steps=3) > 0
    assert events[-1].kind == "decode" and events[-1].batch == 2 and events[-1].context == 16 + 3
    assert engine.time_decode(16, batch=2, steps=3, temperature=0.7, top_p=0.9) > 0  # the sampled choice, timed
    assert events[-1].kind == "decode" and events[-1].context == 16 + 3


# ----- quantised exports and caching ---------------------------------------------------------------
@pytest.fixture(scope="session")
def quantised(tiny):
    """{quantization: engine} for the tiny LLaMA (tied LM head, like SmolLM2)."""
    _, _, hf, cache = tiny["llama"]
    return {q: OnnxEngine(prepare_model(str(hf), q, cache_dir=cache, progress=lambda _: None), threads=1)
            for q in ("int8", "int4", "int8-dynamic")}


def _prefill_logits(engine: OnnxEngine, prompts: list[list[int]]) -> np.ndarray:
    ids = np.array(prompts)
    return engine._forward(ids, np.ones_like(ids), engine._empty_past(len(prompts)))[0]


@pytest.mark.parametrize("quantization,op", [("int8", "MatMulNBits"), ("int4", "MatMulNBits"),
                                             ("int8-dynamic", "MatMulInteger")])
def test_quantised_export_runs(quantization, op, tiny, engines, quantised):
    import onnx

    fp32_dir = tiny["llama"][1]
    engine = quantised[quantization]
    assert engine.model_dir.parent == fp32_dir.parent and engine.model_dir.name == quantization
    graph = onnx.load(str(engine.model_dir / "model.onnx"), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    node = producer["logits"]
    while node.op_type in ("Mul", "Cast"):  # int8-dynamic: logits = Cast(MatMulInteger(...)) * scale
        node = producer[node.input[0]]
    assert node.op_type == op  # the (tied) LM head was quantised too
    assert engine.manifest.quantization == quantization and engine.manifest.recipe.endswith(QUANTIZERS[quantization][1])
    ids = engines["llama"].encode(PROMPTS[0])
    corr = np.corrcoef(_prefill_logits(engine, [ids])[0], _prefill_logits(engines["llama"], [ids])[0])[0, 1]
    assert corr > (0.99 if quantization == "int8" else 0.9)
    result = engine.generate([ids], max_new_tokens=8)[0]
    assert result.completion_tokens >= 1 and result.provider == "CPUExecutionProvider"


@pytest.mark.parametrize("quantization", ["int8", "int4"])
def test_blockwise_quantisation_does_not_mix_the_rows_of_a_batch(quantization, engines, quantised):
    """MatMulNBits quantises activations per row: a prompt's logits do not depend on its batch companions
    (quantize_dynamic's per-tensor scale would make them do)."""
    a, b = engines["llama"].encode(PROMPTS[0]), engines["llama"].encode(PROMPTS[1][::-1] * 3)
    b = (b * 4)[:len(a)]
    engine = quantised[quantization]
    together = _prefill_logits(engine, [a, b])
    np.testing.assert_allclose(together[0], _prefill_logits(engine, [a])[0], atol=1e-4)
    np.testing.assert_allclose(together[1], _prefill_logits(engine, [b])[0], atol=1e-4)


def test_a_folder_made_by_another_recipe_is_rebuilt(tiny, tmp_path):
    _, fp32_dir, hf, _ = tiny["llama"]
    cache = tmp_path / "cache"
    folder = prepare_model(str(hf), "fp32", cache_dir=cache, progress=lambda _: None)
    manifest = json.loads((folder / "tts_sim_model.json").read_text())
    manifest["recipe"] = "something older"
    (folder / "tts_sim_model.json").write_text(json.dumps(manifest))
    messages = []
    assert prepare_model(str(hf), "fp32", cache_dir=cache, progress=messages.append) == folder
    assert not any("already prepared" in m for m in messages)
    assert json.loads((folder / "tts_sim_model.json").read_text())["recipe"] != "something older"


def test_prepared_model_is_reused(tiny):
    _, folder, hf, cache = tiny["gemma3"]
    before = (folder / "model.onnx").stat().st_mtime_ns
    messages = []
    assert prepare_model(str(hf), "fp32", cache_dir=cache, progress=messages.append) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == before
    assert len(messages) == 1 and "already prepared" in messages[0]


def test_manifest_records_what_was_exported(tiny):
    llama = json.loads((tiny["llama"][1] / "tts_sim_model.json").read_text())
    gemma = json.loads((tiny["gemma3"][1] / "tts_sim_model.json").read_text())
    assert llama["architecture"] == "llama" and gemma["architecture"] == "gemma3_text"
    assert llama["chat_template_source"] in ("tokenizer_config.json", "chat_template.jinja")
    assert llama["chat_template"] == CHATML_TEMPLATE
    assert gemma["chat_template"] == GEMMA_TEMPLATE  # no template in the folder: the Gemma default
    assert 2 in llama["eos_token_ids"] and 1 in gemma["eos_token_ids"]
    assert llama["num_layers"] == 2 and gemma["head_dim"] == 16 and gemma["num_kv_heads"] == 1
    assert llama["quantization"] == "fp32" and llama["last_logits_only"]


@pytest.mark.parametrize("make", ["unknown-name", "no-config", "no-weights", "not-gguf"])
def test_bad_sources_are_one_line_config_errors(make, tmp_path):
    path = {"unknown-name": "no-such-model-7b"}.get(make, str(tmp_path / "m"))
    if make == "no-config":
        (tmp_path / "m").mkdir()
    elif make == "no-weights":
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "config.json").write_text("{}")
    elif make == "not-gguf":
        (tmp_path / "m").write_text("hello")
    with pytest.raises(ConfigError) as err:
        prepare_model(path, cache_dir=tmp_path / "cache", progress=lambda _: None)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="quantization"):
        prepare_model(path, "int3", cache_dir=tmp_path / "cache")


def test_engine_refuses_bad_prompts_and_providers(tiny, engines):
    engine = engines["llama"]
    for prompts in ([], [[]], [[VOCAB + 5]], "a string"):
        with pytest.raises(ConfigError):
            engine.generate(prompts, max_new_tokens=2)
    with pytest.raises(ConfigError, match="provider"):
        OnnxEngine(tiny["llama"][1], providers=["NoSuchExecutionProvider"])
    with pytest.raises(ConfigError):
        OnnxEngine(tiny["llama"][1].parent)  # no manifest


def test_provider_is_the_one_that_runs(engines):
    for engine in engines.values():
        assert engine.provider == engine.session.get_providers()[0]
        assert engine.provider in ort.get_available_providers()


# ----- chat templates ---------------------------------------------------------------------------
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": " And now? "}]


def test_chatml_rendering_matches_transformers(tiny, engines):
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(tiny["llama"][2]))
    expected = hf_tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert engines["llama"].apply_chat_template(MESSAGES) == expected
    assert expected.endswith("<|im_start|>assistant\n")
    ids = engines["llama"].encode_chat(MESSAGES)
    assert ids == hf_tok.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True)


def test_gemma_turns_render_like_the_official_template(engines):
    text = engines["gemma3"].apply_chat_template(MESSAGES)
    assert text == ("<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n"
                    "<start_of_turn>model\nHello.<end_of_turn>\n"
                    "<start_of_turn>user\nAnd now?<end_of_turn>\n<start_of_turn>model\n")
    ids = engines["gemma3"].encode_chat(MESSAGES)
    assert ids.count(engines["gemma3"].tokenizer.token_to_id("<bos>")) == 1
    with pytest.raises(ConfigError, match="alternate"):
        render_chat(GEMMA_TEMPLATE, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    with pytest.raises(ConfigError):
        render_chat(GEMMA_TEMPLATE, [{"role": "user"}])


# ----- the Backend protocol -----------------------------------------------------------------------
def test_backend_generates_chat_and_reports_what_ran(tiny, engines):
    import onnxruntime

    backend = OnnxRuntimeBackend(threads=1, max_batch=2, progress=lambda _: None)
    assert isinstance(backend, Backend) and backend.name == "onnx"
    model = str(tiny["llama"][1])
    requests = [GenerationRequest(messages=({"role": "user", "content": q},), max_new_tokens=6) for q in PROMPTS]
    generations = backend.generate(model, requests)
    assert len(generations) == 3
    for request, generation in zip(requests, generations, strict=True):
        expected = engines["llama"].generate([engines["llama"].encode_chat(request.messages)], max_new_tokens=6)[0]
        assert generation.text == expected.text
        assert generation.completion_tokens == expected.completion_tokens
        assert generation.prompt_tokens == len(engines["llama"].encode_chat(request.messages))
    info = backend.info(model)
    assert info.backend == "onnxruntime" and info.version == onnxruntime.__version__
    assert info.provider == "CPUExecutionProvider" and info.device == cpu_name() and info.quantization == "fp32"


def test_backend_registry_is_lazy():
    code = ("import sys; from tts_sim.backends import BACKENDS; assert 'onnxruntime' not in sys.modules; "
            "assert 'onnx' in BACKENDS; print(type(BACKENDS.build('onnx', {'threads': 1})).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OnnxRuntimeBackend"


# ----- the Gemma tokenizer rebuild (SentencePiece BPE from GGUF fields) ---------------------------
def _spm_reference(text: str, tokens: list[str], scores: list[float]) -> list[int]:
    """llama.cpp's SPM algorithm: merge the adjacent pair whose merged piece scores best (leftmost on ties)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    symbols = list(text.replace(" ", "▁"))
    while True:
        best = None
        for i in range(len(symbols) - 1):
            merged = symbols[i] + symbols[i + 1]
            if merged in vocab and (best is None or scores[vocab[merged]] > best[0]):
                best = (scores[vocab[merged]], i)
        if best is None:
            break
        i = best[1]
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    out = []
    for s in symbols:
        out += [vocab[s]] if s in vocab else [vocab[f"<0x{b:02X}>"] for b in s.encode()]
    return out


@pytest.fixture(scope="module")
def spm_fields():
    """A SentencePiece-style vocabulary: specials, byte pieces, then pieces in merge order (score = -rank)."""
    tok = _tokenizer(["<pad>"])  # only used for its learned merges
    merges = json.loads(tok.to_str())["model"]["merges"]
    tokens, types, scores = ["<pad>", "<eos>", "<bos>", "<unk>"], [3, 3, 3, 3], [0.0] * 4
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    scores += [0.0] * 256
    alphabet = sorted({c for word in WORDS for c in word} | {"▁"})
    tokens += alphabet
    types += [1] * len(alphabet)
    scores += [-1e6] * len(alphabet)
    for rank, merge in enumerate(merges):
        left, right = merge if isinstance(merge, list) else merge.split(" ")
        piece = (left + right).replace("Ġ", "▁")
        if piece not in tokens and all(c in alphabet for c in piece):
            tokens.append(piece)
            types.append(1)
            scores.append(-float(rank))
    fields = {"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types,
              "tokenizer.ggml.bos_token_id": 2, "tokenizer.ggml.unknown_token_id": 3,
              "tokenizer.ggml.add_bos_token": True}
    return fields, spm_bpe_tokenizer(fields)


@settings(max_examples=80, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS + ["x", "qz", "é", "日本", "7", "  "]), min_size=1, max_size=8))
def test_rebuilt_spm_tokenizer_matches_llama_cpp_algorithm(words, spm_fields):
    spm_fields, tok = spm_fields
    text = " ".join(words)
    ids = tok.encode(text).ids
    assert ids[0] == 2  # <bos>
    assert ids[1:] == _spm_reference(text, spm_fields["tokenizer.ggml.tokens"], spm_fields["tokenizer.ggml.scores"])
    assert tok.decode(ids, skip_special_tokens=True) == text
