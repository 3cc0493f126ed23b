"""``tts_sim_model.json``: what a prepared model folder holds, read by the engine and the backend."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tts_sim.errors import ConfigError

MANIFEST_NAME = "tts_sim_model.json"
MANIFEST_FORMAT = "tts-sim/onnx-model"
MANIFEST_VERSION = 1
QUANTIZATIONS = ("fp32", "int8", "int4", "int8-dynamic")
ENGINES = ("onnx", "genai")
#: quantisations each engine can prepare (genai: its model builder's precisions; fp16 is for CUDA; int4-b128 is
#: int4 in blocks of 128, see ``genai_build.BLOCK_SIZES``)
ENGINE_QUANTIZATIONS = {"onnx": QUANTIZATIONS, "genai": ("fp32", "int8", "int4", "fp16", "int4-b128")}


@dataclass(frozen=True)
class ModelManifest:
    """A prepared ONNX model: architecture, tokenizer facts, chat template and provenance."""

    name: str
    architecture: str  # transformers model_type, e.g. "llama", "gemma3_text"
    quantization: str  # one of QUANTIZATIONS
    source: str  # built-in package, GGUF path or Hugging Face folder it came from
    chat_template: str
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    bos_token: str | None = None
    eos_token: str | None = None
    chat_template_source: str = ""  # "gguf" | "tokenizer_config" | "default (ChatML)" | ...
    onnx_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    last_logits_only: bool = True  # the graph returns logits of the last position only
    tokenizer_rebuilt: bool = False  # tokenizer.json rebuilt from GGUF fields (Gemma pitfall)
    recipe: str = ""  # how the graph was made; a folder made by another recipe is rebuilt
    num_layers: int = 0
    num_kv_heads: int = 0
    head_dim: int = 0
    vocab_size: int = 0
    engine: str = "onnx"  # "onnx" (OnnxEngine over an optimum export) | "genai" (GenaiEngine, genai model builder)
    sliding_window: int = 0  # local-attention window (Gemma 3), 0 when none
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return "gemma" if self.architecture.startswith("gemma") else "llama"

    def write(self, folder: Path) -> None:
        """Write the manifest atomically (a reader sees the old one or the new one, never half)."""
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **asdict(self)}
        tmp = folder / f".{MANIFEST_NAME}.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, folder / MANIFEST_NAME)

    @classmethod
    def read(cls, folder: Path) -> ModelManifest:
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except OSError:
            raise ConfigError(f"{folder}: no {MANIFEST_NAME} (run `tts-sim models prepare` first)") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            raise ConfigError(f"{path}: unknown manifest format {data.get('format')!r} v{data.get('version')!r}")
        known = {f.name for f in fields(cls)}
        try:
            kwargs = {k: v for k, v in data.items() if k in known}
            kwargs["eos_token_ids"] = tuple(int(i) for i in kwargs.get("eos_token_ids", ()))
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: malformed manifest ({exc})") from None


def is_prepared(folder: Path, recipe: str | None = None) -> bool:
    """True when ``folder`` holds a complete prepared model (the manifest is written last) made by ``recipe``."""
    if not (folder / MANIFEST_NAME).is_file():
        return False
    try:
        manifest = ModelManifest.read(folder)
    except ConfigError:
        return False
    if recipe is not None and manifest.recipe != recipe:
        return False
    return (folder / manifest.onnx_file).is_file() and (folder / manifest.tokenizer_file).is_file()
