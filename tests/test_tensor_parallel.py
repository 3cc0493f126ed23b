"""Tensor parallelism: TP groups as replicas, hand-computed service times with all-reduces, placement,
``auto``, and bad input."""

from __future__ import annotations

import pytest

from tts_sim.core.graph import Graph
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.sim.cluster import (
    ClosedLoop,
    ClusterError,
    ClusterSpec,
    DeviceSpec,
    OpenLoop,
    RooflinePredictor,
    allreduce_s,
    auto_tp,
    get_device,
    parse_cluster,
    parse_tp,
    tp_cluster,
)
from tts_sim.sim.cluster import ClusterSimulator as _ClusterSimulator
from tts_sim.tasks import TaskSpec

from .test_cli_graph import run


def ClusterSimulator(*args, **kw):  # noqa: N802 - these tests pin down static batching
    return _ClusterSimulator(*args, **{"scheduler": "static", **kw})


ONE_B = DEFAULT_CATALOG["llama-3.2-1b"]  # M=1e9 FLOPs, 1.24e9 params x 2 B, L=16, D=2048, KV 32768 B/token
TASK = TaskSpec("tiny", "math", 10, 4)
# 1e14 FLOP/s, 1e12 B/s, 100 GB, link 1e11 B/s per direction + 10 us per all-reduce
TPDEV = DeviceSpec("tpdev", "gpu", 1e14, 1e12, 1e11, link_bw=1e11, link_latency_s=1e-5)
PRED = RooflinePredictor(compute_eff=0.5, bandwidth_eff=0.5, overhead_s=1e-3)


def single(model: str = "llama-3.2-1b") -> Graph:
    return Graph.build([("out", "assistant", model)], [], "out")


def test_a_group_has_k_times_compute_bandwidth_and_memory() -> None:
    g = TPDEV.group(2)
    assert (g.peak_flops, g.mem_bw, g.mem_bytes, g.tp, g.name) == (2e14, 2e12, 2e11, 2, "tpdev")
    assert TPDEV.group(1) is TPDEV


def test_allreduce_by_hand() -> None:
    # decode, batch 4, k=2: 2 all-reduces x 16 layers of 4 x 2048 x 2 B = 16384 B:
    # ring 2(k-1)/k = 1 -> 16384 / 1e11 = 1.6384e-7 s + 1e-5 s latency, x 32
    assert allreduce_s(ONE_B, TPDEV.group(2), 4) == pytest.approx(32 * (16384 / 1e11 + 1e-5), rel=1e-12)
    # k=4: 2(k-1)/k = 1.5
    assert allreduce_s(ONE_B, TPDEV.group(4), 4) == pytest.approx(32 * (1.5 * 16384 / 1e11 + 1e-5), rel=1e-12)
    assert allreduce_s(ONE_B, TPDEV, 4) == 0.0


def test_tp_decode_step_by_hand() -> None:
    # batch 4 at context 100 on 2 x tpdev: bytes 2.48e9 + 4*100*32768 = 2.4931072e9 over 2e12 x 0.5 B/s
    # = 2.4931072e-3 s (memory-bound: FLOPs 4*(2e9 + 4*16*2048*100) = 8.05e9 take 8.05e-5 s at 1e14),
    # + 1 ms overhead + all-reduces 32 x (1.6384e-7 + 1e-5) = 3.2524288e-4 s
    expected = 2.4931072e-3 + 1e-3 + 3.2524288e-4
    assert PRED.decode_step_s(ONE_B, TPDEV.group(2), 100, 4) == pytest.approx(expected, rel=1e-12)
    # one GPU: 2.4931072e9 / 5e11 + 1 ms
    assert PRED.decode_step_s(ONE_B, TPDEV, 100, 4) == pytest.approx(4.9862144e-3 + 1e-3, rel=1e-12)


def test_tp_prefill_by_hand() -> None:
    # batch 2 of 100 tokens on 2 x tpdev: FLOPs 2*(2e9*100 + 2*16*2048*100*101) = 4.013238272e11 over
    # 2e14 x 0.5 = 4.013238272e-3 s (compute-bound: bytes 2.4865536e9 take 2.49e-3 s), + 1 ms,
    # + all-reduces of 200 tokens: 32 x (200*2048*2 / 1e11 + 1e-5) = 32 x 1.8192e-5 = 5.82144e-4 s
    expected = 4.013238272e-3 + 1e-3 + 5.82144e-4
    assert PRED.prefill_s(ONE_B, TPDEV.group(2), 100, 2) == pytest.approx(expected, rel=1e-12)


def test_exact_timeline_of_one_query_on_a_tp_replica() -> None:
    # prompt 10, 4 decode steps at the mean context 12.5 (the simulator's rule), one query, 2 x tpdev, TP 2:
    # prefill: bytes 2.48e9 + 10*32768 over 1e12 = 2.48032768e-3 + 1 ms + 32 x (40960/1e11 + 1e-5)
    prefill = 2.48032768e-3 + 1e-3 + 32 * (40960 / 1e11 + 1e-5)
    # step: bytes 2.48e9 + 12.5*32768 over 1e12 = 2.4804096e-3 + 1 ms + 32 x (4096/1e11 + 1e-5)
    step = 2.4804096e-3 + 1e-3 + 32 * (4096 / 1e11 + 1e-5)
    sim = ClusterSimulator(ClusterSpec((TPDEV, TPDEV)), PRED, tp=2)
    r = sim.simulate(single(), TASK, ClosedLoop(1), 1, record=True)
    (e,) = r.timeline
    assert (e.device, e.start) == ("tpdev:0-1", 0.0) and e.end == pytest.approx(prefill + 4 * step, rel=1e-12)
    assert set(r.latency.utilisation) == {"tpdev:0-1"} and r.placement.to_dict() == {"llama-3.2-1b": ["tpdev:0-1"]}
    assert r.latency.cluster == "2xtpdev (tensor parallel 2)"


