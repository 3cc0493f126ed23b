"""Profiling: answer banks and fusion records on a fake backend; latency tables on a tiny random ONNX model;
the Profile they make loads back and feeds the simulator (TablePredictor, QualityModel)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_executor_fakes import FakeBackend, question_numbers
from tts_sim.core.backend import BackendInfo
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.core.profile import Profile
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.real.executor import GraphExecutor
from tts_sim.real.profiling import (
    AnswerIndex,
    ProfileConfig,
    collect_answer_banks,
    device_key,
    fusion_from_banks,
    fusion_from_graphs,
    measure_latency_table,
    measure_switch_costs,
    measured_task_spec,
    random_small_graph,
    run_profile,
)
from tts_sim.sim.cluster import TablePredictor, fit_roofline, get_device
from tts_sim.sim.quality import QualityModel
from tts_sim.tasks.graders import get_grader
from tts_sim.tasks.simple import addition_questions

QS = addition_questions(10, seed=5)
GRADER = get_grader("add")
SMALL, BIG = "smollm2-135m", "gemma-3-270m"
SLIPS = (0, 0, 1, -1, 0, 2, 0, 1)  # 50% of direct answers are right; the rest share three wrong answers


def _fake():
    return FakeBackend(offsets={BIG: 0, SMALL: 0}, slips=SLIPS)


# ----- answer ids -------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.none(), st.integers(-3, 25))), max_size=40))
def test_answer_ids_correct_is_zero_and_wrong_ids_are_stable(answers):
    index = AnswerIndex(GRADER, QS[:3])
    seen: dict[tuple[int, object], int] = {}
    for q, value in answers:
        extracted = None if value is None else str(value)
        i = index.id_of(q, extracted)
        correct = value is not None and str(value) == QS[q].reference
        assert (i == 0) == correct
        assert seen.setdefault((q, value), i) == i  # the same answer always gets the same id
    for q in range(3):
        wrong = index.wrong_answers(q)
        assert sorted(wrong.values()) == list(range(1, len(wrong) + 1))  # dense, numbered from 1


def test_banks_count_samples_and_share_wrong_ids_across_models():
    backend = _fake()
    banks = collect_answer_banks(backend, {SMALL: SMALL, BIG: "served-big"}, QS, GRADER, samples=8, batch=5,
                                 max_new_tokens=32, seed=1)
    counts = banks.counts()
    assert set(counts) == {SMALL, BIG}
    for model in counts:
        assert len(counts[model]) == len(QS)
        assert all(sum(row) == 8 for row in counts[model])
    assert {m for m, _ in backend.calls} == {SMALL, "served-big"}
    assert max(len(reqs) for _, reqs in backend.calls) == 5  # batched
    # recompute each sample's id from its own text: equal answers -> equal id across models
    for s in banks.samples:
        a, b = question_numbers(QS[s.question].prompt)
        value = int(s.answer)
        assert (s.answer_id == 0) == (value == a + b)
    by_answer: dict[tuple[int, str], set[int]] = {}
    for s in banks.samples:
        by_answer.setdefault((s.question, s.answer), set()).add(s.answer_id)
    assert all(len(ids) == 1 for ids in by_answer.values())
    acc = banks.accuracy(SMALL)
    assert 0.2 < acc < 0.8
    stats = banks.token_stats()
    assert stats["samples"] == 160 and stats["answer_tokens"] == 7 and stats["prompt_tokens"] > 10


def test_banks_refuse_greedy_multi_sampling_and_empty_input():
    with pytest.raises(ConfigError, match="temperature"):
        collect_answer_banks(_fake(), {SMALL: SMALL}, QS, GRADER, samples=3, temperature=0.0)
    with pytest.raises(ConfigError, match="no questions"):
        collect_answer_banks(_fake(), {SMALL: SMALL}, [], GRADER, samples=1)


def test_fusion_records_follow_the_replies_they_saw():
    backend = _fake()
    banks = collect_answer_banks(backend, {SMALL: SMALL}, QS, GRADER, samples=6, seed=2)
    calls = fusion_from_banks(backend, banks, {SMALL: SMALL}, 30, seed=3)
    assert len(calls) == 30
    kinds = {c.kind for c in calls}
    assert kinds <= {"refine", "fuse", "synthesise"} and len(kinds) >= 2
    for c in calls:
        r = c.record
        assert 1 <= len(r.inputs) <= 4 and r.model == SMALL and r.role in ("assistant", "fuser")
        # the fake answers the inputs' majority (ties: smallest value); check the recorded ids agree
        values = [int(GRADER.extract(t)) for t in c.input_texts]
        best = max(values.count(v) for v in values)
        expected = min(v for v in values if values.count(v) == best)
        assert r.output == banks.index.id_of(r.question, str(expected))
        assert list(r.inputs) == [banks.index.id_of(r.question, str(v)) for v in values]
        assert r.prompt_tokens > 0


def test_fusion_from_random_graphs_records_every_node_with_inputs():
    backend = _fake()
    banks = collect_answer_banks(backend, {SMALL: SMALL, BIG: BIG}, QS, GRADER, samples=2)
    ex = GraphExecutor(backend, "add", max_new_tokens=16)
    calls = fusion_from_graphs(ex, banks, [SMALL, BIG], n_graphs=6, questions_per_graph=2, seed=4)
    assert calls and all(c.record.inputs for c in calls)
    rng = np.random.default_rng(0)
    for _ in range(30):
        g = random_small_graph(rng, [SMALL, BIG])
        assert g.output == "out" and set(g.executed) == {n.id for n in g.nodes}


def test_fake_profile_round_trip_and_quality_model_fit(tmp_path):
    cfg = ProfileConfig(task="add", models={SMALL: SMALL, BIG: BIG}, questions=10, samples=6, fusion_records=60,
                        max_new_tokens=32, latency=False, seed=7)
    run = run_profile(_fake(), cfg, questions=QS)
    path = tmp_path / "p.json.gz"
    run.profile.save(path)
    loaded = Profile.load(path)
    tp = loaded.task("add")
    assert tp.n_questions == 10 and tp.question_ids == [q.id for q in QS]
    assert len(tp.fusion_records) == 60 and set(tp.answer_banks) == {SMALL, BIG}
    meta = loaded.metadata
    assert meta["measured"] and meta["backend"] == "fake" and meta["provider"] == "FakeProvider"
    assert meta["models"][SMALL]["bank_accuracy"] == pytest.approx(run.banks.accuracy(SMALL))
    stats = meta["token_stats"]["add"]
    assert stats["answer_tokens_histogram"] == {"7": 120}  # 10 questions x 6 samples x 2 models, 7 words each
    assert 20 < stats["fusion_overhead_tokens"] < 60  # the refine/fuse/synthesise template words
    spec = measured_task_spec(loaded, "add")
    assert spec.name == "add" and spec.answer_tokens == 7 and spec.prompt_tokens == pytest.approx(
        meta["token_stats"]["add"]["prompt_tokens"])
    qm = QualityModel.from_profile(loaded, spec)
    assert qm.params.n_records == 60 and math.isfinite(qm.log_likelihood)
    # the fake adopts its inputs' majority: the fitted pull towards agreeing inputs must be clearly positive
    skill = float(qm.answers.skill[qm.answers.index(SMALL)])
    assert all(float(qm.params.beta(role, skill)) > 0.5 for role in range(3))


def test_measured_task_spec_needs_token_stats():
    with pytest.raises(ProfileError, match="no token statistics"):
        measured_task_spec(Profile({"label": "x"}), "add")


@pytest.mark.parametrize(("provider", "device", "key"), [
    ("CPUExecutionProvider", "AMD EPYC 9R14", "cpu"), ("CUDAExecutionProvider", "NVIDIA H100 80GB HBM3", "H100"),
    ("CUDAExecutionProvider", "NVIDIA A100-SXM4-80GB", "A100-80GB"), ("CUDAExecutionProvider", "NVIDIA L4", "L4")])
def test_device_key(provider, device, key):
    assert device_key(BackendInfo("onnxruntime", "1", provider, device, "m")) == key


def test_device_key_unknown_gpu():
    with pytest.raises(ConfigError, match="not in the device catalogue"):
        device_key(BackendInfo("onnxruntime", "1", "CUDAExecutionProvider", "NVIDIA L40S", "m"))


# ----- latency tables on a tiny real ONNX model ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("optimum.exporters.onnx")
    from tests.test_backend_onnx import _build
    from tts_sim.backends.onnxruntime import prepare_model

    root = tmp_path_factory.mktemp("prof_tiny")
    _build("llama", root / "hf")
    return prepare_model(str(root / "hf"), "fp32", cache_dir=root / "cache", progress=lambda _: None)


def test_latency_table_from_tiny_onnx_feeds_the_table_predictor(tiny_llama, tmp_path):
    from tts_sim.backends.onnxruntime import OnnxEngine

    engine = OnnxEngine(tiny_llama, threads=1)
    table = measure_latency_table(engine, SMALL, device="cpu", backend="onnxruntime", provider=engine.provider,
                                  prompt_lengths=(8, 32, 64), batch_sizes=(1, 2), contexts=(16, 64), repeats=2,
                                  steps=3)
    assert [(n, b) for n, b, _ in table.prefill] == [(8, 1), (32, 1), (64, 1), (8, 2), (32, 2), (64, 2)]
    assert [(c, b) for c, b, _ in table.decode] == [(16, 1), (64, 1), (16, 2), (64, 2)]
    assert all(s > 0 for *_, s in table.prefill + table.decode)
    profile = Profile({"label": "tiny"}, latency=[table])
    path = tmp_path / "lat.json"
    profile.save(path)
    loaded = Profile.load(path)
    pred = TablePredictor(loaded.latency, fit_roofline(loaded.latency))
    spec, cpu = DEFAULT_CATALOG[SMALL], get_device("cpu")
    assert pred.source(spec, cpu) == "profile-table"
    for n, b, s in table.prefill:
        assert pred.prefill_s(spec, cpu, n, b) == pytest.approx(s)
    for c, b, s in table.decode:
        assert pred.decode_step_s(spec, cpu, c, b) == pytest.approx(s)
    mid = pred.prefill_s(spec, cpu, 16, 1)  # interpolated between measured rows
    lo, hi = sorted((table.prefill[0][2], table.prefill[1][2]))
    assert lo <= mid <= hi


def test_run_profile_on_the_onnx_backend_and_cli(tiny_llama, tmp_path, monkeypatch):
    from tts_sim.backends.onnxruntime import OnnxRuntimeBackend
    from tts_sim.cli import main
    from tts_sim.sim.evaluator import SimulatedEvaluator
    from tts_sim.tasks import TASKS

    backend = OnnxRuntimeBackend(threads=1, max_batch=4, progress=lambda _: None)
    cfg = ProfileConfig(task="add", models={SMALL: str(tiny_llama)}, questions=3, samples=2, fusion_records=3,
                        max_new_tokens=6, prompt_lengths=(8, 32), batch_sizes=(1, 2), contexts=(16,), repeats=1,
                        steps=2)
    run = run_profile(backend, cfg)
    p = run.profile
    assert p.metadata["provider"] == "CPUExecutionProvider" and p.metadata["backend"] == "onnxruntime"
    assert p.latency[0].device == "cpu" and p.latency[0].model == SMALL and len(p.latency[0].prefill) == 4
    assert p.task("add").n_questions == 3 and sum(p.task("add").answer_banks[SMALL][0]) == 2
    spec = measured_task_spec(p, "add")
    assert spec.answer_tokens <= 6
    monkeypatch.setitem(TASKS._items, "add", spec)  # SimulatedEvaluator looks the task up by name
    ev = SimulatedEvaluator(spec, profile=p, cluster="cpu", n_queries=5)
    from tts_sim.core.presets import single

    result = ev.evaluate(single(SMALL))
    assert result.latency.predictor == "profile-table" and result.latency.mean_s > 0

    out = tmp_path / "cli.json"
    code = main(["profile", "--model", f"{SMALL}={tiny_llama}", "--task", "add", "--questions", "2", "--samples", "2",
                 "--fusion-records", "2", "--max-new-tokens", "4", "--prompt-lengths", "8,16", "--batch-sizes", "1",
                 "--contexts", "8", "--repeats", "1", "--steps", "1", "--threads", "1", "-o", str(out), "--json"])
    assert code == 0
    loaded = Profile.load(out)
    assert loaded.metadata["config"]["samples"] == 2 and len(loaded.task("add").fusion_records) == 2
    assert loaded.latency[0].prefill[0][:2] == (8, 1)


def test_profile_cli_bad_input(tmp_path, capsys):
    from tts_sim.cli import main

    assert main(["profile", "--model", "no-such-model", "--task", "add", "-o", str(tmp_path / "x.json")]) == 2
    assert "not in the model catalog" in capsys.readouterr().err
    assert main(["profile", "--model", SMALL, "--backend", "openai", "--task", "add"]) == 2
    assert "--no-latency" in capsys.readouterr().err


class _Timer:
    """A deterministic StepTimer: prefill 1 ms per token in the batch, decode 10 ms + 1 us per cached position."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def time_prefill(self, prompt_len: int, batch: int = 1, repeats: int = 3) -> float:
        self.calls.append(("prefill", prompt_len, batch, repeats))
        return 1e-3 * prompt_len * batch

    def time_decode(self, context: int, batch: int = 1, steps: int = 8, temperature: float = 0.0,
                    top_p: float = 1.0) -> float:
        self.calls.append(("decode", context, batch, steps))
        self.sampling = (temperature, top_p)
        return 1e-2 + 1e-6 * context * batch


