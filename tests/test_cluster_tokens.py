"""The simulator's token model: prompt overheads per kind, reply lengths per request, batch = longest reply."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sim.core.graph import Graph
from tts_sim.core.models import ModelSpec
from tts_sim.core.profile import Profile
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.real.profiling.run import fusion_token_stats
from tts_sim.sim.cluster import (
    ClosedLoop,
    ClusterError,
    DeviceSpec,
    LengthDistribution,
    OpenLoop,
    TokenModel,
    token_model_from_profile,
)
from tts_sim.sim.cluster import ClusterSimulator as _ClusterSimulator
from tts_sim.tasks import TaskSpec


def ClusterSimulator(*args, **kw):  # noqa: N802 - these tests pin down static batching
    return _ClusterSimulator(*args, **{"scheduler": "static", **kw})


ONE_B, THREE_B = "llama-3.2-1b", "llama-3.2-3b"
TASK = TaskSpec("tiny", "math", 10, 4)


@dataclass
class LinearPredictor:
    """Prefill: ``per_prompt`` s per token of the batch's (padded) prompt; decode: ``step`` s per step."""

    per_prompt: float = 0.1
    step: float = 0.25
    name: str = "linear"

    def prefill_s(self, model: ModelSpec, device: DeviceSpec, prompt_tokens: float, batch: int) -> float:
        return self.per_prompt * prompt_tokens

    def decode_step_s(self, model: ModelSpec, device: DeviceSpec, context_tokens: float, batch: int) -> float:
        return self.step

    def source(self, model: ModelSpec, device: DeviceSpec) -> str:
        return "roofline"


def events(result) -> list[tuple]:
    return [(e.query, e.node, round(e.start, 9), round(e.end, 9), e.batch) for e in result.timeline]


# a -> f (fuser: "fuse"), a -> r (assistant, not output: "refine"), f, r -> out ("synthesise"); one model
DIAMOND = Graph.build([("a", "assistant", ONE_B), ("f", "fuser", ONE_B), ("r", "assistant", ONE_B),
                       ("out", "assistant", ONE_B)], [("a", "f"), ("a", "r"), ("f", "out"), ("r", "out")], "out")
KIND_LENGTHS = {"direct": 4, "fuse": 8, "refine": 3, "synthesise": 5}
KIND_MODEL = TokenModel({k: LengthDistribution.fixed(n) for k, n in KIND_LENGTHS.items()},
                        {"fuse": 20.0, "refine": 10.0, "synthesise": 30.0}, overhead_per_input=2.0)


def test_batch_decodes_for_its_longest_reply_and_prompts_carry_their_kinds_overhead() -> None:
    # prompts (A=10): a 10 (no predecessors: no overhead); f 10 + 4 (a's reply) + 20 + 2*1 = 36;
    # r 10 + 4 + 10 + 2 = 26; out 10 + 8 + 3 (f's and r's replies) + 30 + 2*2 = 55.
    # a: 0.1*10 + 4*0.25 = 2 -> [0, 2]; f and r batch (padded to 36, 8 steps: f's reply is the longest):
    # 3.6 + 8*0.25 = 5.6 -> [2, 7.6]; out: 5.5 + 5*0.25 = 6.75 -> [7.6, 14.35].
    expected = [(0, "a", 0, 2, 1), (0, "f", 2, 7.6, 2), (0, "r", 2, 7.6, 2), (0, "out", 7.6, 14.35, 1)]
    for sampled in (False, True):  # fixed distributions: every draw is the mean
        sim = ClusterSimulator("1xH100", LinearPredictor(), tokens=dataclasses.replace(KIND_MODEL, sampled=sampled))
        r = sim.simulate(DIAMOND, TASK, ClosedLoop(1), 1, record=True)
        assert events(r) == expected
        assert r.latencies == [pytest.approx(14.35)]


