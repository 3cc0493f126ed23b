"""Exact timelines of the cluster simulator (SimPy-style: tiny scenarios, hand-computed times)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tts_sim.core.graph import Graph
from tts_sim.core.models import DEFAULT_CATALOG, ModelSpec
from tts_sim.core.profile import LatencyTable
from tts_sim.errors import ConfigError
from tts_sim.sim.cluster import (
    ClosedLoop,
    ClusterError,
    ClusterSpec,
    DeviceSpec,
    OpenLoop,
    RooflinePredictor,
    TablePredictor,
    TimelineEvent,
    parse_cluster,
)
from tts_sim.sim.cluster import ClusterSimulator as _ClusterSimulator
from tts_sim.tasks import TaskSpec


def ClusterSimulator(*args, **kw):  # noqa: N802 - these tests pin down static batching
    return _ClusterSimulator(*args, **{"scheduler": "static", **kw})


# A=10 prompt tokens, B=4 answer tokens: a node with in-degree d has a 10+4d token prompt, 4 decode steps.
TASK = TaskSpec("tiny", "math", 10, 4)
ONE_B, THREE_B = "llama-3.2-1b", "llama-3.2-3b"


@dataclass
class ConstantPredictor:
    """Prefill takes ``prefill`` s per batch whatever its size, each decode step ``step`` s."""

    prefill: float = 1.0
    step: float = 0.25
    name: str = "constant"

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        return self.prefill

    def decode_step_s(self, model: ModelSpec, device: DeviceSpec, context_tokens: float, batch: int) -> float:
        return self.step

    def source(self, model: ModelSpec, device: DeviceSpec) -> str:
        return "roofline"


@dataclass
class TokenPredictor(ConstantPredictor):
    """Prefill costs 0.1 s per prompt token of the (padded) batch's longest prompt."""

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        return 0.1 * prompt_tokens


def graph(nodes: list[tuple[str, str]], edges: list[tuple[str, str]], output: str = "out") -> Graph:
    return Graph.build([(n, "assistant", m) for n, m in nodes], edges, output)


def events(result) -> list[tuple]:
    return [(e.query, e.node, e.device, round(e.start, 9), round(e.end, 9), e.batch) for e in result.timeline]


def sim(cluster: str, predictor=None, **kw) -> ClusterSimulator:
    return ClusterSimulator(cluster, predictor or ConstantPredictor(), **kw)


def test_chain_on_one_device_two_queries_back_to_back() -> None:
    # service = 1 (prefill) + 4 steps x 0.25 = 2 s per batch.  a -> out, closed loop with one client:
    # q0: a [0,2], out [2,4]; q1 arrives when q0 ends, at 4: a [4,6], out [6,8].
    g = graph([("a", ONE_B), ("out", THREE_B)], [("a", "out")])
    r = sim("1xH100").simulate(g, TASK, ClosedLoop(1), 2, record=True)
    assert events(r) == [(0, "a", "H100:0", 0, 2, 1), (0, "out", "H100:0", 2, 4, 1),
                         (1, "a", "H100:0", 4, 6, 1), (1, "out", "H100:0", 6, 8, 1)]
    assert r.latencies == [4.0, 4.0] and r.arrivals == [0.0, 4.0]
    assert r.latency.mean_s == pytest.approx(4.0) and r.latency.p99_s == pytest.approx(4.0)
    assert r.latency.throughput_qps == pytest.approx(2 / 8)
    assert r.latency.utilisation == {"H100:0": pytest.approx(1.0)}
    assert (r.n_node_calls, r.n_batches) == (4, 4)