def test_latency_grid_and_batch_token_cap():
    timer = _Timer()
    table = measure_latency_table(timer, SMALL, device="cpu", backend="x", prompt_lengths=(64, 16, 256, 16),
                                  batch_sizes=(4, 1), contexts=(32,), repeats=5, steps=2, max_batch_tokens=256)
    assert [(n, b) for n, b, _ in table.prefill] == [(16, 1), (64, 1), (256, 1), (16, 4), (64, 4)]
    assert all(s == pytest.approx(1e-3 * n * b) for n, b, s in table.prefill)
    assert table.decode == [(32, 1, pytest.approx(0.010032)), (32, 4, pytest.approx(0.010128))]
    assert ("prefill", 16, 1, 5) in timer.calls and ("decode", 32, 4, 2) in timer.calls
    with pytest.raises(ConfigError, match="positive"):
        measure_latency_table(timer, SMALL, device="cpu", backend="x", prompt_lengths=(0, 8))


def test_each_row_keeps_its_fastest_pass():
    class Noisy(_Timer):
        """Another job slows the first pass's long prefills and the second pass's decode rows down."""

        def time_prefill(self, prompt_len: int, batch: int = 1, repeats: int = 3) -> float:
            first = sum(c[0] == "prefill" for c in self.calls) < 2
            return super().time_prefill(prompt_len, batch, repeats) * (3.0 if first and prompt_len == 64 else 1.0)

        def time_decode(self, context: int, batch: int = 1, steps: int = 8, temperature: float = 0.0,
                        top_p: float = 1.0) -> float:
            late = sum(c[0] == "decode" for c in self.calls) >= 1
            return super().time_decode(context, batch, steps, temperature, top_p) * (2.0 if late else 1.0)

    timer = Noisy()
    table = measure_latency_table(timer, SMALL, device="cpu", backend="x", prompt_lengths=(16, 64), batch_sizes=(1,),
                                  contexts=(32,), passes=2, temperature=0.7, top_p=0.9)
    assert timer.sampling == (0.7, 0.9)  # decode steps choose tokens as the profile's calls do
    assert [c[:2] for c in timer.calls] == [("prefill", 16), ("prefill", 64), ("decode", 32)] * 2  # grid, then again
    assert table.prefill == [(16, 1, pytest.approx(0.016)), (64, 1, pytest.approx(0.064))]
    assert table.decode == [(32, 1, pytest.approx(0.010032))]
    with pytest.raises(ConfigError, match="passes"):
        measure_latency_table(timer, SMALL, device="cpu", backend="x", passes=0)


