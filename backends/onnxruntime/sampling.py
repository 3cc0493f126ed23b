"""Next-token choice: greedy, or temperature + nucleus (top-p) sampling from a seeded numpy Generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tts_sim.errors import ConfigError

_TOP_CANDIDATES = 2048  # nucleus search starts with the best 2,048 tokens, widening only if they fall short


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence is decoded. ``temperature == 0`` is greedy; ``seed`` makes sampling repeatable."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.stop, str) or any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError(f"stop must be a sequence of non-empty strings, got {self.stop!r}")


def nucleus_probabilities(logits: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """The distribution sampled from: softmax(logits / temperature), cut to the smallest set of most likely
    tokens whose mass reaches ``top_p`` (ties broken towards lower ids), renormalised."""
    p = logits.astype(np.float64)  # one float64 buffer, updated in place (same values as out-of-place steps)
    p /= temperature
    p -= p.max()
    np.exp(p, out=p)
    p /= p.sum()
    if top_p >= 1.0:
        return p
    k = min(_TOP_CANDIDATES, p.size)
    while True:
        candidates = np.argpartition(-p, k - 1)[:k] if k < p.size else np.arange(p.size)
        order = candidates[np.lexsort((candidates, -p[candidates]))]
        mass = np.cumsum(p[order])
        if mass[-1] >= top_p or k == p.size:
            break
        k = min(4 * k, p.size)
    n_keep = int(np.searchsorted(mass, top_p, side="left")) + 1  # tokens before the one reaching top_p, plus it
    kept = order[:min(n_keep, order.size)]
    out = np.zeros_like(p)
    out[kept] = p[kept]
    return out / out.sum()


def choose_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """Greedy argmax when ``temperature == 0``, else one draw from ``nucleus_probabilities``."""
    if params.temperature == 0:
        return int(np.argmax(logits))
    p = nucleus_probabilities(logits, params.temperature, params.top_p)
    cdf = np.cumsum(p, out=p)  # p is this call's own buffer
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), p.size - 1))