def test_default_is_the_papers_count() -> None:
    # paper: every prompt A + d*B (a 10, f/r 14, out 18), every reply B = 4 steps.
    # a: 1 + 1 = 2; f+r: 1.4 + 1 = 2.4 -> [2, 4.4]; out: 1.8 + 1 = 2.8 -> [4.4, 7.2]
    expected = [(0, "a", 0, 2, 1), (0, "f", 2, 4.4, 2), (0, "r", 2, 4.4, 2), (0, "out", 4.4, 7.2, 1)]
    for tokens in (None, TokenModel(), TokenModel(sampled=True), TokenModel(overhead={"fuse": 0.0})):
        r = ClusterSimulator("1xH100", LinearPredictor(), tokens=tokens).simulate(
            DIAMOND, TASK, ClosedLoop(1), 1, record=True)
        assert events(r) == expected


@st.composite
def small_graphs(draw) -> Graph:
    width = draw(st.integers(1, 3))
    depth = draw(st.integers(0, 2))
    nodes = [(f"s{i}", "assistant", draw(st.sampled_from([ONE_B, THREE_B]))) for i in range(width)]
    edges, prev = [], [n[0] for n in nodes]
    for d in range(depth):
        nid = f"m{d}"
        nodes.append((nid, draw(st.sampled_from(["assistant", "fuser"])) if d == 0 else "assistant",
                      draw(st.sampled_from([ONE_B, THREE_B]))))
        edges += [(p, nid) for p in prev]
        prev = [nid]
    nodes.append(("out", "assistant", THREE_B))
    edges += [(p, "out") for p in prev]
    return Graph.build(nodes, edges, "out")


@settings(max_examples=25, deadline=None)
@given(graph=small_graphs(), a=st.floats(1, 500), b=st.floats(1, 500), qps=st.floats(0.05, 5),
       cluster=st.sampled_from(["1xH100", "2xH100", "1xA100-80GB,2xL4"]))
def test_empty_token_model_changes_nothing(graph: Graph, a: float, b: float, qps: float, cluster: str) -> None:
    task = TaskSpec("t", "math", a, b)
    base = ClusterSimulator(cluster).simulate(graph, task, OpenLoop(qps), 30, seed=3, record=True)
    same = ClusterSimulator(cluster, tokens=TokenModel(sampled=True)).simulate(graph, task, OpenLoop(qps), 30,
                                                                                seed=3, record=True)
    assert same.timeline == base.timeline and same.latency == base.latency and same.placement == base.placement


@settings(max_examples=15, deadline=None)
@given(graph=small_graphs(), a=st.integers(1, 300), b=st.integers(1, 300))
def test_fixed_means_without_overhead_match_the_paper_for_whole_token_counts(graph: Graph, a: int, b: int) -> None:
    task = TaskSpec("t", "math", a, b)
    tokens = TokenModel({"*": LengthDistribution.fixed(b)})
    base = ClusterSimulator("2xH100").simulate(graph, task, ClosedLoop(3), 12, record=True)
    same = ClusterSimulator("2xH100", tokens=tokens).simulate(graph, task, ClosedLoop(3), 12, record=True)
    assert same.timeline == base.timeline


TWO_POINT = LengthDistribution.from_histogram({"2": 1, "20": 1})
PARALLEL2 = Graph.build([("a", "assistant", ONE_B), ("b", "assistant", ONE_B), ("out", "assistant", THREE_B)],
                        [("a", "out"), ("b", "out")], "out")


