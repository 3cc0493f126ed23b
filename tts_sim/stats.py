"""Confidence intervals and paired tests (one home for the statistics every report uses)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats as _st

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (works for fractional expected counts)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired samples (None when undefined: fewer than 2 pairs or a
    constant sample)."""
    if len(x) != len(y):
        raise ValueError(f"paired samples differ in length: {len(x)} vs {len(y)}")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(_st.spearmanr(x, y).statistic)


def mean_ci(values: Sequence[float] | npt.NDArray[np.float64], z: float = Z95) -> tuple[float, float, float]:
    """Mean and a normal-approximation (t for small n) 95% interval: (mean, low, high)."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if n == 1:
        return (mean, mean, mean)
    half = float(_st.t.ppf(0.975, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return (mean, mean - half, mean + half)


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired comparison of two equally long samples (same seeds or same questions).

    Returns the mean difference a-b, its 95% interval, and the Wilcoxon signed-rank p-value
    (1.0 when every difference is zero)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    d = x - y
    mean, low, high = mean_ci(d)
    p = 1.0 if not np.any(d != 0) else float(_st.wilcoxon(d, zero_method="zsplit").pvalue)
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "p_value": p, "n": int(d.size)}