def test_step_timer_needs_an_engine():
    from tts_sim.real.profiling import step_timer

    with pytest.raises(ConfigError, match="cannot time single"):
        step_timer(FakeBackend(), SMALL)

    class WithEngine(FakeBackend):
        def engine(self, model):
            return _Timer()

    assert isinstance(step_timer(WithEngine(), SMALL), _Timer)


class _Switching(FakeBackend):
    """Models share one device (``concurrent_models`` False); a call right after another model's call
    sleeps ``extra`` s longer; ``engine`` times steps with ``_Timer``."""

    concurrent_models = False

    def __init__(self, extra: float) -> None:
        super().__init__()
        self.extra, self.last = extra, None

    def generate(self, model, requests):
        time.sleep(0.002 + (self.extra if self.last not in (None, model) else 0.0))
        self.last = model
        return super().generate(model, requests)

    def engine(self, model):
        return _Timer()

    def info(self, model):
        return BackendInfo("fake", "1", "CPUExecutionProvider", "cpu", "")


def test_switch_costs_are_measured_between_models_that_share_a_device():
    backend = _Switching(extra=0.02)
    costs = measure_switch_costs(backend, {SMALL: "s", BIG: "b"}, prompt="Repeat: a b c", rounds=4)
    assert set(costs) == {SMALL, BIG} and all(0.015 <= c <= 0.035 for c in costs.values())
    assert measure_switch_costs(backend, {SMALL: "s"}, prompt="x") == {SMALL: 0.0}  # one model: nothing to switch