def test_independent_nodes_serialise_on_one_device_and_run_in_parallel_on_two() -> None:
    # a (1B) and b (3B) feed out (3B).  Different models never share a batch.
    g = graph([("a", ONE_B), ("b", THREE_B), ("out", THREE_B)], [("a", "out"), ("b", "out")])
    # one device: a [0,2] (enqueued first), b [2,4], out [4,6]
    one = sim("1xH100").simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert events(one) == [(0, "a", "H100:0", 0, 2, 1), (0, "b", "H100:0", 2, 4, 1), (0, "out", "H100:0", 4, 6, 1)]
    # two devices: both models replicated on both; a -> H100:0, b -> the less loaded H100:1, both [0,2];
    # out is ready at 2 and both devices are idle: the lowest index wins, [2,4].
    two = sim("2xH100").simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert events(two) == [(0, "a", "H100:0", 0, 2, 1), (0, "b", "H100:1", 0, 2, 1), (0, "out", "H100:0", 2, 4, 1)]
    assert two.latencies == [4.0] and one.latencies == [6.0]
    assert two.placement.to_dict() == {ONE_B: ["H100:0", "H100:1"], THREE_B: ["H100:0", "H100:1"]}
    assert two.latency.utilisation == {"H100:0": pytest.approx(1.0), "H100:1": pytest.approx(0.5)}


def test_simultaneous_sources_of_one_model_batch_together() -> None:
    # a and b (both 1B) are ready at 0 on the only device: one batch of 2 [0,2], then out [2,4].
    g = graph([("a", ONE_B), ("b", ONE_B), ("out", THREE_B)], [("a", "out"), ("b", "out")])
    r = sim("1xH100").simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert events(r) == [(0, "a", "H100:0", 0, 2, 2), (0, "b", "H100:0", 0, 2, 2), (0, "out", "H100:0", 2, 4, 1)]
    assert (r.n_node_calls, r.n_batches) == (3, 2)
    # two concurrent clients on one device: both queries' a and b form one batch of 4, both outs one of 2
    r2 = sim("1xH100").simulate(g, TASK, ClosedLoop(2), 2, record=True)
    assert [e.batch for e in r2.timeline] == [4, 4, 4, 4, 2, 2]
    assert r2.latencies == [4.0, 4.0]
    # max_batch caps the batch: 4 ready requests with max_batch 3 -> batches of 3 then 1
    r3 = sim("1xH100", max_batch=3).simulate(g, TASK, ClosedLoop(2), 2, record=True)
    assert [(e.node, e.start, e.batch) for e in r3.timeline[:4]] == [
        ("a", 0, 3), ("b", 0, 3), ("a", 0, 3), ("b", 2, 1)]


def test_batches_pad_prompts_to_the_longest() -> None:
    # TokenPredictor: prefill 0.1 s per token of the longest prompt, decode 4 x 0.25 = 1 s.
    # s (1B, 10-token prompt) -> x (1B, in-degree 1: 14 tokens); y (1B, 10 tokens) is a source too.
    # t=0: s and y batch: prefill 1.0 + decode 1.0 -> [0,2].  t=2: x alone: 1.4 + 1 -> [2,4.4].
    # out (3B, in-degree 2: 18 tokens): 1.8 + 1 -> [4.4, 7.2].
    g = graph([("s", ONE_B), ("y", ONE_B), ("x", ONE_B), ("out", THREE_B)], [("s", "x"), ("x", "out"), ("y", "out")])
    r = sim("1xH100", TokenPredictor()).simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert events(r) == [(0, "s", "H100:0", 0, 2, 2), (0, "y", "H100:0", 0, 2, 2),
                         (0, "x", "H100:0", 2, 4.4, 1), (0, "out", "H100:0", 4.4, 7.2, 1)]


