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


@pytest.fixture(scope="session")
def smollm2_add_profile(tmp_path_factory):
    """A tiny real profile of SmolLM2-135M on ``add`` (4 questions x 3 samples, 4 fusion records, CPU
    latency tables), measured once per session by ``tts-sim profile``: the slow validate and fidelity
    tests share it. Its path."""
    pytest.importorskip("onnxruntime")
    from tts_sim.backends.onnxruntime import prepare_model
    from tts_sim.cli import main

    prepare_model("smollm2-135m", "fp32", progress=lambda _: None)
    prof = tmp_path_factory.mktemp("smollm2-profile") / "p.json.gz"
    assert main(["profile", "--model", "smollm2-135m", "--task", "add", "--questions", "4", "--samples", "3",
                 "--fusion-records", "4", "--max-new-tokens", "24", "--prompt-lengths", "16,64,160",
                 "--batch-sizes", "1,2,4", "--contexts", "32,128", "--repeats", "2", "--steps", "4", "--threads", "2",
                 "-o", str(prof), "--quiet", "--json"]) == 0
    return prof
