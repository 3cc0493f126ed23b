"""Profiling at scale on a fake backend: the journal (kill and resume without losing or duplicating a
call, byte-identical profile), batch-size independence, the progress bar, the diverse fusion graphs
and graders' stop sequences."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.test_executor_fakes import FakeBackend
from tts_sim.core.backend import BackendInfo
from tts_sim.core.graph import Role
from tts_sim.core.profile import Profile
from tts_sim.errors import ConfigError
from tts_sim.real.executor import GraphExecutor
from tts_sim.real.profiling import ProfileConfig, collect_answer_banks, fusion_from_banks, run_profile
from tts_sim.real.profiling.fusion import plan_deep_graphs, plan_fusion_graphs
from tts_sim.real.profiling.journal import CallJournal
from tts_sim.tasks.graders import get_grader, grader_stop
from tts_sim.tasks.simple import addition_questions

QS = addition_questions(12, seed=9)
GRADER = get_grader("add")
SMALL, BIG = "smollm2-135m", "gemma-3-270m"
SLIPS = (0, 0, 1, -1, 0, 2, 0, 1, 3, -2)


class Killed(RuntimeError):
    pass


def _fake(fail_after: int | None = None) -> FakeBackend:
    """The fake backend; with ``fail_after`` its ``generate`` raises on call number ``fail_after + 1``."""
    seen = [0]

    def on_call(model, requests):
        seen[0] += 1
        if fail_after is not None and seen[0] > fail_after:
            raise Killed(f"killed at generate call {seen[0]}")

    return FakeBackend(offsets={SMALL: 0, BIG: 0}, slips=SLIPS, on_call=on_call)


def _config(**kw) -> ProfileConfig:
    base = dict(task="add", models={SMALL: SMALL, BIG: BIG}, questions=len(QS), samples=5, fusion_records=70,
                max_new_tokens=32, latency=False, seed=3, batch=16)
    return ProfileConfig(**{**base, **kw})


def _comparable(profile: Profile) -> str:
    d = json.loads(json.dumps(profile.to_dict()))  # a copy: to_dict shares the metadata
    d.pop("checksum", None)
    for key in ("created", "timings"):
        d["metadata"].pop(key)
    d["metadata"]["config"].pop("batch")
    return json.dumps(d, sort_keys=True)


def _journal_keys(path) -> list[str]:
    return [c[0] for line in path.read_text().splitlines()[1:] for c in json.loads(line)["calls"]]


def _requests(backend: FakeBackend) -> int:
    return sum(len(reqs) for _, reqs in backend.calls)


TOTAL = 2 * len(QS) * 5 + 70  # bank calls + fusion calls


# generate calls at batch 5: banks 1-24, fusion level 1 25-36, level 2 37-40
@pytest.mark.parametrize("kill_after", [3, 28, 37])
def test_killed_run_resumes_to_the_same_profile_without_repeating_a_call(tmp_path, kill_after):
    straight = _fake()
    reference = run_profile(straight, _config(), questions=QS, journal=tmp_path / "a.jsonl").profile
    assert _requests(straight) == TOTAL

    journal = tmp_path / "b.jsonl"
    first = _fake(fail_after=kill_after)
    with pytest.raises(Killed):
        run_profile(first, _config(batch=5), questions=QS, journal=journal)
    done = len(_journal_keys(journal))
    assert done == _requests(first) - len(first.calls[-1][1]) > 0  # every finished batch, not the one that raised
    with journal.open("a") as f:
        f.write('{"calls": [["bank/x/0/0", "torn')  # a kill in the middle of writing a line
    second = _fake()
    resumed = run_profile(second, _config(batch=7), questions=QS, journal=journal).profile
    assert _requests(second) == TOTAL - done  # nothing journaled is sent again
    assert _comparable(resumed) == _comparable(reference)  # other batch sizes, a kill: the same profile

    keys = _journal_keys(journal)
    assert len(keys) == TOTAL and len(set(keys)) == TOTAL  # no call lost, none twice
    again = _fake()
    replayed = run_profile(again, _config(), questions=QS, journal=journal).profile
    assert again.calls == [] and _comparable(replayed) == _comparable(reference)


def test_journal_of_another_configuration_is_refused(tmp_path):
    journal = tmp_path / "j.jsonl"
    run_profile(_fake(), _config(fusion_records=4), questions=QS, journal=journal)
    with pytest.raises(ConfigError, match=r"different profiling run \(differs in: fusion_records, seed\)"):
        run_profile(_fake(), _config(fusion_records=5, seed=4), questions=QS, journal=journal)
    with pytest.raises(ConfigError, match="differs in: question_ids"):
        run_profile(_fake(), _config(fusion_records=4, questions=11), questions=QS[:11], journal=journal)
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(ConfigError, match="not a tts-sim profiling journal"):
        CallJournal(tmp_path / "junk.jsonl", {})


@dataclass
class _FakeConfig:
    def build(self):
        return _fake()


def test_cli_resumes_from_the_default_journal_and_refuses_a_mismatch(tmp_path, monkeypatch, capsys):
    from tts_sim.backends import BACKENDS
    from tts_sim.cli import main

    monkeypatch.setitem(BACKENDS._items, "fake", _FakeConfig)
    out = tmp_path / "p.json.gz"
    args = ["profile", "--model", SMALL, "--model", BIG, "--task", "add", "--questions", "6", "--samples", "2",
            "--fusion-records", "10", "--no-latency", "--backend", "fake", "-o", str(out), "--json"]
    assert main(args) == 0
    journal = tmp_path / "p.journal.jsonl"
    assert journal.exists() and len(Profile.load(out).task("add").fusion_records) == 10
    err = capsys.readouterr().err
    assert "34/34" in err and "call" in err  # the progress bar: 6 x 2 x 2 bank calls + 10 fusion calls
    assert main(args) == 0
    assert "replayed 34 calls" in capsys.readouterr().err
    assert main([*args, "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "differs in: seed" in err and len(err.splitlines()) == 1


def test_progress_bar_counts_every_planned_call_once(tmp_path):
    class Bar:
        def __init__(self, total, done):
            self.total, self.n = total, done
            made.append(self)

        def update(self, n=1):
            self.n += n

    made: list[Bar] = []
    journal = tmp_path / "j.jsonl"
    with pytest.raises(Killed):
        run_profile(_fake(fail_after=4), _config(batch=6), questions=QS, journal=journal, bar=Bar)
    run_profile(_fake(), _config(), questions=QS, journal=journal, bar=Bar)
    assert [b.total for b in made] == [TOTAL, TOTAL]
    assert made[0].n == 4 * 6 and made[1].n == TOTAL


def test_call_bar_shows_rate_and_eta(capsys):
    from tts_sim.cli.profile import call_bar, journal_path

    bar = call_bar(10, 4)
    assert bar.mininterval == 30.0  # stderr is not a terminal here: redrawn at a log file's pace
    bar.update(3)
    bar.close()
    err = capsys.readouterr().err
    assert "7/10" in err and "call/s" in err and "<" in err  # tqdm: [elapsed<remaining, rate]
    assert journal_path(__import__("pathlib").Path("d/p.json.gz")).as_posix() == "d/p.journal.jsonl"


def test_fusion_graphs_are_diverse_and_exact():
    banks = collect_answer_banks(_fake(), {SMALL: SMALL, BIG: BIG}, QS, GRADER, samples=4, seed=1)
    graphs = plan_fusion_graphs(banks, [SMALL, BIG], 2000, seed=5)
    assert sum(len(g.graph.nodes) - len(g.sources) for g in graphs) == 2000
    widths, depths, degrees = Counter(), Counter(), Counter()
    roles_by_level: set[tuple[int, str]] = set()
    mixed = 0
    for g in graphs:
        graph = g.graph
        graph.validate(catalog=None)
        assert [n for n in graph.nodes if not graph.predecessors(n.id)] == list(graph.nodes[:len(g.sources)])
        assert all(banks.samples[j].question == g.question for j in g.sources)
        widths[graph.width] += 1
        depths[graph.depth] += 1
        for n in graph.nodes:
            if graph.predecessors(n.id):
                degrees[graph.in_degree(n.id)] += 1
                roles_by_level.add((graph.levels[n.id], n.role.value))
        mixed += len({n.model for n in graph.nodes}) > 1
    assert set(widths) == {1, 2, 3, 4} and set(depths) == {1, 2} and set(degrees) == {1, 2, 3, 4}
    assert roles_by_level == {(1, "assistant"), (1, "fuser"), (2, "assistant"), (2, "fuser")}
    assert min(widths.values()) > 50 and min(depths.values()) > 200 and min(degrees.values()) > 100
    assert mixed > 0.5 * len(graphs)


def test_second_level_calls_read_first_level_outputs_and_batch_size_does_not_matter():
    backend = _fake()
    banks = collect_answer_banks(backend, {SMALL: SMALL, BIG: BIG}, QS, GRADER, samples=4, seed=1)
    calls = fusion_from_banks(backend, banks, {SMALL: SMALL, BIG: BIG}, 120, seed=2, batch=16)
    again = fusion_from_banks(_fake(), banks, {SMALL: SMALL, BIG: BIG}, 120, seed=2, batch=3)
    assert [c.record for c in calls] == [c.record for c in again]
    assert len(calls) == 120 and {c.level for c in calls} == {1, 2}
    first_level = {c.text for c in calls if c.level == 1}
    bank_texts = {s.text for s in banks.samples}
    level2 = [c for c in calls if c.level == 2]
    assert any(t in first_level and t not in bank_texts for c in level2 for t in c.input_texts)
    for c in calls:
        assert c.record.inputs == tuple(banks.index.id_of_text(c.record.question, t) for t in c.input_texts)
        assert c.record.output == banks.index.id_of_text(c.record.question, c.text)
    assert max(len(r) for _, r in backend.calls) == 16  # calls of all questions go out together


@dataclass(frozen=True)
class _LineGrader:
    """The addition grader with a declared stop sequence."""

    inner: object
    stop: tuple[str, ...] = ("\n",)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_grader_stop_sequences_reach_every_call():
    grader = _LineGrader(GRADER)
    backend = _fake()
    banks = collect_answer_banks(backend, {SMALL: SMALL}, QS[:3], grader, samples=2)
    fusion_from_banks(backend, banks, {SMALL: SMALL}, 6)
    GraphExecutor(backend, "add", grader=grader).run(
        __import__("tts_sim.core.presets", fromlist=["x"]).single(SMALL), QS[0])
    stops = {r.stop for _, reqs in backend.calls for r in reqs}
    assert stops == {("\n",)}
    assert grader_stop(GRADER) == ()
    assert GraphExecutor(backend, "add", grader=grader, stop=()).stop == ()
    with pytest.raises(ConfigError, match="stop must be a tuple"):
        grader_stop(dataclasses.replace(grader, stop="\n"))


def test_draws_respect_roles_and_in_degree_caps():
    banks = collect_answer_banks(_fake(), {SMALL: SMALL}, QS[:4], GRADER, samples=3)
    for max_inputs in (1, 2, 4):
        graphs = plan_fusion_graphs(banks, [SMALL], 300, max_inputs=max_inputs, roles=("fuser",),
                                    seed=max_inputs)
        for g in graphs:
            assert all(g.graph.in_degree(n.id) <= max_inputs for n in g.graph.nodes)
            assert all(n.role is Role.ASSISTANT or not any(g.graph.node(p).role is Role.FUSER
                                                           for p in g.graph.predecessors(n.id))
                       for n in g.graph.nodes)
    with pytest.raises(ConfigError, match="roles"):
        plan_fusion_graphs(banks, [SMALL], 3, roles=("judge",))
    assert plan_fusion_graphs(banks, [SMALL], 0) == []


def test_journal_keeps_latency_tables_and_survives_a_torn_header(tmp_path):
    from tts_sim.core.backend import Generation
    from tts_sim.core.profile import LatencyTable

    path = tmp_path / "j.jsonl"
    path.write_text('{"schema": "tts-sim/prof')  # killed while writing the header
    journal = CallJournal(path, {"a": 1})
    assert journal.replayed == 0 and path.read_text().count("\n") == 1
    table = LatencyTable(SMALL, "cpu", "onnxruntime", "int4", "CPUExecutionProvider", [(16, 1, 0.01), (64, 2, 0.03)],
                         [(32, 1, 0.002)])
    journal.record_table(SMALL, table)
    journal.record([("k1", Generation("x = 1.5", 10, 3, 0.1 / 3, 2 / 7, "length"))])
    again = CallJournal(path, {"a": 1})
    assert again.tables == {SMALL: table} and again.replayed == 1
    assert again.results["k1"] == Generation("x = 1.5", 10, 3, 0.1 / 3, 2 / 7, "length")  # floats exact


def test_journal_of_another_backend_is_refused(tmp_path):
    journal = tmp_path / "j.jsonl"
    run_profile(_fake(), _config(fusion_records=4), questions=QS, journal=journal)
    other = _fake()
    other.info = lambda model: BackendInfo("fake", "0", "FakeProvider", "fake-device", model, "int4")
    with pytest.raises(ConfigError, match="differs in: backends"):
        run_profile(other, _config(fusion_records=4), questions=QS, journal=journal)


def test_journal_is_a_tts_sim_journal_whose_bad_lines_are_corruption_unless_last(tmp_path):
    import gzip

    from tts_sim.core.backend import Generation

    path = tmp_path / "j.jsonl"
    journal = CallJournal(path, {"a": (1, 2)})
    for key in ("k1", "k2"):
        journal.record([(key, Generation("x", 1, 1, 0.5, 0.25, "stop"))])
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"schema": "tts-sim/profile-journal", "version": 1, "config": {"a": [1, 2]}}
    bad = '{"calls": [["k9", "x"]]}'
    path.write_text("\n".join([lines[0], bad, lines[2]]) + "\n")
    with pytest.raises(ConfigError, match=r"line 2: malformed entry \(ValueError\)"):
        CallJournal(path, {"a": [1, 2]})
    path.write_text("\n".join([lines[0], lines[1], bad]) + "\n")  # last: a torn write, dropped and cut off
    assert list(CallJournal(path, {"a": [1, 2]}).results) == ["k1"]
    assert path.read_text().splitlines() == lines[:2]
    path.write_bytes(gzip.compress(b"{}"))  # the profile itself passed as the journal
    with pytest.raises(ConfigError, match="is not a tts-sim profiling journal: its first line is not valid JSON"):
        CallJournal(path, {"a": [1, 2]})


def test_latency_grid_is_not_part_of_the_fingerprint_and_tables_are_keyed_by_grid():
    from dataclasses import replace

    from tts_sim.real.profiling.run import LATENCY_KEYS, ProfileConfig, _fingerprint

    base = ProfileConfig(task="add", models={"m": "m"}, latency=False)
    other = replace(base, latency=True, batch_sizes=(1, 8), contexts=(32,), prompt_lengths=(16,), repeats=5)
    assert _fingerprint(base, [], {}) == _fingerprint(other, [], {})
    assert not set(LATENCY_KEYS) & set(_fingerprint(base, [], {}))


def test_deep_graphs_reach_three_levels_legally_and_their_plan_only_grows():
    banks = collect_answer_banks(_fake(), {SMALL: SMALL, BIG: BIG}, QS, GRADER, samples=4, seed=1)
    graphs = plan_deep_graphs(banks, [SMALL, BIG], 1500, seed=7)
    nodes = sum(len(g.graph.nodes) - len(g.sources) for g in graphs)
    assert 1500 <= nodes < 1500 + 7  # at most one graph's calls beyond the target
    degrees, roles_by_level = Counter(), set()
    for g in graphs:
        graph = g.graph
        graph.validate(catalog=None)
        assert graph.depth == 3 and set(graph.executed) == {n.id for n in graph.nodes}  # every node read
        assert all(banks.samples[j].question == g.question for j in g.sources)
        for n in graph.nodes:
            preds = graph.predecessors(n.id)
            if preds:
                degrees[len(preds)] += 1
                roles_by_level.add((graph.levels[n.id], n.role.value))
                assert {graph.levels[p] for p in preds} == {graph.levels[n.id] - 1}  # reads the level below only
                assert n.role is Role.ASSISTANT or all(graph.node(p).role is Role.ASSISTANT for p in preds)
    assert set(degrees) == {1, 2, 3, 4}
    assert roles_by_level == {(lv, r) for lv in (1, 2, 3) for r in ("assistant", "fuser")}
    fewer = plan_deep_graphs(banks, [SMALL, BIG], 300, seed=7)
    assert graphs[:len(fewer)] == fewer  # a larger plan starts with the smaller one


def test_deep_records_carry_levels_and_grow_from_the_same_journal(tmp_path):
    journal = tmp_path / "j.jsonl"
    base = run_profile(_fake(), _config(), questions=QS, journal=journal).profile.task("add").fusion_records
    assert {r.level for r in base} == {1, 2}
    run_profile(_fake(), _config(deep_records=20), questions=QS, journal=journal)
    more = _fake()
    run = run_profile(more, _config(deep_records=60), questions=QS, journal=journal)
    records = run.profile.task("add").fusion_records
    deep = records[len(base):]
    assert records[:len(base)] == base and len(deep) >= 60 and {r.level for r in deep} == {1, 2, 3}
    first = [c for c in _journal_keys(journal) if c.startswith("deep/")]
    assert len(first) == len(set(first)) == len(deep)  # the second run sent only the calls the first lacked
    assert 0 < _requests(more) <= len(deep) - 20
    level3 = [c for c in run.fusion[len(base):] if c.level == 3]
    level2_texts = {c.text for c in run.fusion[len(base):] if c.level == 2}
    assert level3 and all(set(c.input_texts) <= level2_texts for c in level3)
    loaded = Profile.from_dict(json.loads(json.dumps(run.profile.to_dict())))
    assert loaded.task("add").fusion_records == records  # levels survive a save