def test_sampled_lengths_batch_at_their_max_and_are_seed_reproducible() -> None:
    tokens = TokenModel({"direct": TWO_POINT, "synthesise": LengthDistribution.fixed(1)}, sampled=True)
    sim = ClusterSimulator("1xH100", LinearPredictor(per_prompt=0.0, step=1.0), tokens=tokens)
    n = 2000
    r = sim.simulate(PARALLEL2, TASK, ClosedLoop(1), n, seed=5, record=True)
    # a and b batch together and decode max(L_a, L_b) steps (2 or 20), then out decodes 1 step
    assert set(r.latencies) == {3.0, 21.0}
    long = sum(lat == 21.0 for lat in r.latencies) / n
    assert abs(long - 0.75) < 0.04  # P(max of two fair draws of {2, 20} is 20) = 3/4
    again = ClusterSimulator("1xH100", LinearPredictor(per_prompt=0.0, step=1.0), tokens=tokens)
    assert again.simulate(PARALLEL2, TASK, ClosedLoop(1), n, seed=5, record=True).latencies == r.latencies
    other = sim.simulate(PARALLEL2, TASK, ClosedLoop(1), n, seed=6, record=True)
    assert other.latencies != r.latencies


def test_sampling_leaves_open_loop_arrivals_alone_and_moves_latency() -> None:
    tokens = TokenModel({"*": TWO_POINT}, sampled=True)
    base = ClusterSimulator("1xH100").simulate(PARALLEL2, TASK, OpenLoop(0.5), 200, seed=2, record=True)
    samp = ClusterSimulator("1xH100", tokens=tokens).simulate(PARALLEL2, TASK, OpenLoop(0.5), 200, seed=2,
                                                              record=True)
    assert samp.arrivals == base.arrivals
    assert samp.latencies != base.latencies


def test_placement_reserves_the_longest_sampled_reply() -> None:
    long = LengthDistribution.from_histogram({"4": 99, "100000": 1})
    graph = Graph.build([("out", "assistant", "llama-3.1-8b")], [], "out")
    task = TaskSpec("t", "math", 10, 4)
    ClusterSimulator("1xH100").placement(graph, task)  # fits with 14 tokens of context
    ClusterSimulator("1xH100", tokens=TokenModel({"*": long})).placement(graph, task)  # mean 1004: still fits
    with pytest.raises(ClusterError, match="8 x 100010 tokens"):  # the 100k-token reply's KV cache does not
        ClusterSimulator("1xH100", tokens=TokenModel({"*": long}, sampled=True)).placement(graph, task)


def test_length_distribution_from_histogram_and_checks() -> None:
    d = LengthDistribution.from_histogram({"3": 1, "7": 3, "5": 0})
    assert d.values == (3, 7) and d.probs == pytest.approx((0.25, 0.75))
    assert d.mean == pytest.approx(6.0) and d.max == 7
    assert LengthDistribution.from_samples([4, 4, 9]) == LengthDistribution((4, 9), (2 / 3, 1 / 3))
    draws = d.sample(np.random.default_rng(0), 4000)
    assert set(draws) == {3, 7} and abs(np.mean(draws) - 6.0) < 0.1
    for bad in ({"x": 1}, {"-2": 1}, {"3": -1}, {}, {"3": 0}, {3.5: 1}):
        with pytest.raises(ConfigError):
            LengthDistribution.from_histogram(bad)
    with pytest.raises(ConfigError):
        LengthDistribution((5, 3), (0.5, 0.5))


def test_token_model_checks_kinds() -> None:
    with pytest.raises(ConfigError, match="unknown prompt kind"):
        TokenModel({"summarise": LengthDistribution.fixed(3)})
    with pytest.raises(ConfigError, match="only prompts with predecessors"):
        TokenModel(overhead={"direct": 5.0})
    with pytest.raises(ConfigError, match="TokenModel"):
        ClusterSimulator("1xH100", tokens="sampled")  # type: ignore[arg-type]


STATS = {"prompt_tokens": 40.0, "answer_tokens": 6.0, "answer_tokens_histogram": {"5": 2, "7": 2},
         "answer_tokens_histogram_by_kind": {"synthesise": {"9": 1}},
         "fusion_overhead_tokens": 33.0, "fusion_overhead_tokens_by_kind": {"refine": 30.0, "synthesise": 40.0},
         "fusion_overhead_tokens_per_input": 5.0}


