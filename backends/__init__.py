"""Real backends: ``BACKENDS`` maps a name to a config dataclass whose ``build()`` makes the ``Backend``.

Built-ins and third parties are declared as entry points (group ``tts_sim.backends``); a backend's
packages are imported only by ``build()``, so ``import tts_sim.backends`` never needs onnxruntime.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tts_sim.core.backend import Backend
from tts_sim.registry import Registry

BACKENDS: Registry[type] = Registry("backends")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class OnnxConfig:
    """ONNX Runtime on this machine (``tts_sim.backends.onnxruntime.OnnxRuntimeBackend``)."""

    quantization: str = "fp32"
    engine: str = "onnx"  # "onnx" (optimum export + numpy loop) or "genai" (onnxruntime-genai)
    device: str = "cpu"  # "cuda": the CUDA execution provider, an error if the session falls back to the CPU
    threads: int | None = None
    max_batch: int = 8
    cache_dir: str | None = None
    providers: tuple[str, ...] | None = None
    progress: Callable[[str], None] = field(default=_stderr, metadata={"runtime": True})

    def build(self) -> Backend:
        from tts_sim.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(quantization=self.quantization, engine=self.engine,
                                  device="cuda" if self.device == "cuda" else "cpu", threads=self.threads,
                                  max_batch=self.max_batch,
                                  cache_dir=Path(self.cache_dir) if self.cache_dir else None,
                                  providers=list(self.providers) if self.providers else None, progress=self.progress)


@dataclass
class OpenAIConfig:
    """An OpenAI-compatible HTTP server: vLLM, llama.cpp server, Ollama (``tts_sim.backends.openai_http``)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    timeout_s: float = 300.0
    retries: int = 4
    stream: bool = False
    concurrency: int = 8
    device: str = ""

    def build(self) -> Backend:
        from tts_sim.backends.openai_http import OpenAIHttpBackend

        return OpenAIHttpBackend(base_url=self.base_url, api_key=self.api_key, timeout_s=self.timeout_s,
                                 retries=self.retries, stream=self.stream, concurrency=self.concurrency,
                                 device=self.device)


__all__ = ["BACKENDS", "OnnxConfig", "OpenAIConfig"]
