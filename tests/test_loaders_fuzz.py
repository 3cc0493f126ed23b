"""Fuzzing every loader with random JSON, random text and random bytes, and with valid documents
where one value was replaced by a random one: each input either loads or raises the project's own
error type (``TtsSimError``), never a ``TypeError``/``KeyError``/``RecursionError``/... ."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_inputs import _graph, _model, _tiny_profile
from tts_sim.bench.config import BenchConfig, parse_seeds
from tts_sim.core.budget import ComputeRate, parse_budget
from tts_sim.core.graph import Graph
from tts_sim.core.models import load_models
from tts_sim.core.profile import Profile, _checksum
from tts_sim.errors import ProfileError, TtsSimError
from tts_sim.jsonio import loads, nesting_depth
from tts_sim.real.validate import load_candidates
from tts_sim.search.checkpoint import Checkpoint
from tts_sim.search.objectives import parse_objective
from tts_sim.search.result import SearchResult
from tts_sim.sim.cluster import parse_cluster
from tts_sim.tasks import get_task

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
texts = st.text(max_size=40) | st.sampled_from(["[" * 5000, "{\"a\":" * 3000, "NaN", "Infinity", "-0", "1e999"])


def _loads_or_own_error(call, *args: Any) -> Any:
    try:
        return call(*args)
    except TtsSimError as exc:
        assert str(exc).strip(), "an error without a message"
        return None


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw, doc: Any, keep: tuple[str, ...] = ()) -> Any:
    """``doc`` with 1-3 values replaced by random JSON or deleted (top-level keys in ``keep`` stay)."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p and p[0] not in keep]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


# ----- JSON itself --------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=200) | texts)
def test_json_loader(raw):
    _loads_or_own_error(loads, raw, "input")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


tricky = st.text(alphabet='[]{}"\\ab', max_size=6)
tricky_json = st.recursive(st.none() | st.integers() | tricky, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(tricky, inner, max_size=3), max_leaves=30)


@FUZZ
@given(tricky_json, st.integers(0, 6), st.booleans())
def test_nesting_depth_counts_only_real_brackets(value, limit, as_bytes):
    """Brackets, quotes and backslashes inside strings do not count; the depth is exact past the limit."""
    text = json.dumps(value, ensure_ascii=False)
    depth = nesting_depth(text.encode() if as_bytes else text, limit)
    assert (depth > limit) == (_depth(value) > limit)
    if depth > limit:
        assert depth == limit + 1


def test_json_loader_refuses_deep_nesting_but_reads_tts_sims_own_files():
    with pytest.raises(TtsSimError, match="nested more than"):
        loads("[" * 100_000 + "]" * 100_000, "input")
    with pytest.raises(TtsSimError, match="nested more than"):
        loads("[" * 65 + "]" * 65, "input")
    assert loads("[" * 64 + "]" * 64, "input") is not None
    assert loads('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', "input")
    assert loads(json.dumps(_tiny_profile()), "profile")["schema"] == "tts-sim/profile"


# ----- graphs ---------------------------------------------------------------------------------------------
@FUZZ
@given(json_values)
def test_graph_from_random_json(data):
    _loads_or_own_error(Graph.from_dict, data)


@FUZZ
@given(mutated(_graph()))
def test_graph_from_a_mutated_graph(data):
    g = _loads_or_own_error(Graph.from_dict, data)
    if g is not None:  # what loads is a usable graph: every id is text, and it prints on one line per node
        assert all(isinstance(n.id, str) and n.id.isprintable() for n in g.nodes)
        assert len(g.to_text().splitlines()) == len(g.nodes)


# ----- cluster specs, budgets, objectives, seeds --------------------------------------------------------
@FUZZ
@given(texts | json_values)
def test_cluster_spec_parser(text):
    _loads_or_own_error(parse_cluster, text)


@FUZZ
@given(texts | json_values | st.sampled_from(["ref:8", "ref:0", "ref:300", "$0.5", "3gpu-s", "18u", "1e400"]))
def test_budget_parser(text):
    rate = ComputeRate(1e15, 2.0)
    value = _loads_or_own_error(parse_budget, text, get_task("math"), rate)
    assert value is None or value > 0 and value < float("inf")


@FUZZ
@given(texts | st.sampled_from(["p95<=1e999", "weighted:1e999", "mean<=0.5s", "weighted::p50", "p99 <= nan"]))
def test_objective_parser(text):
    objective = _loads_or_own_error(parse_objective, text)
    assert objective is None or objective.describe()


@FUZZ
@given(texts | st.sampled_from(["9999999999", "9223372036854775808", "0-9999999999", "5-4", "1,x"]))
def test_seed_parser(text):
    _loads_or_own_error(parse_seeds, text)