def test_from_stats_reads_a_profiles_token_statistics() -> None:
    raw = TokenModel.from_stats(STATS, prior_samples=0)  # every kind's histogram as measured
    assert raw.sampled and raw.answer("direct").mean == 6.0 and raw.answer("synthesise").values == (9,)
    assert raw.answer("fuse").values == (9,)  # kinds without a histogram: all fused replies pooled
    tm = TokenModel.from_stats(STATS)  # shrunk: 10 pseudo-replies from the level above
    pooled = tm.answer("fuse")  # {9: 1} + 10 x direct {5: .5, 7: .5}
    assert pooled.values == (5, 7, 9) and pooled.probs == pytest.approx((5 / 11, 5 / 11, 1 / 11))
    synth = tm.answer("synthesise")  # {9: 1} + 10 x pooled
    assert synth.mean == pytest.approx((9 + 10 * 69 / 11) / 11) and tm.answer("direct").mean == 6.0
    big = {**STATS, "answer_tokens_histogram_by_kind": {"synthesise": {"9": 10**6}}}
    assert TokenModel.from_stats(big).answer("synthesise").mean == pytest.approx(9.0, abs=1e-3)
    with pytest.raises(ConfigError, match="prior_samples"):
        TokenModel.from_stats(STATS, prior_samples=-1)
    assert tm.overhead == {"refine": 30.0, "synthesise": 40.0} and tm.overhead_per_input == 5.0
    task = TaskSpec("t", "math", 40, 6)
    assert tm.prompt_tokens(task, "direct", []) == 40
    assert tm.prompt_tokens(task, "synthesise", ["direct", "direct"]) == 40 + 12 + 40 + 10
    assert tm.prompt_tokens(task, "fuse", ["direct"]) == 40 + 6 + 0 + 5  # no overhead measured for fuse
    mean_only = TokenModel.from_stats({"fusion_overhead_tokens": 12.5}, sampled=False)
    assert mean_only.overhead == {"refine": 12.5, "fuse": 12.5, "synthesise": 12.5} and not mean_only.sampled
    with pytest.raises(ProfileError, match="bad token statistics"):
        TokenModel.from_stats({"answer_tokens_histogram": {"x": 1}})
    with pytest.raises(ProfileError, match="bad token statistics"):
        TokenModel.from_stats({"fusion_overhead_tokens_by_kind": {"direct": 3}})
    with pytest.raises(ProfileError, match="unknown kind"):
        TokenModel.from_stats({"answer_tokens_histogram_by_kind": {"direct": {"3": 40}}})


def test_each_model_gets_its_own_reply_lengths_where_measured() -> None:
    stats = {**STATS, "answer_tokens_histogram_by_model": {
        ONE_B: {"direct": {"16": 30}}, THREE_B: {"direct": {"2": 30}, "fuse": {"4": 30}}}}
    raw = TokenModel.from_stats(stats, prior_samples=0)
    assert raw.answer("direct", ONE_B).mean == 16 and raw.answer("direct", THREE_B).mean == 2
    assert raw.answer("direct").mean == 6.0 and raw.answer("direct", "other-model").mean == 6.0  # the kind's
    assert raw.answer("refine", ONE_B) == raw.answer("refine")  # not measured for that model: the kind's
    shrunk = TokenModel.from_stats(stats)  # 10 pseudo-replies of the kind: (30 x 16 + 10 x 6) / 40
    assert shrunk.answer("direct", ONE_B).mean == pytest.approx((30 * 16 + 10 * 6) / 40)
    task = TaskSpec("t", "math", 40, 6)
    # a synthesising node reads a ONE_B and a THREE_B direct reply: 16 + 2 tokens, not 2 x 6
    assert raw.prompt_tokens(task, "synthesise", ["direct", "direct"], [ONE_B, THREE_B]) == 40 + 18 + 40 + 10
    assert raw.decode_tokens(task, "direct", ONE_B) == 16 and raw.longest_decode(task, "fuse", THREE_B) == 4
    # the simulator charges each node its model's lengths: a lone ONE_B answer decodes 16 steps, THREE_B 2
    fixed = dataclasses.replace(raw, sampled=False)
    for model, steps in ((ONE_B, 16), (THREE_B, 2)):
        g = Graph.build([("out", "assistant", model)], [], "out")
        r = ClusterSimulator("1xH100", LinearPredictor(), tokens=fixed).simulate(g, task, ClosedLoop(1), 1,
                                                                                  record=True)
        assert r.latencies == [pytest.approx(0.1 * 40 + 0.25 * steps)]
    with pytest.raises(ProfileError, match="unknown kind"):
        TokenModel.from_stats({**STATS, "answer_tokens_histogram_by_model": {ONE_B: {"nope": {"3": 1}}}})