def test_an_engine_that_batches_same_prompts_only_runs_fusion_nodes_one_at_a_time() -> None:
    # a, b (1B, sources: the question) -> f, g (1B, fuse both: same kind, same inputs, one prompt) and
    # h (1B, refines a only: another prompt) -> out (3B). Each batch: 1 + 4 x 0.25 = 2 s.
    g = graph([("a", ONE_B), ("b", ONE_B), ("f", ONE_B), ("g", ONE_B), ("h", ONE_B), ("out", THREE_B)],
              [("a", "f"), ("b", "f"), ("a", "g"), ("b", "g"), ("a", "h"), ("f", "out"), ("g", "out"), ("h", "out")])
    padded = sim("1xH100").simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert [(e.node, e.start, e.batch) for e in padded.timeline] == [
        ("a", 0, 2), ("b", 0, 2), ("h", 2, 3), ("f", 2, 3), ("g", 2, 3), ("out", 4, 1)]
    same = sim("1xH100", scheduler_options={"same_prompt_only": True}).simulate(g, TASK, ClosedLoop(1), 2,
                                                                                  record=True)
    # the sources share the question; h (queued first) runs alone, then f and g (one prompt) together
    assert [(e.query, e.node, e.start, e.batch) for e in same.timeline] == [
        (0, "a", 0, 2), (0, "b", 0, 2), (0, "h", 2, 1), (0, "f", 4, 2), (0, "g", 4, 2), (0, "out", 6, 1),
        (1, "a", 8, 2), (1, "b", 8, 2), (1, "h", 10, 1), (1, "f", 12, 2), (1, "g", 12, 2), (1, "out", 14, 1)]
    assert same.latencies == [8.0, 8.0] and padded.latencies == [6.0]
    # two queries in flight: their sources never share a batch (their questions differ)
    two = sim("1xH100", scheduler_options={"same_prompt_only": True}).simulate(g, TASK, ClosedLoop(2), 2,
                                                                                 record=True)
    assert [(e.query, e.node, e.start, e.batch) for e in two.timeline[:4]] == [
        (0, "a", 0, 2), (0, "b", 0, 2), (1, "a", 2, 2), (1, "b", 2, 2)]
    assert "same prompts only" in sim("1xH100", scheduler_options={"same_prompt_only": True}).scheduler.describe()


@dataclass
class SwitchingPredictor(ConstantPredictor):
    """A batch costs 0.5 s more when its device's previous batch was another model's."""

    def switch_s(self, model: ModelSpec, device: DeviceSpec) -> float:
        return 0.5


def test_a_batch_after_another_model_s_pays_the_predictor_s_switch_cost() -> None:
    # a (1B) -> b (3B) -> c (1B) -> out (1B), one device, one query at a time; each batch 2 s.
    # q0: a [0,2] (the device's first batch: no switch), b [2,4.5], c [4.5,7], out [7,9] (same model);
    # q1: a follows out (1B): no switch, [9,11]; b [11,13.5] ...
    g = graph([("a", ONE_B), ("b", THREE_B), ("c", ONE_B), ("out", ONE_B)], [("a", "b"), ("b", "c"), ("c", "out")])
    r = sim("1xH100", SwitchingPredictor()).simulate(g, TASK, ClosedLoop(1), 2, record=True)
    assert [(e.query, e.node, e.start, e.end) for e in r.timeline] == [
        (0, "a", 0, 2), (0, "b", 2, 4.5), (0, "c", 4.5, 7), (0, "out", 7, 9),
        (1, "a", 9, 11), (1, "b", 11, 13.5), (1, "c", 13.5, 16), (1, "out", 16, 18)]
    assert r.latencies == [9.0, 9.0]
    plain = sim("1xH100").simulate(g, TASK, ClosedLoop(1), 1, record=True)  # a predictor without switch_s: no cost
    assert plain.latencies == [8.0]


def test_a_latency_table_s_switch_cost_reaches_the_simulator() -> None:
    rows = [(16, 1, 1.0), (64, 1, 1.0)], [(16, 1, 0.25), (64, 1, 0.25)]
    g = graph([("a", ONE_B), ("out", THREE_B)], [("a", "out")])
    latency = {}
    for switch in (0.0, 0.3):
        tables = [LatencyTable(m, "cpu", "onnx", prefill=rows[0], decode=rows[1], switch_s=switch)
                  for m in (ONE_B, THREE_B)]
        latency[switch] = sim("cpu", TablePredictor(tables)).simulate(g, TASK, ClosedLoop(1), 1).latency.mean_s
    assert latency[0.3] == pytest.approx(latency[0.0] + 0.3)  # out follows a 1B batch: +0.3 s once


