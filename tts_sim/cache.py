"""Where tts-sim keeps derived files: ``$TTS_SIM_CACHE`` or ``~/.cache/tts-sim``.

``$TTS_SIM_CACHE_HOME`` is the older name of the same setting (read when ``$TTS_SIM_CACHE`` is unset).
Fitted fusion parameters go to ``fits/``, generated worlds and reference optima to ``worlds/``
(``tts_sim.sim.worlds``); prepared ONNX models default to ``models/`` but, with ``$TTS_SIM_CACHE`` set,
to that folder itself (``backends/onnxruntime/export.py``, as documented there since it was written).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("TTS_SIM_CACHE") or os.environ.get("TTS_SIM_CACHE_HOME")
    return Path(env) if env else Path.home() / ".cache" / "tts-sim"
