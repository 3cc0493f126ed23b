"""Shared pytest fixtures (add yours; do not remove others')."""

from __future__ import annotations

import pytest

from tests.search_fakes import FakeEvaluator


@pytest.fixture
def fake_evaluator():
    """Factory for the deterministic fake evaluator of the search tests: ``fake_evaluator("math", ...)``."""
    return FakeEvaluator


@pytest.fixture
def tiny_space():
    """A search space small enough to enumerate: 2 slots, two 1B models, MATH, 18 units."""
    from tts_sim.search import SearchSpace

    return SearchSpace("math", 18.0, pool=("llama-3.2-1b", "gemma-3-1b"), max_nodes=2)


def _register_unreleased_searchers() -> None:
    """Searchers declared in this checkout's pyproject.toml but maybe not in the installed entry points
    (they appear there once the package is reinstalled)."""
    from tts_sim.baselines.informed_random import InformedRandom
    from tts_sim.search.searcher import SEARCHERS

    if "informed-random" not in SEARCHERS:
        SEARCHERS.register("informed-random", InformedRandom)


_register_unreleased_searchers()
