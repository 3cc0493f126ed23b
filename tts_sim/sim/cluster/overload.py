"""Is a simulated latency meaningful? Flag runs whose open-loop load exceeds what the cluster serves.

Under an open-loop rate the cluster cannot keep up with, queues grow for as long as queries keep
arriving: the reported percentiles then depend on how many queries were simulated, not on the
graph. Two symptoms, either one flags the run ``overloaded``:

- *throughput*: queries answered per second (first arrival to last answer) below
  ``THROUGHPUT_RATIO`` x the rate at which they actually arrived (the Poisson draw's own rate);
- *trend*: mean latency by arrival order (``BUCKETS`` equal groups of queries, the first one left
  out as warm-up) rises along the run by more than ``GROWTH_RATIO`` x the mean latency (least-
  squares line through the group means), i.e. the queue keeps growing.

Closed-loop loads adapt to the cluster (a client waits for its answer), so they are never flagged.
The trend needs ``MIN_QUERIES`` queries; fewer are judged by throughput alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BUCKETS = 10
THROUGHPUT_RATIO = 0.9
GROWTH_RATIO = 0.5
MIN_QUERIES = 100


class LatencyTrend:
    """Per-group sums of latency by query id (arrival order): memory flat in the number of queries."""

    __slots__ = ("n", "sums", "counts")

    def __init__(self, n_queries: int, buckets: int = BUCKETS) -> None:
        self.n = n_queries
        self.sums = [0.0] * buckets
        self.counts = [0] * buckets

    def add(self, query: int, latency: float) -> None:
        b = query * len(self.sums) // self.n
        self.sums[b] += latency
        self.counts[b] += 1

    def growth_s(self) -> float:
        """Rise of the least-squares line through the group means, from the second group to the last."""
        means = [(b, s / c) for b, (s, c) in enumerate(zip(self.sums, self.counts, strict=True)) if c and b > 0]
        if len(means) < 3:
            return 0.0
        xs = [b for b, _ in means]
        ys = [m for _, m in means]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        return slope * (xs[-1] - xs[0])


@dataclass(frozen=True)
class Verdict:
    overloaded: bool
    reason: str
    growth: float  # seconds of latency growth along the run (trend line)


def overload(throughput: float, arrival_rate: float | None, trend: LatencyTrend, mean_s: float) -> Verdict:
    """Judge a run: ``arrival_rate`` is the realised open-loop rate (None for a closed loop)."""
    growth = trend.growth_s() if trend.n >= MIN_QUERIES else 0.0
    if arrival_rate is None or not math.isfinite(arrival_rate):
        return Verdict(False, "", growth)
    reasons = []
    if throughput < THROUGHPUT_RATIO * arrival_rate:
        reasons.append(f"throughput {throughput:.3g}/s below the {arrival_rate:.3g}/s arriving")
    if mean_s > 0 and growth > GROWTH_RATIO * mean_s:
        reasons.append(f"latency grows {growth:.3g} s along the run (mean {mean_s:.3g} s): queues grow")
    return Verdict(bool(reasons), "; ".join(reasons), growth)
