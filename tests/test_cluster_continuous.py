"""Continuous batching, KV-cache blocks, preemption, prefix caching, overload flags and traces:
exact timelines hand-computed with constant-time fake predictors (SimPy style)."""

from __future__ import annotations

import json

import pytest

from tests.test_cluster_sim import ONE_B, TASK, ConstantPredictor, TokenPredictor, graph
from tts_sim.cli import main
from tts_sim.core.evaluation import Evaluation, LatencyStats
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.errors import ConfigError
from tts_sim.search.objectives import LatencyLimit
from tts_sim.sim.cluster import (
    SCHEDULERS,
    ArrivalTimes,
    ClosedLoop,
    ClusterSimulator,
    ClusterSpec,
    DeviceSpec,
    OpenLoop,
    build_scheduler,
)
from tts_sim.sim.cluster.trace import trace_events
from tts_sim.tasks import TaskSpec

SINGLE = graph([("out", ONE_B)], [])  # one request per query: prompt 10 tokens, 4 decode steps


def continuous(cluster="1xH100", predictor=None, **options) -> ClusterSimulator:
    return ClusterSimulator(cluster, predictor or ConstantPredictor(), scheduler="continuous",
                            scheduler_options=options or None)


def spans(r) -> list[tuple[int, float, float]]:
    return [(e.query, e.start, e.end) for e in sorted(r.timeline, key=lambda e: e.query)]


def test_requests_join_and_leave_the_running_batch_at_step_boundaries() -> None:
    # Prefill 1 s per iteration, decode step 0.25 s; every request: 4 decode steps.
    # q0 at 0: prefill [0,1], then decode from 1.  q1 arrives at 0.6, during q0's prefill: it is
    # admitted at the prefill's end: prefill [1,2] (q0 waits), both decode [2,...].
    # q2 arrives at 2.6, during step 3 of [2.5,2.75]: at 2.75 q0 and q1 have 1 step left; q2's
    # prefill [2.75,3.75]; one step [3.75,4.0] (q0, q1 leave at 4.0); q2 alone 3 steps -> 4.75.
    r = continuous().simulate(SINGLE, TASK, ArrivalTimes((0.0, 0.6, 2.6)), 3, record=True)
    assert spans(r) == [(0, 0.0, 4.0), (1, 1.0, 4.0), (2, 2.75, 4.75)]
    assert r.latencies == pytest.approx([4.0, 3.4, 2.15])
    assert [e.first_token for e in sorted(r.timeline, key=lambda e: e.query)] == [1.0, 2.0, 3.75]  # prefill ends
    kinds = [(b.kind, b.start, b.end, len(b.requests)) for b in r.batches]
    assert kinds == [("prefill", 0.0, 1.0, 1), ("prefill", 1.0, 2.0, 1), ("decode", 2.0, 2.75, 2),
                     ("prefill", 2.75, 3.75, 1), ("decode", 3.75, 4.0, 3), ("decode", 4.0, 4.75, 1)]
    assert r.latency.scheduler == "continuous" and r.latency.preemptions == 0
    # static batching serves them one batch after the other: [0,2], [2,4], [4,6]
    s = ClusterSimulator("1xH100", ConstantPredictor(), scheduler="static").simulate(
        SINGLE, TASK, ArrivalTimes((0.0, 0.6, 2.6)), 3, record=True)
    assert spans(s) == [(0, 0.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 6.0)]


def test_chunked_prefill_runs_prompt_chunks_alongside_decodes() -> None:
    # Budget 64 tokens per step: q0's 10-token prompt is one chunk, [0,1]; it decodes from 1.
    # q1 arrives at 0.6; at 1 a mixed step: q0 decodes one token, q1's prompt is prefilled:
    # 1 + 0.25 s -> [1,2.25]. Then both decode: q0 3 steps left -> leaves at 3.0; q1 1 more -> 3.25.
    r = continuous(chunked_prefill=64).simulate(SINGLE, TASK, ArrivalTimes((0.0, 0.6)), 2, record=True)
    assert spans(r) == [(0, 0.0, 3.0), (1, 1.0, 3.25)]
    assert [b.kind for b in r.batches] == ["mixed", "mixed", "decode", "decode"]
    # a 4-token budget: q0's prompt takes 3 steps (4 + 4 + 2 tokens), prefill-only: [0,3]; 4 steps -> 4.0
    r = continuous(chunked_prefill=4).simulate(SINGLE, TASK, ArrivalTimes((0.0,)), 1, record=True)
    assert spans(r) == [(0, 0.0, 4.0)] and r.latency.prefill_tokens == 10