def test_requests_ready_at_the_same_instant_on_different_devices_batch_together() -> None:
    # Two 8 GB devices (7.2 GB usable): 3B (6.4 GB) fits on one, 1B (2.5 GB) on the other, not both.
    small = DeviceSpec("small", "gpu", 1e14, 1e12, 8e9)
    cluster = ClusterSpec((small, small), "2xsmall")
    # a (1B) -> c (3B); b (3B) -> d (3B); c, d -> out (3B).  a runs on small:1, b on small:0, both [0,2].
    # At t=2 both finish; c and d become ready at the same instant and share one batch [2,4]; out [4,6].
    g = graph([("a", ONE_B), ("b", THREE_B), ("c", THREE_B), ("d", THREE_B), ("out", THREE_B)],
              [("a", "c"), ("b", "d"), ("c", "out"), ("d", "out")])
    r = ClusterSimulator(cluster, ConstantPredictor()).simulate(g, TASK, ClosedLoop(1), 1, record=True)
    assert r.placement.to_dict() == {ONE_B: ["small:1"], THREE_B: ["small:0"]}
    assert sorted(events(r)) == sorted([
        (0, "a", "small:1", 0, 2, 1), (0, "b", "small:0", 0, 2, 1),
        (0, "c", "small:0", 2, 4, 2), (0, "d", "small:0", 2, 4, 2), (0, "out", "small:0", 4, 6, 1)])


def test_roofline_timeline_by_hand() -> None:
    # 1xH100, RooflinePredictor(0.5, 0.8, 1 ms); task A=100, B=10; a (1B) -> out (1B).
    # llama-3.2-1b: weights 1.24e9*2 = 2.48e9 B, KV 32768 B/token; H100 bandwidth x 0.8 = 2.68e12 B/s.
    # a: prompt 100.  Prefill is memory-bound: (2.48e9 + 100*32768)/2.68e12 = 9.265958e-4 (+1e-3)
    #    = 1.9265958e-3.  Decode: 10 steps at mean context 100 + 11/2 = 105.5:
    #    (2.48e9 + 105.5*32768)/2.68e12 + 1e-3 = 1.9266631e-3 each -> 1.9266631e-2.
    #    a ends at 2.1193227e-2.
    # out: prompt 110 (in-degree 1).  Prefill (2.48e9 + 110*32768)/2.68e12 + 1e-3 = 1.9267181e-3;
    #    decode at 115.5: (2.48e9 + 115.5*32768)/2.68e12 + 1e-3 = 1.9267853e-3 x 10 = 1.9267853e-2,
    #    so out takes 2.1194571e-2 and ends at 4.2387798e-2.
    task = TaskSpec("t", "math", 100, 10)
    g = graph([("a", ONE_B), ("out", ONE_B)], [("a", "out")])
    r = ClusterSimulator("1xH100", RooflinePredictor(0.5, 0.8, 1e-3)).simulate(g, task, ClosedLoop(1), 1,
                                                                                record=True)
    (a, out) = r.timeline
    assert a.start == 0 and a.end == pytest.approx(2.1193227e-2, rel=1e-7)
    assert out.start == a.end and out.end == pytest.approx(4.2387798e-2, rel=1e-7)
    assert r.latency.predictor == "roofline"


def test_only_executed_nodes_run_and_every_predecessor_finishes_first() -> None:
    g = graph([("a", ONE_B), ("b", THREE_B), ("dead", ONE_B), ("out", THREE_B)],
              [("a", "b"), ("b", "out"), ("a", "out"), ("a", "dead")])
    r = sim("2xL4").simulate(g, TASK, OpenLoop(0.3), 50, seed=3, record=True)
    assert "dead" not in {e.node for e in r.timeline}
    assert r.n_node_calls == 150 == len(r.timeline)
    ends = {(e.query, e.node): e.end for e in r.timeline}
    for e in r.timeline:
        for p in g.predecessors(e.node):
            assert ends[(e.query, p)] <= e.start


