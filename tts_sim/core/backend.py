"""The Backend protocol that real backends (``backends/``) implement.

The simulator never imports a backend: it reads Profiles, which backends write via ``profile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    """One chat prompt to complete."""

    messages: tuple[dict[str, str], ...]  # [{"role": "system"|"user"|"assistant", "content": ...}]
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # the reply ends before the first of these after its visible text (stop_at)
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    """A completion with its token counts and timings (seconds)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    prefill_s: float
    decode_s: float
    finish_reason: str = "stop"  # "stop" | "length"

    @property
    def total_s(self) -> float:
        return self.prefill_s + self.decode_s


@dataclass(frozen=True)
class BackendInfo:
    """What really ran: recorded in every profile and result."""

    backend: str  # "onnxruntime" | "openai-http" | ...
    version: str
    provider: str  # e.g. "CUDAExecutionProvider", "CPUExecutionProvider", server URL
    device: str  # CPU or GPU name
    model: str
    quantization: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A served set of models. Optional: ``concurrent_models`` (bool; True when absent): whether calls
    to different models may run at the same time (``GraphExecutor`` runs one level's models in threads
    only then; an engine on the CPU says False, its models share the cores)."""

    name: str

    def generate(self, model: str, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Complete a batch of chat prompts with ``model``; one Generation per request, in order."""
        ...

    def info(self, model: str) -> BackendInfo:
        """Which backend, provider and device serve ``model``."""
        ...


def stop_at(text: str, stop: tuple[str, ...] | list[str]) -> int | None:
    """Where a reply ends: the index of the first stop string that follows visible (non-whitespace)
    text, or None. Leading whitespace never ends a reply: a model that opens with a newline before a
    one-line answer (Gemma-3-270M base did, in most fusion calls) still gives its answer, and a stop
    string that opens the reply does not end it. The ONNX backend applies this rule while decoding;
    an OpenAI-compatible server is sent the stop strings (it stops generating, but matches them
    literally, even in leading whitespace) and the rule is applied to what it returns."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return None
    cuts = [i for i in (text.find(s, start + 1) for s in stop) if i >= 0]
    return min(cuts) if cuts else None