def test_kv_blocks_run_out_and_the_latest_request_is_preempted_and_recomputed() -> None:
    # max_batch 2 and memory for exactly the weights + the KV placement reserves (2 x 14 tokens
    # x 32768 B = 917504 B): 7 blocks of 4 tokens. Both prompts (10 tokens: 3 blocks each) are
    # admitted at 0 and prefilled [0,1]. A context of 13 tokens needs a 4th block: 2 steps fit
    # (6 blocks), [1,1.5]. At 1.5 the next step does not fit: q1 (the latest) is preempted after
    # 2 tokens and q0 runs one step [1.5,1.75]. At 1.75 q1 comes back (12 tokens: 3 blocks, 4 +
    # 3 = 7 fit): prefill [1.75,2.75]; the next step would need 8 blocks: q1 is preempted again,
    # q0 takes its last step [2.75,3.0]. q1: prefill of 12 tokens [3,4], its 2 last steps -> 4.5.
    model = DEFAULT_CATALOG[ONE_B]
    demand = 2 * 14 * model.kv_bytes_per_token
    tiny = DeviceSpec("tiny", "gpu", 1e14, 1e12, model.weight_bytes + demand)
    sim = ClusterSimulator(ClusterSpec((tiny,), "1xtiny"), ConstantPredictor(), max_batch=2, mem_fraction=1.0,
                           scheduler="continuous", scheduler_options={"block_size": 4, "prefix_caching": False})
    r = sim.simulate(SINGLE, TASK, ArrivalTimes((0.0, 0.0)), 2, record=True)
    assert spans(r) == [(0, 0.0, 3.0), (1, 0.0, 4.5)]
    assert r.latency.preemptions == 2
    assert r.latency.prefill_tokens == 10 + 10 + 12 + 12
    assert r.latency.kv_peak == {"tiny:0": pytest.approx(7 / 7)}
    # with room for one more block, nothing is preempted: both decode [1,2]
    roomy = DeviceSpec("roomy", "gpu", 1e14, 1e12, model.weight_bytes + demand + 4 * model.kv_bytes_per_token)
    sim2 = ClusterSimulator(ClusterSpec((roomy,), "1xroomy"), ConstantPredictor(), max_batch=2, mem_fraction=1.0,
                            scheduler="continuous", scheduler_options={"block_size": 4, "prefix_caching": False})
    r2 = sim2.simulate(SINGLE, TASK, ArrivalTimes((0.0, 0.0)), 2, record=True)
    assert spans(r2) == [(0, 0.0, 2.0), (1, 0.0, 2.0)] and r2.latency.preemptions == 0


def test_parallel_nodes_of_a_query_share_the_question_prefix() -> None:
    # a, b (sources, 10-token prompts) -> out (18 tokens). Block 4: the question's first 8 tokens
    # (2 whole blocks) are shared. Prefill costs 0.1 s per token of the batch's mean new tokens.
    # Caching on: a prefills 10, b 2 (mean 6: 0.6 s) [0,0.6], decode [0.6,1.6]; out reuses the
    # cached prefix after a and b finished: 10 new tokens, 1.0 s [1.6,2.6], decode -> 3.6.
    # Caching off: a, b 10 each: 1.0 s, decode [1,2]; out 18 tokens: 1.8 s [2,3.8], decode -> 4.8.
    g = graph([("a", ONE_B), ("b", ONE_B), ("out", ONE_B)], [("a", "out"), ("b", "out")])
    on = continuous(predictor=TokenPredictor(), block_size=4).simulate(g, TASK, ClosedLoop(1), 1, record=True)
    off = continuous(predictor=TokenPredictor(), block_size=4, prefix_caching=False).simulate(
        g, TASK, ClosedLoop(1), 1, record=True)
    assert on.latencies == pytest.approx([3.6]) and off.latencies == pytest.approx([4.8])
    assert (on.latency.prefill_tokens, on.latency.prefill_tokens_saved) == (22, 16)
    assert (off.latency.prefill_tokens, off.latency.prefill_tokens_saved) == (38, 0)
    # static batching never shares (and pads): 2 x 10 + 18
    static = ClusterSimulator("1xH100", TokenPredictor(), scheduler="static").simulate(g, TASK, ClosedLoop(1), 1)
    assert (static.latency.prefill_tokens, static.latency.prefill_tokens_saved) == (38, 0)