def test_closed_loop_obeys_littles_law() -> None:
    g = graph([("a", ONE_B), ("b", "gemma-2b"), ("f", "llama-3.1-8b"), ("out", THREE_B)],
              [("a", "f"), ("b", "f"), ("f", "out"), ("a", "out")])
    task = TaskSpec("m", "math", 202, 275)
    for concurrency in (1, 4, 12):
        r = ClusterSimulator("2xH100").simulate(g, task, ClosedLoop(concurrency), 600)
        # N = X * W: the clients are always busy, so in-flight queries = concurrency
        assert r.latency.throughput_qps * r.latency.mean_s == pytest.approx(concurrency, rel=0.03)
        assert all(0 < u <= 1 + 1e-9 for u in r.latency.utilisation.values())


def test_open_loop_poisson_rate_and_littles_law() -> None:
    g = graph([("a", ONE_B), ("out", THREE_B)], [("a", "out")])
    task = TaskSpec("m", "math", 202, 275)
    simulator = ClusterSimulator("1xH100")
    qps, n = 0.4, 3000  # well below capacity (a no-load query takes about 1.2 s, batching helps)
    r = simulator.simulate(g, task, OpenLoop(qps), n, seed=1, record=True)
    gaps = [b - a for a, b in zip(r.arrivals, r.arrivals[1:], strict=False)]
    mean_gap = sum(gaps) / len(gaps)
    assert mean_gap == pytest.approx(1 / qps, rel=0.05)
    cv = (sum((x - mean_gap) ** 2 for x in gaps) / len(gaps)) ** 0.5 / mean_gap
    assert cv == pytest.approx(1.0, abs=0.06)  # exponential gaps
    assert r.latency.throughput_qps == pytest.approx(qps, rel=0.05)
    # Little: time-average of queries in system (sampled on a grid) = throughput x mean latency
    done = [a + w for a, w in zip(r.arrivals, r.latencies, strict=True)]
    t0, t1 = r.arrivals[0], max(done)
    grid = [t0 + (t1 - t0) * (i + 0.5) / 20000 for i in range(20000)]
    import bisect
    starts, ends = sorted(r.arrivals), sorted(done)
    in_system = sum(bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t) for t in grid) / len(grid)
    assert in_system == pytest.approx(r.latency.throughput_qps * r.latency.mean_s, rel=0.03)
    # overload: throughput saturates near the closed-loop capacity, far below the offered rate
    capacity = simulator.simulate(g, task, ClosedLoop(64), 2000).latency.throughput_qps
    hot = simulator.simulate(g, task, OpenLoop(10 * capacity), 2000, seed=1).latency
    assert hot.throughput_qps == pytest.approx(capacity, rel=0.1)
    assert hot.p50_s > 10 * r.latency.p50_s


def test_same_seed_same_result_other_seed_other_result() -> None:
    g = graph([("a", ONE_B), ("out", THREE_B)], [("a", "out")])
    s = ClusterSimulator("2xH100")
    a = s.simulate(g, TASK, OpenLoop(50), 200, seed=7).latency
    assert a == s.simulate(g, TASK, OpenLoop(50), 200, seed=7).latency
    assert a != s.simulate(g, TASK, OpenLoop(50), 200, seed=8).latency


def test_streaming_quantiles_match_numpy_on_a_recorded_run() -> None:
    import numpy as np
    g = graph([("a", ONE_B), ("b", "gemma-2b"), ("out", THREE_B)], [("a", "out"), ("b", "out")])
    r = ClusterSimulator("1xA100-80GB,1xL4").simulate(g, TaskSpec("m", "math", 202, 275), OpenLoop(1.0), 4000,
                                                      seed=5, record=True)
    lat = np.asarray(r.latencies)
    assert len(set(np.round(lat, 6))) > 100  # a real spread, not a constant
    assert r.latency.mean_s == pytest.approx(lat.mean(), rel=1e-9)
    for q, got in ((0.5, r.latency.p50_s), (0.95, r.latency.p95_s), (0.99, r.latency.p99_s)):
        assert got == pytest.approx(np.quantile(lat, q, method="inverted_cdf"), rel=0.006)
    assert r.latency.n_queries == 4000 and r.latency.cluster == "1xA100-80GB,1xL4"


