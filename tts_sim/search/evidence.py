"""What the scores measured so far say about a graph: a ridge regression of search-time score on a
few shape features, fitted to every full-split round a search has scored.

This is how an agent without prior accuracies learns Insight 1 from feedback (which models raise
the score where they sit: answering first, or reading other answers), and Insights 2-3 (how
depth, width and density do on this task). ``Evidence.predict`` is a score estimate; ``spread`` its
uncertainty (larger for graphs whose features the rounds have rarely shown), for an optimistic
ranking of candidate edits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.search.features import role_features as features
from tts_sim.search.space import SearchSpace

#: Fewest rounds before the regression says anything (below: no evidence).
MIN_ROUNDS = 4
#: Ridge penalty on standardised features.
RIDGE = 1.0


class Evidence:
    """Ridge regression of ``scores`` on the ``role_features`` of ``graphs`` (standardised; intercept = mean)."""

    def __init__(self, space: SearchSpace, graphs: Sequence[Graph], scores: Sequence[float]) -> None:
        self.space = space
        x = np.array([features(space, g) for g in graphs], dtype=float)
        y = np.asarray(scores, dtype=float)
        self.mean_x, self.scale = x.mean(axis=0), x.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        z = (x - self.mean_x) / self.scale
        self.mean_y = float(y.mean())
        a = z.T @ z + RIDGE * np.eye(z.shape[1])
        self.inv = np.linalg.inv(a)
        self.coef = self.inv @ z.T @ (y - self.mean_y)
        resid = y - self.mean_y - z @ self.coef
        self.sigma = float(np.sqrt(resid @ resid / max(1, len(y) - 1)))

    @classmethod
    def fit(cls, space: SearchSpace, graphs: Sequence[Graph], scores: Sequence[float]) -> Evidence | None:
        """The regression, or None with fewer than ``MIN_ROUNDS`` rounds."""
        return cls(space, graphs, scores) if len(graphs) >= MIN_ROUNDS else None

    def _z(self, graph: Graph) -> np.ndarray:
        return (features(self.space, graph) - self.mean_x) / self.scale

    def predict(self, graph: Graph) -> float:
        return self.mean_y + float(self._z(graph) @ self.coef)

    def spread(self, graph: Graph) -> float:
        """Standard error of ``predict`` (residual scale times the leverage of the graph's features)."""
        z = self._z(graph)
        return self.sigma * float(np.sqrt(max(0.0, z @ self.inv @ z)))

    def model_effects(self) -> dict[str, float]:
        """Score change per extra worker running each model (answering first), from the fit."""
        return {m: float(self.coef[i] / self.scale[i]) for i, m in enumerate(self.space.pool)}


__all__ = ["MIN_ROUNDS", "Evidence", "features"]