def test_continuous_batching_keeps_dependencies_and_littles_law() -> None:
    g = graph([("a", ONE_B), ("b", "gemma-2b"), ("f", "llama-3.1-8b"), ("out", "llama-3.2-3b")],
              [("a", "f"), ("b", "f"), ("f", "out"), ("a", "out")])
    task = TaskSpec("m", "math", 202, 275)
    sim = ClusterSimulator("2xH100", scheduler="continuous")
    r = sim.simulate(g, task, OpenLoop(0.5), 300, seed=2, record=True)
    assert r.n_node_calls == 1200 == len(r.timeline)
    ends = {(e.query, e.node): e.end for e in r.timeline}
    for e in r.timeline:
        for p in g.predecessors(e.node):
            assert ends[(e.query, p)] <= e.start + 1e-9
    for concurrency in (1, 8):
        c = sim.simulate(g, task, ClosedLoop(concurrency), 400).latency
        assert c.throughput_qps * c.mean_s == pytest.approx(concurrency, rel=0.03)
        assert all(0 < u <= 1 + 1e-9 for u in c.utilisation.values())
    # one model per engine and a light load: requests join a running batch instead of queueing
    # behind it, so continuous batching answers no later than static batching
    single = graph([("out", "llama-3.1-8b")], [])
    light = [ClusterSimulator("1xH100", scheduler=s).simulate(single, task, OpenLoop(2.0), 400, seed=1).latency
             for s in ("static", "continuous")]
    assert light[1].mean_s < light[0].mean_s


def test_overload_is_flagged_and_loads_are_stated() -> None:
    g = graph([("a", ONE_B), ("b", "gemma-2b"), ("f", "llama-3.1-8b"), ("out", "llama-3.2-3b")],
              [("a", "f"), ("b", "f"), ("f", "out"), ("a", "out")])
    task = TaskSpec("m", "math", 202, 275)
    for scheduler, hot_qps in (("static", 6.0), ("continuous", 60.0)):  # continuous batches up to 256
        sim = ClusterSimulator("2xH100", scheduler=scheduler)
        calm = sim.simulate(g, task, OpenLoop(0.2), 1000, seed=1).latency
        hot = sim.simulate(g, task, OpenLoop(hot_qps), 1000, seed=1).latency
        closed = sim.simulate(g, task, ClosedLoop(32), 500).latency
        assert not calm.overloaded and calm.load == "open loop, 0.2 queries/s" and calm.offered_qps == 0.2
        assert hot.overloaded and "throughput" in hot.overload_reason
        assert not closed.overloaded and closed.load == "closed loop, 32 in flight"
    ok = LatencyStats(1.0, 1.0, 1.0, 1.0, 1.0, 100)
    over = LatencyStats(1.0, 1.0, 1.0, 1.0, 1.0, 100, overloaded=True)
    limit = LatencyLimit(5.0, "p95")
    ev = Evaluation(graph=SINGLE, task="m", accuracy=0.9, ci_low=0.8, ci_high=1.0, n_questions=10, flops=1.0,
                    budget_units=1.0)
    fine = limit.score(Evaluation(**{**ev.__dict__, "latency": ok}))
    bad = limit.score(Evaluation(**{**ev.__dict__, "latency": over}))
    worse_but_ok = limit.score(Evaluation(**{**ev.__dict__, "accuracy": 0.01, "latency": ok}))
    assert fine == 0.9 and bad < worse_but_ok


