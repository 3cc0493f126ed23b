"""Search cost and break-even against the fixed presets, checked by hand."""

from __future__ import annotations

import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.core.flops import graph_flops
from tts_sim.core.identity import graph_key
from tts_sim.core.models import DEFAULT_CATALOG
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace, run_search
from tts_sim.search.breakeven import (
    PresetPoint,
    PresetReference,
    SearchCostFlops,
    agent_cost_spec,
    break_even,
    preset_graphs,
    preset_table,
    reference_for,
    search_cost,
)
from tts_sim.search.result import SearchCost, SearchResult

LLAMA_70B = agent_cost_spec("llama-3.1-70b", DEFAULT_CATALOG)


def test_search_cost_prices_agent_tokens_as_two_flops_per_parameter():
    cost = SearchCost(evaluations=30, simulated_flops=1e17, agent_prompt_tokens=1000, agent_completion_tokens=500)
    full = search_cost(cost, LLAMA_70B)
    assert LLAMA_70B.m_flops == 70e9
    assert full.agent_tokens == 1500 and full.agent_flops == pytest.approx(2 * 70e9 * 1500)  # 2.1e14
    assert full.total == pytest.approx(1e17 + 2.1e14) and full.evaluations == 30
    assert search_cost(cost.to_dict(), LLAMA_70B) == full  # from a result row's cost dict too
    small = search_cost(cost, agent_cost_spec("llama-3.2-1b", DEFAULT_CATALOG))
    assert small.agent_flops == pytest.approx(2 * 1e9 * 1500)
    with pytest.raises(ConfigError, match=r"^agent cost model: unknown model 'gpt-9'"):
        agent_cost_spec("gpt-9", DEFAULT_CATALOG)


POINTS = [PresetPoint("cheap", 1e12, 0.40), PresetPoint("mid", 5e12, 0.55), PresetPoint("big", 9e12, 0.60),
          PresetPoint("big-twin", 9e12, 0.60)]


def test_reference_is_the_cheapest_preset_that_reaches_the_accuracy():
    ref = reference_for(POINTS, 0.50)
    assert ref.match == POINTS[1] and ref.best == POINTS[2] and ref.n_presets == 4
    assert reference_for(POINTS, 0.55).match == POINTS[1]  # "at least the same accuracy" includes equal
    assert reference_for(POINTS, 0.30).match == POINTS[0]
    assert reference_for(POINTS, 0.61).match is None
    assert PresetReference.from_dict(ref.to_dict()) == ref


def _cost(total: float) -> SearchCostFlops:
    return SearchCostFlops(30, total, 0, "llama-3.1-70b", 0.0)


def test_break_even_in_queries_when_the_found_graph_is_cheaper():
    ref = reference_for(POINTS, 0.52)  # mid: 5e12 FLOPs per query
    be = break_even(3e12, 0.52, ref, _cost(1e16))
    assert be.verdict == "queries" and be.savings_per_query == pytest.approx(2e12)
    assert be.queries == pytest.approx(5000)  # 1e16 / 2e12
    assert "5,000 queries" in be.text() and "mid" in be.text()


def test_break_even_never_when_a_preset_as_accurate_costs_no_more():
    be = break_even(6e12, 0.52, reference_for(POINTS, 0.52), _cost(1e16))
    assert be.verdict == "never" and be.queries is None and be.savings_per_query == pytest.approx(-1e12)
    assert break_even(5e12, 0.52, reference_for(POINTS, 0.52), _cost(1e16)).verdict == "never"  # equal cost


def test_no_preset_reaches_the_graph_gives_accuracy_gained_per_eflop():
    be = break_even(8e12, 0.65, reference_for(POINTS, 0.65), _cost(2e17))
    assert be.verdict == "none" and be.queries is None
    assert be.gain_per_eflop == pytest.approx((0.65 - 0.60) / 0.2)  # 0.25 accuracy per 1e18 FLOPs
    assert "none" in be.text() and be.to_dict()["reference"]["match"] is None


def test_presets_are_single_parallel_and_chain_of_each_pool_model_once():
    space = SearchSpace("math", 18.0, pool=("llama-3.2-1b", "gemma-3-1b"), max_nodes=3)
    presets = preset_graphs(space)
    names = [n for n, _ in presets]
    # per model: single, parallel 1..3, chain 2..3 (chain 1 is parallel 1)
    assert len(presets) == 12 and len({graph_key(g) for _, g in presets}) == 12
    assert "single gemma-3-1b" in names and "parallel 3 x llama-3.2-1b" in names and "chain 3 x gemma-3-1b" in names
    assert "chain 1 x gemma-3-1b" not in names
    ev = FakeEvaluator("math", 60)
    qs = tuple(range(30, 60))
    table = preset_table(space, ev, qs)
    assert preset_table(space, ev, qs) is table  # cached per evaluator
    for (name, g), point in zip(presets, table, strict=True):
        assert point.name == name and point.flops == graph_flops(g, space.task)
        assert point.accuracy == pytest.approx(ev.expected(g, qs).accuracy)


def test_every_search_result_states_its_full_cost_and_break_even(tmp_path):
    space, ev = SearchSpace("math", 18.0, max_nodes=4), FakeEvaluator("math", 120)
    result = run_search("agent-reinforce", space, ev, 8, seed=0, agent_cost_model="llama-3.1-8b")
    be = result.breakeven
    assert be is not None and be["verdict"] in ("queries", "never", "none") and be["text"]
    assert be["cost"]["agent_model"] == "llama-3.1-8b"
    tokens = result.cost.agent_prompt_tokens + result.cost.agent_completion_tokens
    assert be["cost"]["agent_flops"] == pytest.approx(2 * 8e9 * tokens) and tokens > 0
    assert be["cost"]["total_flops"] == pytest.approx(result.cost.simulated_flops + be["cost"]["agent_flops"])
    assert be["found_flops"] == pytest.approx(space.flops(result.best))
    assert be["found_accuracy"] == pytest.approx(result.expected_accuracy)
    heldout = result.heldout.questions
    # the same numbers come out of the break-even module given the same inputs
    again = break_even(be["found_flops"], be["found_accuracy"],
                       reference_for(preset_table(space, ev, heldout), be["found_accuracy"]),
                       search_cost(result.cost, agent_cost_spec("llama-3.1-8b", DEFAULT_CATALOG)))
    assert again.to_dict() == be
    result.save(tmp_path / "r.json")
    assert SearchResult.load(tmp_path / "r.json").breakeven == be
    with pytest.raises(ConfigError, match="agent cost model"):
        run_search("random", space, ev, 2, agent_cost_model="nobody")
