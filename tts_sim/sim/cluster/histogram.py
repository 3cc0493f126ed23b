"""Streaming latency statistics in constant memory: a fixed log-binned histogram.

Bins grow geometrically by ``ratio`` (1% by default) from ``low`` to ``high`` seconds, so a
quantile is known to within a factor sqrt(ratio) (about +-0.5%) whatever the number of samples.
Samples are buffered and binned in numpy chunks, so adding one costs a list append.
"""

from __future__ import annotations

import math

import numpy as np


class LogHistogram:
    """Count, mean, min, max and quantiles of positive samples in O(bins) memory."""

    def __init__(self, low: float = 1e-6, high: float = 1e7, ratio: float = 1.01, chunk: int = 512) -> None:
        if not (0 < low < high and ratio > 1):
            raise ValueError(f"bad histogram range low={low}, high={high}, ratio={ratio}")
        self.low, self.ratio = low, ratio
        self._log_low, self._inv_log_ratio = math.log(low), 1.0 / math.log(ratio)
        self.n_bins = int(math.ceil(math.log(high / low) * self._inv_log_ratio)) + 1
        self.counts = np.zeros(self.n_bins, dtype=np.int64)
        self._chunk = chunk
        self._buffer: list[float] = []
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        buf = self._buffer
        buf.append(value)
        if len(buf) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        values = np.asarray(self._buffer, dtype=float)
        self._buffer = []
        if np.any(~(values >= 0)) or not np.all(np.isfinite(values)):
            raise ValueError("latency samples must be finite and >= 0")
        self.count += values.size
        self.total += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        idx = np.floor((np.log(np.maximum(values, self.low)) - self._log_low) * self._inv_log_ratio)
        np.add.at(self.counts, np.clip(idx.astype(np.int64), 0, self.n_bins - 1), 1)

    @property
    def mean(self) -> float:
        self._flush()
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The q-quantile (smallest x with at least q of the samples <= x, like numpy's
        ``inverted_cdf``), as its bin's geometric centre clamped to the observed [min, max]."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        self._flush()
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(q * self.count - 1e-9))
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        centre = self.low * self.ratio ** (b + 0.5)
        return min(max(centre, self.min), self.max)