@FUZZ
@given(st.dictionaries(st.sampled_from(["searchers", "tasks", "budgets", "seeds", "evals", "workers", "pool",
                                        "regret_budgets", "split_seed", "cluster", "objective", "nope"]),
                       json_values, max_size=3))
def test_bench_config(data):
    _loads_or_own_error(BenchConfig.from_dict, data)


# ----- profiles -------------------------------------------------------------------------------------------
def _sealed(data: Any) -> Any:
    if isinstance(data, dict):
        data["checksum"] = _checksum(data)
    return data


@FUZZ
@given(json_values)
def test_profile_from_random_json(data):
    _loads_or_own_error(Profile.from_dict, _sealed(data))


@FUZZ
@given(mutated(_tiny_profile(), keep=("schema", "version", "checksum")))
def test_profile_from_a_mutated_profile_with_its_checksum_recomputed(data):
    _loads_or_own_error(Profile.from_dict, _sealed(data))


@FUZZ
@given(st.binary(max_size=300))
def test_profile_file_of_random_bytes(tmp_path, raw):
    path = tmp_path / "p.json.gz"
    path.write_bytes(raw)
    _loads_or_own_error(Profile.load, path)


# ----- models files -------------------------------------------------------------------------------------
@FUZZ
@given(json_values | mutated([_model()]))
def test_models_file_of_random_json(tmp_path, data):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    catalog = _loads_or_own_error(load_models, path)
    if catalog is not None:  # every loaded model has usable numbers
        for spec in catalog.specs():
            assert spec.weight_bytes < float("inf") and spec.kv_bytes_per_token > 0 and isinstance(spec.layers, int)


@FUZZ
@given(st.binary(max_size=200) | texts.map(str.encode))
def test_models_file_of_random_bytes(tmp_path, raw):
    for name in ("m.toml", "m.json"):
        path = tmp_path / name
        path.write_bytes(raw)
        _loads_or_own_error(load_models, path)


# ----- search results, checkpoints, candidate files ------------------------------------------------
@FUZZ
@given(json_values | st.dictionaries(st.sampled_from(["schema", "version", "searcher", "trials", "best", "cost"]),
                                     json_values).map(lambda d: {**d, "schema": "tts-sim/search-result",
                                                                 "version": 1}))
def test_search_result(data):
    _loads_or_own_error(SearchResult.from_dict, data)


@FUZZ
@given(st.binary(max_size=300) | st.lists(json_values, max_size=4).map(
    lambda rows: "\n".join(json.dumps(r) for r in [{"schema": "tts-sim/search-journal", "version": 1,
                                                    "config": {}}, *rows]).encode()))
def test_checkpoint_journal(tmp_path, raw):
    path = tmp_path / "c.jsonl"
    path.write_bytes(raw)
    _loads_or_own_error(Checkpoint(path).load)


@FUZZ
@given(json_values | st.lists(mutated({"graph": _graph(), "score": 0.5}), max_size=3))
def test_validate_candidate_file(tmp_path, data):
    path = tmp_path / "cand.json"
    path.write_text(json.dumps(data))
    _loads_or_own_error(load_candidates, [Path(path)], 3)


# ----- agent replies (an LLM's text is untrusted input too) ------------------------------------------
@FUZZ
@given(texts | json_values.map(json.dumps) | mutated({"graph": _graph()}).map(lambda d: f"```json\n{json.dumps(d)}```")
       | st.sampled_from(["```json\n" + "[" * 100_000 + "]" * 100_000 + "\n```",
                          '{"graph": "' + "[" * 5000 + "]" * 5000 + '"}',
                          '{"graph": ' + "[" * 5000 + "]" * 5000 + "}"]))
def test_agent_reply_parsing(text):
    from tts_sim.search import SearchSpace
    from tts_sim.search.parsing import ReplyError, parse_graph

    try:
        graph, _, _ = parse_graph(text, SearchSpace("math", 18.0, max_nodes=4))
    except ReplyError as exc:
        assert str(exc).strip()
    else:
        assert graph.nodes


@pytest.mark.parametrize("count", [float("inf"), float("nan"), 1.5, 2.0, -1, True, "3"])
def test_an_answer_count_that_is_not_a_whole_number_is_named_not_truncated(count) -> None:
    """Found by the fuzz test above: an infinite count raised OverflowError; 1.5 was read as 1."""
    data = _tiny_profile()
    data["tasks"]["math"]["answer_banks"]["llama-3.2-1b"][0][0] = count
    with pytest.raises(ProfileError, match="answer count .* is not an integer >= 0"):
        Profile.from_dict(_sealed(data))