def test_token_model_from_profile_and_simulated_evaluator_use_it() -> None:
    from tts_sim.sim.evaluator import SimulatedEvaluator
    from tts_sim.sim.scenario import load_default_profile

    assert token_model_from_profile(Profile({"label": "x"}), "math") is None
    assert token_model_from_profile(Profile({"token_stats": {"math": {"prompt_tokens": 9.0}}}), "math") is None
    default = load_default_profile()
    assert SimulatedEvaluator("math", default, cluster="1xH100").simulator.tokens.is_paper
    measured = dataclasses.replace(default, metadata={**default.metadata, "token_stats": {"math": STATS}})
    ev = SimulatedEvaluator("math", measured, cluster="1xH100", n_queries=50)
    assert ev.simulator.tokens == TokenModel.from_stats(STATS) and ev.simulator.tokens.sampled
    forced = SimulatedEvaluator("math", measured, cluster="1xH100", n_queries=50, tokens=TokenModel())
    assert forced.simulator.tokens.is_paper
    graph = Graph.build([("out", "assistant", ONE_B)], [], "out")
    # math's B is 275 tokens; the measured replies are 5-7 tokens: far less decoding
    assert ev.latency(graph).mean_s < 0.2 * forced.latency(graph).mean_s


def test_fusion_token_stats_fit_overhead_per_kind_and_input() -> None:
    samples = [SimpleNamespace(model="m", question=q, prompt_tokens=20 + q, completion_tokens=c)
               for q, c in [(0, 5), (1, 7), (2, 5)]]
    banks = SimpleNamespace(samples=samples)
    calls = []
    for q, kind, inputs, base in [(0, "refine", (5,), 30), (1, "refine", (5, 7, 7), 30), (2, "synthesise", (5, 5), 40),
                                  (0, "synthesise", (7,), 40), (1, "fuse", (6, 6), 25)]:
        prompt = 20 + q + sum(inputs) + base + 4 * len(inputs)  # template: base[kind] + 4 per input
        calls.append(SimpleNamespace(kind=kind, completion_tokens=len(inputs) + 8, input_tokens=inputs,
                                     record=SimpleNamespace(model="m", question=q, prompt_tokens=prompt)))
    stats = fusion_token_stats(calls, banks)
    assert stats["answer_tokens_histogram"] == {"5": 2, "7": 1}
    assert stats["answer_tokens_histogram_by_kind"] == {"fuse": {"10": 1}, "refine": {"9": 1, "11": 1},
                                                        "synthesise": {"9": 1, "10": 1}}
    assert stats["answer_tokens_histogram_by_model"] == {"m": {"direct": {"5": 2, "7": 1}, "fuse": {"10": 1},
                                                               "refine": {"9": 1, "11": 1},
                                                               "synthesise": {"9": 1, "10": 1}}}
    assert stats["fusion_overhead_tokens_per_input"] == pytest.approx(4.0)
    assert stats["fusion_overhead_tokens_by_kind"] == pytest.approx({"fuse": 25.0, "refine": 30.0,
                                                                     "synthesise": 40.0})
    tm = TokenModel.from_stats(stats)
    assert tm.prompt_tokens(TaskSpec("t", "math", 21, 6), "refine", ["direct"] * 3) == round(21 + 3 * 17 / 3 + 30 + 12)