def test_trace_has_a_track_per_device_and_per_query_and_nested_slices(tmp_path) -> None:
    g = graph([("a", ONE_B), ("b", "llama-3.2-3b"), ("out", ONE_B)], [("a", "out"), ("b", "out")])
    task = TaskSpec("m", "math", 202, 275)
    for scheduler in ("static", "continuous"):
        r = ClusterSimulator("2xH100", scheduler=scheduler).simulate(g, task, OpenLoop(2.0), 40, seed=3, record=True)
        trace = json.loads(json.dumps(trace_events(r)))
        events = trace["traceEvents"]
        names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events if e["ph"] == "M"}
        slices = [e for e in events if e["ph"] == "X"]
        assert {names[(1, None)], names[(2, None)]} == {"devices", "queries"}
        assert {names[(1, e["tid"])] for e in slices if e["pid"] == 1} == {"H100:0", "H100:1"}
        queries = {names[(2, e["tid"])].split(" lane")[0] for e in slices if e["pid"] == 2}
        assert queries == {f"query {q}" for q in range(40)}
        assert sum(1 for e in slices if e["pid"] == 2) == 120
        for e in slices:
            assert e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["name"], str)
        served = sorted(req for e in slices if e["pid"] == 1 and e["name"] in ("batch", "prefill")
                        for req in e["args"]["requests"])
        assert served == sorted(f"q{q}/{n}" for q in range(40) for n in ("a", "b", "out"))
        tracks: dict[tuple[int, int], list] = {}
        for e in slices:
            tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
        for spans_ in tracks.values():  # slices on a track nest or are disjoint
            stack: list[float] = []
            for start, end in sorted(spans_, key=lambda s: (s[0], -s[1])):
                while stack and stack[-1] <= start + 1e-6:
                    stack.pop()
                assert not stack or end <= stack[-1] + 1e-6
                stack.append(end)
    path = tmp_path / "t.json"
    assert main(["simulate", "--cluster", "1xH100", "--queries", "5", "--questions", "5", "--scheduler",
                 "continuous", "--trace", str(path), _graph_file(tmp_path)]) == 0
    assert json.loads(path.read_text())["traceEvents"]


def _graph_file(tmp_path) -> str:
    p = tmp_path / "g.json"
    p.write_text(json.dumps(graph([("a", ONE_B), ("out", "llama-3.2-3b")], [("a", "out")]).to_dict()))
    return str(p)


