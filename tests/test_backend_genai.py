"""The onnxruntime-genai engine: bad input and device checks (fast), and on tiny random models built by the
genai model builder, greedy equality with transformers, sampling and batching (slow: the builder runs in its
own venv, created once under ~/.cache/tts-sim/genai-builder).

A CUDA machine runs the same equality tests with ``TTS_SIM_TEST_DEVICE=cuda`` (``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from tts_sim.backends.onnxruntime import OnnxRuntimeBackend, prepare_model  # noqa: E402
from tts_sim.backends.onnxruntime.engine import require_cuda  # noqa: E402
from tts_sim.backends.onnxruntime.manifest import ModelManifest  # noqa: E402
from tts_sim.errors import ConfigError  # noqa: E402

DEVICE = os.environ.get("TTS_SIM_TEST_DEVICE", "cpu")


def _manifest(folder: Path, **extra) -> ModelManifest:
    manifest = ModelManifest(name="m", architecture="llama", quantization="int4", source="test",
                             chat_template="{{ messages[0]['content'] }}", eos_token_ids=(2,), pad_token_id=0,
                             engine="genai", recipe="test", **extra)
    folder.mkdir(parents=True, exist_ok=True)
    manifest.write(folder)
    return manifest


def test_manifest_round_trips_the_engine_fields(tmp_path):
    _manifest(tmp_path, sliding_window=512)
    back = ModelManifest.read(tmp_path)
    assert back.engine == "genai" and back.sliding_window == 512


def test_old_manifests_read_as_the_onnx_engine(tmp_path):
    _manifest(tmp_path)
    data = json.loads((tmp_path / "tts_sim_model.json").read_text())
    del data["engine"], data["sliding_window"]
    (tmp_path / "tts_sim_model.json").write_text(json.dumps(data))
    assert ModelManifest.read(tmp_path).engine == "onnx"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"quantization": "int8-dynamic", "engine": "genai"}, "unknown quantization 'int8-dynamic' for the genai"),
    ({"quantization": "int4-b128", "engine": "onnx"}, "unknown quantization 'int4-b128' for the onnx"),
    ({"engine": "tensorrt"}, "unknown engine"),
    ({"execution_provider": "tpu", "engine": "genai"}, "unknown execution provider"),
])
def test_prepare_rejects_what_an_engine_cannot_make(kwargs, match, tmp_path):
    with pytest.raises(ConfigError, match=match) as err:
        prepare_model("smollm2-135m", cache_dir=tmp_path, progress=lambda _: None, **kwargs)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())


def test_backend_rejects_bad_engine_options():
    with pytest.raises(ConfigError, match="for the genai engine"):
        OnnxRuntimeBackend(quantization="int8-dynamic", engine="genai")
    with pytest.raises(ConfigError, match="unknown device"):
        OnnxRuntimeBackend(device="tpu")


def test_cuda_fallback_to_cpu_is_a_loud_error():
    require_cuda(["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="--device cuda: onnxruntime fell back to CPUExecutionProvider") as err:
        require_cuda(["CPUExecutionProvider"])
    assert "\n" not in str(err.value)


# ----- needs onnxruntime-genai -----------------------------------------------------------------
def test_missing_or_corrupt_genai_folders_are_one_line_errors(tmp_path):
    pytest.importorskip("onnxruntime_genai")
    from tts_sim.backends.onnxruntime.genai_engine import GenaiEngine

    _manifest(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07truncated")
    with pytest.raises(ConfigError, match="missing genai_config.json"):
        GenaiEngine(tmp_path)
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"type": "llama", "decoder": {
        "filename": "model.onnx", "head_size": 8, "hidden_size": 16, "num_attention_heads": 2,
        "num_hidden_layers": 1, "num_key_value_heads": 1}, "eos_token_id": 2, "pad_token_id": 0,
        "vocab_size": 32, "context_length": 64}}))
    with pytest.raises(ConfigError, match="unreadable tokenizer.json"):
        GenaiEngine(tmp_path)
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ConfigError, match="onnxruntime-genai cannot load it") as err:
        GenaiEngine(tmp_path)
    assert "\n" not in str(err.value)


# ----- tiny random models through the genai model builder (slow) ---------------------------------
@pytest.fixture(scope="module")
def genai_tiny(tmp_path_factory):
    """{arch: (torch model, GenaiEngine)} for tiny random LLaMA and Gemma 3 models built by the genai builder."""
    pytest.importorskip("onnxruntime_genai")
    pytest.importorskip("torch")
    from tts_sim.backends.onnxruntime.backend import open_engine

    from .test_backend_onnx import _build

    root = tmp_path_factory.mktemp("genai_tiny")
    out = {}
    for arch in ("llama", "gemma3"):
        hf = root / f"{arch}_hf"
        model = _build(arch, hf)
        folder = prepare_model(str(hf), "fp32", cache_dir=root / "cache", progress=lambda _: None, engine="genai",
                               execution_provider=DEVICE)
        out[arch] = (model, open_engine(folder, device=DEVICE, threads=1))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_genai_greedy_equals_transformers(arch, genai_tiny):
    from .test_backend_onnx import PROMPTS, _reference

    model, engine = genai_tiny[arch]
    assert engine.manifest.engine == "genai" and engine.provider.lower().startswith(DEVICE)
    for prompt in PROMPTS:
        ids = engine.encode(prompt)
        result = engine.generate([ids], max_new_tokens=24)[0]
        assert list(result.token_ids) == _reference(model, ids, 24, engine.manifest.eos_token_ids), prompt


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_genai_batches_equal_single_sequences(arch, genai_tiny):
    from .test_backend_onnx import PROMPTS

    _, engine = genai_tiny[arch]
    prompts = [engine.encode(p) for p in (PROMPTS[0], PROMPTS[2], PROMPTS[0])]
    batch = engine.generate(prompts, max_new_tokens=16)
    singles = [engine.generate([p], max_new_tokens=16)[0] for p in prompts]
    assert [r.token_ids for r in batch] == [r.token_ids for r in singles]
    sampled = engine.generate([prompts[1]] * 3, max_new_tokens=12, temperature=1.0, seed=3)
    alone = [engine.generate([prompts[1]], max_new_tokens=12, temperature=1.0, seed=3 + i)[0] for i in range(3)]
    assert [r.token_ids for r in sampled] == [r.token_ids for r in alone]
    assert len({r.token_ids for r in sampled}) > 1


@pytest.mark.slow
def test_genai_stop_strings_lengths_and_step_timers(genai_tiny):
    from .test_backend_onnx import PROMPTS

    _, engine = genai_tiny["llama"]
    ids = engine.encode(PROMPTS[1])
    free = engine.generate([ids], max_new_tokens=20)[0]
    assert free.completion_tokens == len(free.token_ids) <= 20
    if free.finish_reason == "length":
        cut = engine.decode(free.token_ids)[3:6]
        if cut.strip():
            stopped = engine.generate([ids], max_new_tokens=20, stop=[cut])[0]
            assert stopped.finish_reason == "stop" and cut not in stopped.text
    steps = []
    engine.step_hook = steps.append
    try:
        assert engine.time_decode(16, batch=2, steps=3) > 0 and engine.time_prefill(8, batch=2, repeats=1) > 0
        assert engine.time_decode(16, batch=2, steps=3, temperature=0.7, top_p=0.9) > 0  # the sampled path
    finally:
        engine.step_hook = None
    assert {s.kind for s in steps} == {"decode", "prefill"} and all(s.batch == 2 for s in steps)


@pytest.mark.slow
def test_int4_b128_builds_blocks_of_128_and_keeps_int4_folders(tmp_path):
    import onnx

    from .test_backend_onnx import _build

    hf = tmp_path / "hf"
    _build("llama", hf)
    cache = tmp_path / "cache"
    folders = {q: prepare_model(str(hf), q, cache_dir=cache, progress=lambda _: None, engine="genai")
               for q in ("int4", "int4-b128")}
    assert folders["int4"] != folders["int4-b128"]
    for q, block in (("int4", 32), ("int4-b128", 128)):
        graph = onnx.load(str(folders[q] / "model.onnx"), load_external_data=False).graph
        sizes = {a.i for n in graph.node if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "block_size"}
        assert sizes == {block}, (q, sizes)
    assert ModelManifest.read(folders["int4-b128"]).recipe.endswith("block size 128")
    assert "block size" not in ModelManifest.read(folders["int4"]).recipe
    from tts_sim.backends.onnxruntime.backend import open_engine

    engine = open_engine(folders["int4-b128"], threads=1)
    assert engine.generate([[5, 6, 7]], max_new_tokens=4)[0].completion_tokens >= 1


@pytest.mark.slow
def test_a_failing_build_leaves_nothing_in_the_cache(tmp_path):
    pytest.importorskip("onnxruntime_genai")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "no_such_arch", "architectures": ["NoSuchForCausalLM"]}))
    (hf / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="genai model builder failed") as err:
        prepare_model(str(hf), "int4", cache_dir=tmp_path / "cache", progress=lambda _: None, engine="genai")
    assert "\n" not in str(err.value)
    leftovers = [p for p in (tmp_path / "cache").rglob("*")]
    assert leftovers == [] or all(p.is_dir() and not any(p.iterdir()) for p in leftovers), leftovers


@pytest.mark.slow
def test_cuda_requested_without_cuda_is_a_loud_error(genai_tiny):
    og = pytest.importorskip("onnxruntime_genai")
    if DEVICE == "cuda" or og.is_cuda_available():
        pytest.skip("this machine runs CUDA")
    from tts_sim.backends.onnxruntime.genai_engine import GenaiEngine

    with pytest.raises(ConfigError, match="--device cuda") as err:
        GenaiEngine(genai_tiny["llama"][1].model_dir, device="cuda")
    assert "\n" not in str(err.value)


def test_cli_prepare_rejects_an_unsupported_quantisation_for_genai(tmp_path, capsys):
    from tts_sim.cli import main

    code = main(["models", "prepare", "smollm2-135m", "-q", "int8-dynamic", "--engine", "genai",
                 "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "int8-dynamic" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("engine", ["onnx", "genai"])
def test_cuda_without_a_cuda_runtime_fails_before_preparing(engine, tmp_path):
    import onnxruntime

    if engine == "genai":
        og = pytest.importorskip("onnxruntime_genai")
        if og.is_cuda_available():
            pytest.skip("CUDA runs here")
    elif "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA runs here")
    backend = OnnxRuntimeBackend(quantization="int4", engine=engine, device="cuda", cache_dir=tmp_path,
                                 progress=lambda _: None)
    with pytest.raises(ConfigError, match="--device cuda") as err:
        backend.engine("smollm2-135m")
    assert "\n" not in str(err.value) and not any(tmp_path.iterdir())


class _LengthEngine:
    """Records each ``generate_batch`` call; the reply of a prompt names its own first token and length."""

    def __init__(self, equal_lengths_only: bool) -> None:
        self.equal_lengths_only = equal_lengths_only
        self.calls: list[list[int]] = []

    def encode_chat(self, messages) -> list[int]:
        return [ord(c) for c in messages[0]["content"]]

    def generate_batch(self, prompts, params):
        from tts_sim.backends.onnxruntime.engine import GenerationResult

        self.calls.append([len(p) for p in prompts])
        return [GenerationResult(text=f"{chr(p[0])}{len(p)}/{sp.seed}", token_ids=(1,), prompt_tokens=len(p),
                                 completion_tokens=1, prefill_s=0.0, decode_s=0.0, finish_reason="length",
                                 provider="CPUExecutionProvider") for p, sp in zip(prompts, params, strict=True)]


@pytest.mark.parametrize("equal_lengths_only", [True, False])
def test_backend_fills_batches_and_keeps_request_order(equal_lengths_only):
    from tts_sim.core.backend import GenerationRequest

    # the profiler's shape: 3 prompts of two lengths, 4 samples each, interleaved, max_batch 4
    texts = ["aaa", "bbbbb", "ccc"] * 4
    requests = [GenerationRequest(messages=({"role": "user", "content": t},), max_new_tokens=1, seed=i)
                for i, t in enumerate(texts)]
    backend = OnnxRuntimeBackend(max_batch=4, progress=lambda _: None)
    engine = _LengthEngine(equal_lengths_only)
    backend._engines["m"] = engine
    out = backend.generate("m", requests)
    assert [g.text for g in out] == [f"{t[0]}{len(t)}/{i}" for i, t in enumerate(texts)]
    if equal_lengths_only:  # 8 prompts of length 3 and 4 of length 5: three full batches, one length each
        assert engine.calls == [[3] * 4, [3] * 4, [5] * 4]
    else:  # an engine that pads takes requests in order
        assert engine.calls == [[3, 5, 3, 3], [5, 3, 3, 5], [3, 3, 5, 3]]
