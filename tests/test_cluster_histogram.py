"""The streaming log-binned histogram behind the simulator's latency quantiles."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sim.core.graph import Graph
from tts_sim.sim.cluster import ClusterSimulator, LogHistogram, OpenLoop
from tts_sim.tasks import TaskSpec


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(1e-5, 1e5, allow_nan=False), min_size=1, max_size=3000),
       st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_quantiles_are_within_half_a_bin_of_numpy(values: list[float], q: float) -> None:
    hist = LogHistogram(chunk=64)
    for v in values:
        hist.add(v)
    exact = float(np.quantile(np.asarray(values), q, method="inverted_cdf"))
    assert hist.quantile(q) == pytest.approx(exact, rel=hist.ratio ** 0.5 - 1 + 1e-12)
    assert hist.count == len(values)
    assert hist.mean == pytest.approx(float(np.mean(values)), rel=1e-9)
    assert (hist.min, hist.max) == (min(values), max(values))


def test_empty_and_bad_input() -> None:
    hist = LogHistogram()
    assert np.isnan(hist.quantile(0.5)) and np.isnan(hist.mean)
    with pytest.raises(ValueError):
        hist.quantile(1.5)
    hist.add(-1.0)
    with pytest.raises(ValueError, match="finite"):
        hist.quantile(0.5)


def test_simulator_memory_is_flat_in_the_number_of_queries() -> None:
    g = Graph.build([("a", "assistant", "llama-3.2-1b"), ("b", "assistant", "llama-3.2-3b"),
                     ("f", "fuser", "llama-3.1-8b"), ("out", "assistant", "llama-3.2-3b")],
                    [("a", "f"), ("b", "f"), ("f", "out")], "out")
    task = TaskSpec("m", "math", 202, 275)

    def peak(n: int) -> int:
        sim = ClusterSimulator("2xH100")
        gc.collect()
        tracemalloc.start()
        sim.simulate(g, task, OpenLoop(1.0), n)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    small, large = peak(1000), peak(10000)
    assert large < 1.5 * small, (small, large)
