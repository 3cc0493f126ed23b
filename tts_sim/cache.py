"""Where tts-sim keeps derived files: ``$TTS_SIM_CACHE_HOME`` or ``~/.cache/tts-sim``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("TTS_SIM_CACHE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "tts-sim"
