"""A factorised policy over the graph encoding (one softmax per encoded entry) with REINFORCE
gradients and a numpy Adam optimiser: GPTSwarm's edge / role / model logits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tts_sim.search.encoding import GraphEncoding


class EncodingPolicy:
    """Logits ``theta[d, c]`` for entry d taking category c (padded to the widest entry)."""

    def __init__(self, encoding: GraphEncoding, *, edge_p: float = 0.5, lr: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.encoding = encoding
        sizes = encoding.sizes
        self.mask = np.arange(sizes.max())[None, :] < sizes[:, None]
        self.theta = np.where(self.mask, 0.0, -np.inf)
        binary = [i for i, d in enumerate(encoding.dimensions) if d.name.startswith(("edge_", "out_"))]
        self.theta[binary, 1] = np.log(edge_p / (1 - edge_p))  # edges start at probability edge_p
        self.lr, self.betas, self.eps = lr, betas, eps
        self._m = np.zeros_like(self.theta, dtype=float)
        self._v = np.zeros_like(self.theta, dtype=float)
        self._t = 0

    def probs(self) -> np.ndarray:
        z = self.theta - self.theta.max(axis=1, keepdims=True)
        e = np.where(self.mask, np.exp(z), 0.0)
        return e / e.sum(axis=1, keepdims=True)

    def sample(self, rng: np.random.Generator) -> list[int]:
        cum = np.cumsum(self.probs(), axis=1)
        u = rng.random(len(cum))[:, None]
        x = (u >= cum).sum(axis=1)
        return [int(min(v, s - 1)) for v, s in zip(x, self.encoding.sizes, strict=True)]

    def grad_log_prob(self, x: Sequence[int]) -> np.ndarray:
        """d log pi(x) / d theta: one-hot(x) - softmax, per entry."""
        g = -self.probs()
        g[np.arange(len(x)), np.asarray(x, dtype=int)] += 1.0
        return np.where(self.mask, g, 0.0)

    def step(self, grad: np.ndarray) -> None:
        """One Adam ascent step on the expected reward."""
        self._t += 1
        b1, b2 = self.betas
        self._m = b1 * self._m + (1 - b1) * grad
        self._v = b2 * self._v + (1 - b2) * grad * grad
        m_hat = self._m / (1 - b1 ** self._t)
        v_hat = self._v / (1 - b2 ** self._t)
        self.theta = np.where(self.mask, self.theta + self.lr * m_hat / (np.sqrt(v_hat) + self.eps), -np.inf)

    def mode(self, keep_p: float = 0.55) -> list[int]:
        """Most likely model and role per slot; an edge is kept when its probability exceeds ``keep_p``."""
        p = self.probs()
        x = [int(v) for v in p.argmax(axis=1)]
        for i, d in enumerate(self.encoding.dimensions):
            if d.name.startswith(("edge_", "out_")):
                x[i] = int(p[i, 1] > keep_p)
        return x


def reinforce_gradient(policy: EncodingPolicy, samples: Sequence[tuple[Sequence[int], float]],
                       baseline: float) -> np.ndarray:
    """Score-function estimate of the reward gradient: mean of (reward - baseline) x grad log pi."""
    grad = np.zeros_like(policy.theta, dtype=float)
    for x, reward in samples:
        grad += (reward - baseline) * policy.grad_log_prob(x)
    return grad / max(1, len(samples))