def test_groups_are_labelled_by_the_gpus_they_span() -> None:
    c = tp_cluster(parse_cluster("4xH100,2xA100-80GB"), 2)
    assert c.labels == ("H100:0-1", "H100:2-3", "A100-80GB:0-1") and str(c) == "4xH100,2xA100-80GB"
    assert [d.tp for d in c.devices] == [2, 2, 2]


def test_a_70b_model_needs_two_h100s() -> None:
    g = single("llama-3.1-70b")  # 141.2 GB of weights; an H100 offers 72 GB usable
    with pytest.raises(ClusterError, match=r"largest device .* 72\.0 GB .*try --tp"):
        ClusterSimulator("2xH100").placement(g, TASK)
    for tp in (2, "auto"):
        sim = ClusterSimulator("2xH100", tp=tp)
        assert sim.placement(g, TASK).to_dict() == {"llama-3.1-70b": ["H100:0-1"]}
    # 2 x A100-40GB: 72 GB usable per group of two, too small
    with pytest.raises(ClusterError, match=r"largest tensor-parallel group \(2 GPUs\) .* 72\.0 GB"):
        ClusterSimulator("2xA100-40GB", tp=2).placement(g, TASK)


def test_auto_picks_the_smallest_degree_that_holds_each_model() -> None:
    sim = ClusterSimulator("4xH100", tp="auto")
    big = Graph.build([("a", "assistant", "llama-3.1-70b"), ("out", "assistant", "llama-3.2-3b")], [("a", "out")],
                      "out")
    assert sim.placement(big, TASK).labels == ("H100:0-1", "H100:2-3")
    assert sim.placement(single(), TASK).labels == ("H100:0", "H100:1", "H100:2", "H100:3")
    demands = ClusterSimulator("8xH100").demands(single("llama-3.1-70b"), TASK)
    assert auto_tp(demands, parse_cluster("8xH100"), 0.9) == 2
    assert auto_tp(demands, parse_cluster("8xA100-40GB"), 0.9) == 4  # 36 GB usable each: 4 x 36 > 141.3
    assert auto_tp(demands, parse_cluster("1xH100"), 0.9) == 1  # nothing holds it: 1, placement says why


def test_a_tp_run_simulates_under_both_schedulers() -> None:
    g = Graph.build([("a", "assistant", "llama-3.2-1b"), ("b", "assistant", "llama-3.2-1b"),
                     ("out", "assistant", "llama-3.2-3b")], [("a", "out"), ("b", "out")], "out")
    for scheduler in ("static", "continuous"):
        r = ClusterSimulator("4xH100", scheduler=scheduler, tp=2).simulate(g, TASK, OpenLoop(5.0), 50)
        assert set(r.latency.utilisation) == {"H100:0-1", "H100:2-3"} and r.latency.p50_s > 0


@pytest.mark.parametrize(("cluster", "tp", "message"), [
    ("2xH100", 4, r"degree 4 exceeds the 2 GPUs of node 2xH100"),
    ("3xH100", 2, r"degree 2 does not divide the 3 GPUs"),
    ("2xcpu", 2, r"device cpu has no GPU-to-GPU link"),
])
def test_impossible_degrees_are_one_line_errors(cluster: str, tp: int, message: str) -> None:
    with pytest.raises(ClusterError, match=message):
        ClusterSimulator(cluster, tp=tp)


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "x", "", 0, -2, True, 2.0])
def test_bad_degrees_are_refused(bad) -> None:
    with pytest.raises(ClusterError, match="positive integer or 'auto'"):
        parse_tp(bad)


def test_good_degrees_parse() -> None:
    assert parse_tp("auto") == "auto" and parse_tp(" AUTO ") == "auto" and parse_tp("2") == 2 and parse_tp(4) == 4
    assert parse_tp(None) == 1


def test_cli_tp(tmp_path, capsys) -> None:
    g = tmp_path / "g.json"
    run(capsys, "graph", "preset", "single", "--model", "llama-3.1-70b", "-o", str(g))
    code, out, _ = run(capsys, "simulate", str(g), "--cluster", "2xH100", "--tp", "auto", "--queries", "20", "--json")
    import json
    lat = json.loads(out)["latency"]
    assert code == 0 and set(lat["utilisation"]) == {"H100:0-1"} and "tensor parallel 2" in lat["cluster"]
    for argv, message in ((["--cluster", "2xH100", "--tp", "4"], "exceeds the 2 GPUs"),
                          (["--cluster", "2xH100", "--tp", "0"], "positive integer or 'auto'"),
                          (["--cluster", "2xH100", "--tp", "two"], "positive integer or 'auto'"),
                          (["--tp", "2"], "--tp needs --cluster"),
                          (["--cluster", "2xA100-40GB", "--tp", "2"], "tensor-parallel group")):
        code, _, err = run(capsys, "simulate", str(g), *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)


def test_h100_catalogue_links_have_sources() -> None:
    h100 = get_device("H100")
    assert h100.link_bw == 450e9 and "900 GB/s" in h100.link_source
    assert get_device("L4").link_bw == 32e9 and get_device("cpu").link_bw is None