def test_a_profile_s_tables_carry_the_switch_cost_and_a_resume_keeps_it(tmp_path):
    cfg = ProfileConfig(task="add", models={SMALL: SMALL, BIG: BIG}, banks=False, prompt_lengths=(8,),
                        batch_sizes=(1,), contexts=(16,), repeats=1, steps=1, passes=1)
    journal = tmp_path / "j.jsonl"
    backend = _Switching(extra=0.02)
    tables = run_profile(backend, cfg, journal=journal).profile.latency
    assert [t.model for t in tables] == [SMALL, BIG] and all(0.015 <= t.switch_s <= 0.035 for t in tables)
    calls = len(backend.calls)
    again = _Switching(extra=0.0)  # a resume replays the journal: nothing is measured again
    assert run_profile(again, cfg, journal=journal).profile.latency == tables and not again.calls
    saved = tmp_path / "p.json"
    Profile({"label": "x"}, latency=tables).save(saved)
    assert [t.switch_s for t in Profile.load(saved).latency] == [t.switch_s for t in tables]
    shared = FakeBackend()  # a backend that serves its models side by side: no switch cost to measure
    shared.engine = lambda model: _Timer()  # type: ignore[attr-defined]
    shared.info = lambda model: BackendInfo("fake", "1", "CPUExecutionProvider", "cpu", "")  # type: ignore
    assert all(t.switch_s == 0.0 for t in run_profile(shared, cfg).profile.latency) and calls > 0
