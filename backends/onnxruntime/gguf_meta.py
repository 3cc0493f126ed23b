"""Read the metadata fields of a GGUF file (architecture, vocabulary, chat template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError


def read_gguf_fields(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Return the GGUF key-value metadata as Python values (all keys, or only ``keys`` when given)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable GGUF file ({exc})") from None
    wanted = reader.fields if keys is None else {k: reader.fields[k] for k in keys if k in reader.fields}
    out: dict[str, Any] = {}
    for key, field in wanted.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        if hasattr(value, "tolist"):
            value = value.tolist()
        out[key] = value
    return out
