"""BO (bo-gp, bo-forest): the surrogate's graph features, the feasible candidate pool, and the loop.

The old BO fitted its surrogate to the slot encoding (one graph, many encodings), drew acquisition
candidates as uniform encodings (mostly over budget on tight budgets) and told over-budget
proposals a penalty; these tests fail on each of those."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.search_fakes import FakeEvaluator
from tts_sim.baselines.bo_skopt import CandidatePool
from tts_sim.core.graph import Role
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
from tts_sim.search import GraphEncoding, SearchSpace, make_searcher, run_search
from tts_sim.search.context import SearchContext
from tts_sim.search.features import feature_names, graph_features
from tts_sim.search.objectives import Accuracy
from tts_sim.tasks import get_task

SPACE = SearchSpace(get_task("math"), 18.0, pool=("llama-3.2-1b", "llama-3.1-8b", "gemma-2b"), max_nodes=4)
ENC = GraphEncoding(SPACE)
VECTORS = st.tuples(*[st.integers(0, d.size - 1) for d in ENC.dimensions])


def test_one_graph_in_two_slot_orders_has_two_encodings_but_one_feature_vector():
    a = SPACE.build(["llama-3.1-8b", "gemma-2b", None, None], [Role.ASSISTANT] * 4, [(0, 1)], [1], repair=False)
    b = SPACE.build([None, "llama-3.1-8b", "gemma-2b", None], [Role.ASSISTANT] * 4, [(1, 2)], [2], repair=False)
    assert graph_key(a) == graph_key(b)
    xa = [0] * len(ENC)
    xa[0], xa[1], xa[2 * ENC.k + ENC.pairs.index((0, 1))], xa[-3] = 2, 3, 1, 1
    xb = [0] * len(ENC)
    xb[1], xb[2], xb[2 * ENC.k + ENC.pairs.index((1, 2))], xb[-2] = 2, 3, 1, 1
    assert graph_key(ENC.decode(xa, repair=False)) == graph_key(ENC.decode(xb, repair=False)) == graph_key(a)
    assert xa != xb  # what the old surrogate saw: two unrelated points
    assert np.array_equal(graph_features(SPACE, a), graph_features(SPACE, b))


@settings(max_examples=100, deadline=None)
@given(x=VECTORS)
def test_features_depend_on_the_graph_only_and_lie_in_the_unit_interval(x):
    graph = ENC.decode(x)  # budget-repaired: budget use <= 1
    again = ENC.decode(ENC.encode(graph))
    f = graph_features(SPACE, graph)
    assert f.shape == (len(feature_names(SPACE)),)
    assert np.array_equal(f, graph_features(SPACE, again))
    assert f.min() >= 0.0 and f.max() <= 1.0 + 1e-9


def test_features_tell_models_depth_and_fusers_apart():
    par = SPACE.build(["llama-3.2-1b", "llama-3.2-1b"], [Role.ASSISTANT] * 2, [], [0, 1])
    other_model = SPACE.build(["llama-3.2-1b", "gemma-2b"], [Role.ASSISTANT] * 2, [], [0, 1])
    chain = SPACE.build(["llama-3.2-1b", "llama-3.2-1b"], [Role.ASSISTANT] * 2, [(0, 1)], [1])
    fused = SPACE.build(["llama-3.2-1b", "llama-3.2-1b"], [Role.ASSISTANT, Role.FUSER], [(0, 1)], [1])
    rows = [tuple(graph_features(SPACE, g)) for g in (par, other_model, chain, fused)]
    assert len(set(rows)) == 4


def test_neighbour_changes_exactly_the_asked_number_of_entries_within_range():
    rng = np.random.default_rng(0)
    for changes in (1, 2, 3):
        x = ENC.random(rng)
        y = ENC.neighbour(x, rng, changes)
        assert sum(a != b for a, b in zip(x, y, strict=True)) == changes
        assert all(0 <= v < s for v, s in zip(y, ENC.sizes, strict=True))


def _context(space: SearchSpace, max_evals: int = 10) -> SearchContext:
    return SearchContext(space, FakeEvaluator("math", 60), max_evals, 0, tuple(range(30)), Accuracy(), config={})


def test_candidates_are_feasible_distinct_and_not_evaluated_yet():
    tight = SearchSpace(get_task("math"), 9.0, max_nodes=4)  # most uniform encodings are over this budget
    ctx = _context(tight)
    assert CandidatePool(ctx, "t").draw(0, 50) == []  # no evaluated graph: nothing to change
    first = CandidatePool(ctx, "t").draw(40)
    for g in first[:3]:
        ctx.evaluate(g)
    pool = CandidatePool(ctx, "t").draw(40, 40, 2)
    keys = [graph_key(g) for g in pool]
    assert pool and len(set(keys)) == len(keys)
    assert all(tight.feasible(g) for g in pool)
    assert not set(keys) & {t.graph_key for t in ctx.trials}
    local = CandidatePool(ctx, "t").draw(0, 40, 1)
    assert local  # changes of the best graph alone give candidates


@pytest.mark.parametrize("name", ["bo-gp", "bo-forest"])
def test_bo_on_a_tight_budget_evaluates_every_proposal_and_repeats_none(name):
    space = SearchSpace(get_task("math"), 12.0, max_nodes=6)
    result = run_search(name, space, FakeEvaluator("math", 80), 15, seed=2, options={"n_points": 60, "n_local": 30})
    assert result.cost.evaluations == 15 and result.cost.penalised == 0
    initial = sum(t.phase == "initial design" for t in result.trials)
    assert result.cost.cache_hits == 5 - initial  # repeats only where the random initial design drew one twice
    assert len({t.graph_key for t in result.trials}) == 15
    assert all(space.feasible(t.graph) for t in result.trials)


def test_bo_proposals_score_higher_than_random_graphs():
    """After the shared initial design, the surrogate's picks beat random draws on average."""
    space = SearchSpace(get_task("math"), 42.0, max_nodes=6)
    bo, rnd = [], []
    for seed in range(3):
        r = run_search("bo-gp", space, FakeEvaluator("math", 200), 20, seed=seed,
                       options={"n_points": 100, "n_local": 50})
        bo += [t.score for t in r.trials[5:]]
        rnd += [t.score for t in run_search("random", space, FakeEvaluator("math", 200), 20, seed=seed).trials[5:]]
    assert np.mean(bo) > np.mean(rnd) + 0.01


@pytest.mark.parametrize(("options", "match"), [({"acq_func": "gp_hedge"}, "acq_func"), ({"n_points": 0}, "n_points"),
                                                ({"n_local": -1}, "n_local")])
def test_bad_bo_options_are_one_line_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        make_searcher("bo-gp", **options)
