"""Reading JSON files with one-line errors that name the file and what it should have been."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError, TtsSimError


def read_json(path: str | Path, what: str, error: type[TtsSimError] = ConfigError) -> Any:
    """The parsed content of ``path``; ``error("cannot read WHAT PATH: ...")`` or
    ``error("WHAT PATH is corrupted: not valid JSON (...)")`` otherwise."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = f"{exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise error(f"{what} {path} is corrupted: not valid JSON ({detail})") from None