def test_registry_and_bad_input(tmp_path, capsys) -> None:
    assert {"static", "continuous"} <= set(SCHEDULERS.names())
    assert build_scheduler("continuous", {"block_size": 32}).config.block_size == 32
    with pytest.raises(ConfigError, match="unknown scheduler 'fifo'"):
        build_scheduler("fifo")
    with pytest.raises(ConfigError, match="block size"):
        build_scheduler("continuous", {"block_size": 0})
    g = _graph_file(tmp_path)
    for argv, words in ((["--scheduler", "fifo"], "unknown scheduler 'fifo'"),
                        (["--scheduler", "continuous", "--kv-block-size", "0"], "KV block size"),
                        (["--scheduler", "static", "--kv-block-size", "8"],
                         "--kv-block-size does not apply to --scheduler static"),
                        (["--scheduler", "continuous", "--chunked-prefill", "0"], "chunked-prefill")):
        capsys.readouterr()
        assert main(["simulate", g, "--cluster", "1xH100", "--queries", "5", *argv]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


def test_evaluator_chooses_scheduler_and_predictor_through_the_registries() -> None:
    from tts_sim.core.profile import LatencyTable, Profile
    from tts_sim.sim.cluster import LATENCY_PREDICTORS, RooflinePredictor, TablePredictor, predictor_for
    from tts_sim.sim.evaluator import SimulatedEvaluator
    from tts_sim.sim.scenario import load_default_profile

    assert {"roofline", "profile-table"} <= set(LATENCY_PREDICTORS.names())
    base = load_default_profile()
    ev = SimulatedEvaluator("math", profile=base, cluster="1xH100", n_queries=20, scheduler="continuous",
                            scheduler_options={"block_size": 32})
    assert isinstance(ev.simulator.predictor, RooflinePredictor)
    assert ev.simulator.scheduler.name == "continuous" and ev.simulator.scheduler.config.block_size == 32
    lat = ev.latency(graph([("out", ONE_B)], []))
    assert lat.scheduler == "continuous" and lat.load == "open loop, 1 queries/s" and lat.n_queries == 20
    table = LatencyTable(ONE_B, "H100", "vllm", prefill=[(100, 1, 0.01), (1000, 8, 0.3)],
                         decode=[(100, 1, 0.002), (1000, 8, 0.004)])
    measured = Profile(dict(base.metadata), base.tasks, [table])
    assert isinstance(predictor_for(measured), TablePredictor)  # what SimulatedEvaluator calls
    calibrated = predictor_for(measured, name="roofline")
    assert isinstance(calibrated, RooflinePredictor) and calibrated != RooflinePredictor()
    with pytest.raises(ConfigError, match="needs a profile with latency tables"):
        SimulatedEvaluator("math", profile=base, cluster="1xH100", predictor="profile-table")
    with pytest.raises(ConfigError, match="unknown latency_predictor 'magic'"):
        SimulatedEvaluator("math", profile=base, cluster="1xH100", predictor="magic")


def test_sweep_cells_show_overload_and_the_load(capsys) -> None:
    assert main(["sweep", "width-depth", "--model", ONE_B, "--max-width", "3", "--max-depth", "1", "--cluster",
                 "1xL4", "--qps", "3", "--queries", "150", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["load"].startswith("open loop, 3 queries/s, 150 queries simulated")
    assert data["overloaded"][0][-1] is True  # three 1B chains and a 3B output at 3 queries/s on one L4
    assert main(["sweep", "width-depth", "--model", ONE_B, "--max-width", "3", "--max-depth", "1", "--cluster",
                 "1xL4", "--qps", "3", "--queries", "150"]) == 0
    out = capsys.readouterr().out
    assert "! = overloaded" in out and "open loop, 3 queries/s" in out


@pytest.mark.parametrize("options", [{}, {"chunked_prefill": 256}, {"prefix_caching": False}])
def test_under_memory_pressure_kv_use_stays_within_capacity_and_requests_are_preempted(options) -> None:
    # long prompts and replies, 64 sequences allowed per engine: the KV cache, not max_batch, limits.
    # (kv_peak is per device: the engines sharing it fill up at different times)
    from tts_sim.sim.cluster import LengthDistribution, TokenModel

    g = graph([("a", ONE_B), ("b", "gemma-2b"), ("f", "llama-3.1-8b"), ("out", "llama-3.2-3b")],
              [("a", "f"), ("b", "f"), ("f", "out"), ("a", "out")])
    tokens = TokenModel(answers={"direct": LengthDistribution((50, 300, 1200), (0.3, 0.5, 0.2))}, sampled=True)
    sim = ClusterSimulator("2xL4", scheduler="continuous", scheduler_options=options or None, max_batch=64,
                           tokens=tokens)
    r = sim.simulate(g, TaskSpec("long", "math", 1500, 600), ClosedLoop(16), 300, seed=3, record=True)
    lat = r.latency
    assert lat.preemptions > 0 and r.n_node_calls == 1200
    assert all(0 < peak <= 1 + 1e-9 for peak in lat.kv_peak.values()) and max(lat.kv_peak.values()) > 0.5
    assert lat.throughput_qps * lat.mean_s == pytest.approx(16, rel=0.03)
    ends = {(e.query, e.node): e.end for e in r.timeline}
    assert all(ends[(e.query, p)] <= e.start + 1e-9 for e in r.timeline for p in g.predecessors(e.node))


def test_auto_is_continuous_on_gpus_and_static_with_a_cpu_and_each_has_its_batch_default() -> None:
    from tts_sim.sim.cluster.schedulers import resolve_auto

    assert resolve_auto("auto", ["gpu", "gpu"]) == "continuous"
    assert resolve_auto(None, ["gpu", "cpu"]) == "static"
    assert resolve_auto("static", ["gpu"]) == "static"
    gpu, cpu = ClusterSimulator("1xH100"), ClusterSimulator("cpu")
    assert (gpu.scheduler.name, gpu.max_batch) == ("continuous", 256)
    assert (cpu.scheduler.name, cpu.max_batch) == ("static", 8)
    assert ClusterSimulator("1xH100", max_batch=4).max_batch == 4


def test_a_continuous_flag_on_a_cpu_cluster_says_auto_picked_static(tmp_path, capsys) -> None:
    g = _graph_file(tmp_path)
    assert main(["simulate", g, "--cluster", "cpu", "--queries", "3", "--kv-block-size", "8"]) == 2
    assert "auto picks static with a CPU device" in capsys.readouterr().err