def test_predictor_label_says_where_times_came_from() -> None:
    table = LatencyTable(ONE_B, "H100", "vllm", prefill=[(100, 1, 0.01), (1000, 8, 0.3)],
                         decode=[(100, 1, 0.002), (1000, 8, 0.004)])
    pred = TablePredictor([table], RooflinePredictor())
    only_1b = graph([("a", ONE_B), ("out", ONE_B)], [("a", "out")])
    mixed = graph([("a", ONE_B), ("out", THREE_B)], [("a", "out")])
    s = ClusterSimulator("1xH100", pred)
    assert s.simulate(only_1b, TASK, ClosedLoop(1), 3).latency.predictor == "profile-table"
    assert s.simulate(mixed, TASK, ClosedLoop(1), 3).latency.predictor == "mixed"
    assert ClusterSimulator("1xH100").simulate(mixed, TASK, ClosedLoop(1), 3).latency.predictor == "roofline"


def test_placement_checks_memory() -> None:
    big = graph([("a", "llama-3.1-70b"), ("out", THREE_B)], [("a", "out")])
    with pytest.raises(ClusterError) as info:
        sim("1xL4").simulate(big, TASK, ClosedLoop(1), 1)
    assert "llama-3.1-70b" in str(info.value) and "1xL4" in str(info.value) and "\n" not in str(info.value)
    # each of gemma-7b (17.1 GB + KV) and llama-3.1-8b (16.1 GB + KV) fits a 24 GB L4 alone, not both
    pair = graph([("a", "gemma-7b"), ("out", "llama-3.1-8b")], [("a", "out")])
    task = TaskSpec("m", "math", 202, 275)
    with pytest.raises(ClusterError, match="left after placing"):
        sim("1xL4").placement(pair, task)
    placement = sim("2xL4").placement(pair, task)
    assert placement.to_dict() == {"gemma-7b": ["L4:0"], "llama-3.1-8b": ["L4:1"]}
    l4 = parse_cluster("L4").devices[0]
    assert all(used <= 0.9 * l4.mem_bytes for used in placement.used_bytes)
    # the KV cache counts: 8B alone fits with max_batch 8 but not with max_batch 64 at a long context
    long_task = TaskSpec("long", "math", 4000, 1000)
    with pytest.raises(ClusterError, match="KV cache"):
        sim("1xL4", max_batch=64).placement(graph([("out", "llama-3.1-8b")], []), long_task)
    # a model catalog entry that fits nowhere names the model even with many devices
    with pytest.raises(ClusterError, match="llama-3.1-70b"):
        sim("4xL4").placement(big, TASK)


def test_bad_simulation_arguments_are_refused() -> None:
    g = graph([("out", ONE_B)], [])
    with pytest.raises(ConfigError, match="n_queries"):
        sim("cpu").simulate(g, TASK, ClosedLoop(1), 0)
    with pytest.raises(ConfigError, match="open-loop"):
        OpenLoop(0.0)
    with pytest.raises(ConfigError, match="concurrency"):
        ClosedLoop(0)
    with pytest.raises(ConfigError, match="max_batch"):
        ClusterSimulator("cpu", max_batch=0)
    with pytest.raises(ClusterError, match="positive integer"):
        ClusterSimulator("0xH100")


def test_cpu_cluster_runs_the_small_real_models() -> None:
    g = graph([("a", "smollm2-135m"), ("out", "gemma-3-270m")], [("a", "out")])
    r = ClusterSimulator("cpu").simulate(g, TASK, ClosedLoop(1), 5, record=True)
    assert r.latency.cluster == "1xcpu" and set(r.latency.utilisation) == {"cpu:0"}
    assert all(isinstance(e, TimelineEvent) and e.end > e.start for e in r.timeline)
    assert DEFAULT_CATALOG["smollm2-135m"].name == "smollm2-135m"
