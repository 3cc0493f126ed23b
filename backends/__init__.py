"""Real backends, registered by name in ``BACKENDS`` (third parties: entry-point group ``tts_sim.backends``).

Each entry is a factory ``(**options) -> Backend``; backend packages are imported only when one is made,
so ``import tts_sim.backends`` never needs onnxruntime.
"""

from __future__ import annotations

from typing import Any

from tts_sim.core.backend import Backend
from tts_sim.registry import Registry

BACKENDS: Registry = Registry("backends")


@BACKENDS.register("onnx")
def _onnx(**options: Any) -> Backend:
    """ONNX Runtime on this machine (``backends.onnxruntime.OnnxRuntimeBackend``)."""
    from tts_sim.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(**options)


@BACKENDS.register("openai")
def _openai(**options: Any) -> Backend:
    """An OpenAI-compatible HTTP server: vLLM, llama.cpp server, Ollama (``backends.openai_http``)."""
    from tts_sim.backends.openai_http import OpenAIHttpBackend

    return OpenAIHttpBackend(**options)
