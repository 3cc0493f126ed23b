"""GraphExecutor and RealEvaluator on a deterministic fake backend (answers derived from the prompt)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_executor_fakes import FakeBackend, question_numbers
from tts_sim.core.evaluation import Evaluator
from tts_sim.core.flops import graph_flops
from tts_sim.core.graph import Graph, Node, Role
from tts_sim.core.prompts import DEFAULT_TEMPLATES, DIRECT, FUSE, REFINE, SYNTHESISE, node_messages, prompt_kind
from tts_sim.errors import ConfigError
from tts_sim.real.evaluator import RealEvaluator, latency_stats
from tts_sim.real.executor import GraphExecutor, request_seed
from tts_sim.tasks import TaskSpec
from tts_sim.tasks.simple import addition_questions

QUESTIONS = addition_questions(12, seed=3)
ADD = TaskSpec("add", "math", 40, 12)
A, B = "llama-3.2-1b", "gemma-3-1b"


def _graph(nodes, edges, output="out"):
    return Graph.build([Node(i, Role(r), m) for i, r, m in nodes], edges, output)


DIAMOND = _graph([("a", "assistant", A), ("b", "assistant", A), ("c", "assistant", B), ("f", "fuser", A),
                  ("out", "assistant", B)],
                 [("a", "f"), ("b", "f"), ("c", "out"), ("f", "out")])


def test_prompts_contain_predecessor_replies_and_the_right_template():
    backend = FakeBackend(offsets={A: 1})
    run = GraphExecutor(backend, "add").run(DIAMOND, QUESTIONS[0])
    a, b = question_numbers(QUESTIONS[0].prompt)
    trace = run.trace
    assert trace["a"].text == trace["b"].text == f"Adding the numbers, the answer is {a + b + 1}"
    assert trace["c"].answer == str(a + b)
    requests = {m: reqs for m, reqs in backend.calls}
    prompts = [r.messages[-1]["content"] for _, reqs in backend.calls for r in reqs]
    assert len(prompts) == 5
    [fuser_prompt] = [p for p in prompts if "Review, condense and merge" in p]
    assert fuser_prompt.count(trace["a"].text) == 2  # both of its predecessors' replies
    assert QUESTIONS[0].prompt in fuser_prompt and "Answer with the number only." in fuser_prompt
    out_prompt = prompts[-1]
    assert trace["c"].text in out_prompt and trace["f"].text in out_prompt and "Synthesise" in out_prompt
    assert [trace[n].kind for n in ("a", "c", "f", "out")] == [DIRECT, DIRECT, FUSE, SYNTHESISE]
    # the output's majority of (f: a+b+1, c: a+b) is a tie -> smallest -> correct
    assert run.answer == str(a + b) and run.correct
    assert set(requests) == {A, B}


def test_levels_run_in_order_and_same_model_nodes_share_one_call():
    backend = FakeBackend()
    run = GraphExecutor(backend, "add", parallel_models=False).run(DIAMOND, QUESTIONS[1])
    calls = [(m, len(reqs)) for m, reqs in backend.calls]
    # level 0: a, b (model A, one batch of 2) and c (model B); level 1: f; level 2: out
    assert calls == [(A, 2), (B, 1), (A, 1), (B, 1)]
    t = run.trace
    assert (t["a"].batch, t["b"].batch, t["c"].batch, t["f"].batch) == (2, 2, 1, 1)
    assert [t[n].level for n in ("a", "b", "c", "f", "out")] == [0, 0, 0, 1, 2]
    assert t["a"].end_s <= t["f"].start_s <= t["f"].end_s <= t["out"].start_s <= t["out"].end_s <= run.wall_s
    assert [n.node for n in run.nodes] == list(DIAMOND.executed)


def test_different_models_of_a_level_run_concurrently():
    barrier = threading.Barrier(2, timeout=5)
    level0 = {A, B}

    def meet(model, requests):
        if model in level0 and requests[0].messages[-1]["content"].startswith("What is"):
            level0.discard(model)
            barrier.wait()  # both level-0 calls must be in flight at once, else this times out

    backend = FakeBackend(on_call=meet)
    GraphExecutor(backend, "add", parallel_models=True).run(DIAMOND, QUESTIONS[2])
    assert not level0


def test_models_run_at_once_only_where_the_backend_says_they_may():
    assert GraphExecutor(FakeBackend(), "add").parallel_models  # a backend that does not say: a server
    cpu = FakeBackend()
    cpu.concurrent_models = False  # type: ignore[attr-defined]  # what the ONNX backend says on the CPU
    assert not GraphExecutor(cpu, "add").parallel_models
    assert GraphExecutor(cpu, "add", parallel_models=True).parallel_models  # an explicit choice wins


def test_onnx_backend_keeps_cpu_models_apart_and_says_how_it_batches():
    from backends.onnxruntime.backend import OnnxRuntimeBackend

    assert not OnnxRuntimeBackend(device="cpu").concurrent_models
    assert OnnxRuntimeBackend(device="cuda").concurrent_models
    # the genai engine batches equal prompt lengths only; the optimum export pads
    assert OnnxRuntimeBackend(engine="genai").equal_prompt_batches
    assert not OnnxRuntimeBackend(engine="onnx").equal_prompt_batches


def test_tokens_and_timings_are_recorded_per_node():
    backend = FakeBackend(prefill_per_token=0.5, decode_per_token=2.0)
    run = GraphExecutor(backend, "add").run(DIAMOND, QUESTIONS[0])
    for t in run.nodes:
        assert t.prompt_tokens > 0 and t.completion_tokens == len(t.text.split())
        assert t.prefill_s == pytest.approx(0.5 * t.prompt_tokens)
        assert t.decode_s == pytest.approx(2.0 * t.completion_tokens)
    t = run.trace
    assert t["out"].prompt_tokens > t["c"].prompt_tokens + t["f"].completion_tokens  # holds both replies
    assert run.prompt_tokens == sum(x.prompt_tokens for x in run.nodes)


def test_dead_nodes_are_not_executed():
    g = _graph([("a", "assistant", A), ("dead", "assistant", B), ("dead2", "assistant", B), ("out", "assistant", A)],
               [("a", "out"), ("dead", "dead2")])
    backend = FakeBackend()
    run = GraphExecutor(backend, "add").run(g, QUESTIONS[0])
    assert {t.node for t in run.nodes} == {"a", "out"}
    assert all(m == A for m, _ in backend.calls)


def test_model_map_routes_to_backend_names_and_seeds_differ_per_node():
    backend = FakeBackend()
    g = _graph([("x", "assistant", A), ("y", "assistant", A), ("out", "fuser", B)], [("x", "out"), ("y", "out")])
    run = GraphExecutor(backend, "add", model_map={A: "real-small", B: "real-small"}, seed=7).run(g, QUESTIONS[0])
    assert {m for m, _ in backend.calls} == {"real-small"}
    assert run.trace["out"].backend_model == "real-small" and run.trace["out"].model == B
    seeds = [r.seed for _, reqs in backend.calls for r in reqs]
    assert seeds == [request_seed(7, QUESTIONS[0].id, n) for n in ("x", "y", "out")]
    assert len(set(seeds)) == 3


def test_a_single_node_uses_the_direct_prompt_and_grades():
    backend = FakeBackend(offsets={A: 2})
    g = Graph.build([Node("out", Role.ASSISTANT, A)], [], "out")
    run = GraphExecutor(backend, "add").run(g, QUESTIONS[4])
    assert run.trace["out"].kind == DIRECT and not run.correct
    assert int(run.answer) == sum(question_numbers(QUESTIONS[4].prompt)) + 2


def test_backend_returning_too_few_completions_is_an_error():
    class Short(FakeBackend):
        def generate(self, model, requests):
            return super().generate(model, requests)[:-1]

    with pytest.raises(ConfigError, match="returned 1 completions for 2 requests"):
        GraphExecutor(Short(), "add").run(DIAMOND, QUESTIONS[0])


@pytest.mark.parametrize(("role", "preds", "out", "kind"), [("assistant", 0, True, DIRECT), ("fuser", 2, False, FUSE),
                                                           ("fuser", 1, True, FUSE), ("assistant", 1, False, REFINE),
                                                           ("assistant", 3, True, SYNTHESISE)])
def test_prompt_kind(role, preds, out, kind):
    assert prompt_kind(role, preds, out) == kind


def test_node_messages_need_matching_responses():
    with pytest.raises(ConfigError):
        node_messages(DEFAULT_TEMPLATES, DIRECT, "q", "i", ["r"])
    with pytest.raises(ConfigError):
        node_messages(DEFAULT_TEMPLATES, REFINE, "q", "i", [])
    msgs = node_messages(DEFAULT_TEMPLATES, REFINE, "What is {x}?", "Say it.", ["one {a}", ""])
    assert "What is {x}?" in msgs[1]["content"] and "one {a}" in msgs[1]["content"]
    assert "Response 2:\n(no response)" in msgs[1]["content"] and "2 response(s)" in msgs[1]["content"]


# ----- RealEvaluator ------------------------------------------------------------------------------
def test_real_evaluator_scores_and_measures():
    backend = FakeBackend(offsets={A: 1})
    ev = RealEvaluator("add", backend, questions=QUESTIONS, spec=ADD, model_map={B: A}, max_new_tokens=64)
    assert isinstance(ev, Evaluator) and ev.n_questions == 12
    g = Graph.build([Node("out", Role.ASSISTANT, B)], [], "out")
    result = ev.evaluate(g, [0, 3, 5])
    assert result.source == "real" and result.accuracy == 0.0  # B runs as A, which is off by one
    assert result.per_question == (0.0, 0.0, 0.0) and result.questions == (0, 3, 5)
    assert result.flops == pytest.approx(graph_flops(g, ADD))
    assert result.latency.predictor == "measured" and result.latency.cluster == "fake-device"
    assert result.latency.n_queries == 3 and result.latency.p95_s >= result.latency.p50_s > 0
    assert result.meta["model_map"] == {B: A} and result.meta["backend"][A]["provider"] == "FakeProvider"
    assert result.meta["calls"] == 3 and result.meta["mean_completion_tokens"] == 7  # 7 words
    correct = RealEvaluator("add", FakeBackend(), questions=QUESTIONS, spec=ADD).evaluate(g)
    assert correct.accuracy == 1.0 and correct.n_questions == 12 and correct.ci_low > 0.7
    assert len(ev.runs) == 3


def test_real_evaluator_rejects_bad_questions_and_unknown_task_spec():
    ev = RealEvaluator("add", FakeBackend(), questions=QUESTIONS, spec=ADD)
    with pytest.raises(ConfigError, match="outside 0..11"):
        ev.evaluate(DIAMOND, [12])
    with pytest.raises(ConfigError):
        RealEvaluator("no-such-task", FakeBackend(), questions=QUESTIONS)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=1, max_size=40))
def test_latency_stats_order_and_mean(values):
    s = latency_stats(values, "cpu")
    assert min(values) - 1e-9 <= s.p50_s <= s.p95_s <= s.p99_s <= max(values) + 1e-9
    assert s.mean_s == pytest.approx(sum(values) / len(values))
    assert s.throughput_qps == pytest.approx(len(values) / sum(values))


def test_a_batch_of_questions_shares_one_call_per_level_and_model_and_answers_as_one_at_a_time():
    backend = FakeBackend(offsets={A: 1}, slips=(0, 2, 0, 5))
    executor = GraphExecutor(backend, "add", seed=4)
    alone = [executor.run(DIAMOND, q) for q in QUESTIONS[:5]]
    backend.calls.clear()
    together = executor.run_batch(DIAMOND, QUESTIONS[:5])
    # level 0: a, b (A) and c (B) of 5 questions; level 1: f (A); level 2: out (B)
    assert sorted((m, len(reqs)) for m, reqs in backend.calls) == sorted([(A, 10), (B, 5), (A, 5), (B, 5)])
    for one, batched in zip(alone, together, strict=True):
        assert batched.question == one.question and batched.answer == one.answer and batched.correct == one.correct
        assert [t.text for t in batched.nodes] == [t.text for t in one.nodes]
        assert batched.wall_s == batched.trace["out"].end_s > 0
    assert {t.batch for r in together for t in r.nodes if t.node in ("a", "b")} == {10}
    assert len({r.wall_s for r in together}) == 1  # the output nodes of all questions returned together
