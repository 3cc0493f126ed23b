"""Equal information: the prior is one object handed to every searcher; under ``none`` no searcher or
agent sees a published accuracy or the task kind; nothing in search or baselines reads the scenario."""

from __future__ import annotations

import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.baselines.random_search import prior_weights, random_graph
from tts_sim.errors import ConfigError
from tts_sim.search import SEARCHERS, SearchSpace, prompts, run_search
from tts_sim.search.agent_api import MixRequest
from tts_sim.search.agents import DEFAULT_PRIOR, PRIORS, InsightAgent, prior_for
from tts_sim.search.mixes import available_units, enumerate_mixes, unit_costs
from tts_sim.search.prior import NO_PRIOR, Prior, make_prior, mix_accuracy, mix_weights
from tts_sim.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
EVERY = ["agent-reinforce", "hybrid", "random", "informed-random", "bo-gp", "bo-forest", "tpe", "textgrad",
         "gptswarm"]
FAST = {"bo-gp": {"n_points": 100}, "bo-forest": {"n_points": 100}}


def test_make_prior_none_is_empty_and_published_holds_the_task_accuracies_and_kind():
    task = get_task("math")
    assert make_prior("none", task) == NO_PRIOR and not NO_PRIOR.informed and NO_PRIOR.task_kind is None
    assert make_prior(None, task) == NO_PRIOR  # the default
    pub = make_prior("published", task)
    assert pub.informed and pub.task_kind == "math" and dict(pub.accuracies) == task.published_accuracy
    assert pub.accuracy("llama-3.1-8b") == task.published_accuracy["llama-3.1-8b"] and pub.accuracy("x") is None
    with pytest.raises(ConfigError, match=r"^unknown prior 'oracle' \(choose from: none, published\)$"):
        make_prior("oracle", task)


def test_mix_weights_by_hand():
    prior = Prior("published", {"a": 0.50, "b": 0.45, "c": 0.30})
    assert mix_accuracy(prior, ("c", "a")) == 0.50 and mix_accuracy(prior, ("zz",)) is None
    w = mix_weights(prior, [("a",), ("b", "c"), ("zz",)], temperature=0.05)
    assert w is not None and w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(math.e)  # 5 points apart at temperature 0.05
    assert w[1] / w[2] == pytest.approx(1.0)  # a mix of unknown models: the lowest mix accuracy (0.45)
    assert mix_weights(NO_PRIOR, [("a",), ("b",)]) is None  # uniform


def test_random_search_draws_better_mixes_more_often_under_the_published_prior():
    space = SearchSpace("math", 42.0)
    mixes = enumerate_mixes(space)
    pub = make_prior("published", space.task)

    def mean_best_accuracy(prior: Prior) -> float:
        weights = prior_weights(prior, mixes)
        rng = np.random.default_rng(0)
        graphs = [random_graph(space, rng, mixes, weights=weights) for _ in range(200)]
        return float(np.mean([mix_accuracy(pub, [n.model for n in g.nodes if n.id != g.output]) or 0.0
                              for g in graphs]))

    assert mean_best_accuracy(pub) > mean_best_accuracy(NO_PRIOR) + 0.02


def _request(space: SearchSpace, prior: Prior) -> MixRequest:
    return MixRequest(space, tuple(enumerate_mixes(space)), unit_costs(space), available_units(space), 3,
                      "accuracy", 0, prior)


def test_insight_agent_reads_accuracies_and_kind_only_from_the_prior():
    task = get_task("mmlu")
    shuffled = dict(zip(task.published_accuracy, reversed(list(task.published_accuracy.values())), strict=True))
    other = dataclasses.replace(task, published_accuracy=shuffled, kind="math")
    a, b = SearchSpace(task, 42.0), SearchSpace(other, 42.0)
    agent = InsightAgent()
    # under none the task's own numbers and kind make no difference
    assert agent.pick_mixes(_request(a, NO_PRIOR)).picks == agent.pick_mixes(_request(b, NO_PRIOR)).picks
    # under published they do (the prior is built from each task)
    assert (agent.pick_mixes(_request(a, make_prior("published", task))).picks
            != agent.pick_mixes(_request(b, make_prior("published", other))).picks)
    assert prior_for(NO_PRIOR) == DEFAULT_PRIOR and prior_for(make_prior("published", task)) == PRIORS[task.kind]


def test_chat_prompt_states_accuracies_and_kind_only_under_the_published_prior():
    space = SearchSpace("math", 42.0)
    blind = prompts.render(prompts.mix_messages(_request(space, NO_PRIOR)))
    told = prompts.render(prompts.mix_messages(_request(space, make_prior("published", space.task))))
    assert "48.5%" in told and "Task: math (math)." in told
    assert "%" not in blind.split("Integer cost units")[0] and "(math)" not in blind
    assert "No single-model accuracies are known" in blind


class _Trap(dict):
    """A published-accuracy table that fails the test when anything reads it."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("a searcher read the task's published accuracies under prior 'none'")

    __getitem__ = get = __iter__ = __contains__ = keys = items = values = __len__ = _fail  # type: ignore[assignment]


class _TrapKind(str):
    def _fail(self, *args, **kwargs):
        raise AssertionError("a searcher read the task kind under prior 'none'")

    __eq__ = __hash__ = __ne__ = _fail  # type: ignore[assignment]


@pytest.mark.parametrize("name", EVERY)
def test_no_searcher_reads_the_task_accuracies_or_kind_under_the_none_prior(name):
    task = get_task("math")
    trapped = dataclasses.replace(task)
    object.__setattr__(trapped, "published_accuracy", _Trap())
    object.__setattr__(trapped, "kind", _TrapKind("math"))
    space = SearchSpace(trapped, 18.0, max_nodes=4)
    result = run_search(name, space, FakeEvaluator(task, 80), 6, seed=1, options=FAST.get(name), prior="none")
    assert result.config["prior"] == "none" and result.cost.evaluations >= 1


@pytest.mark.parametrize("name", EVERY)
def test_every_searcher_records_its_prior_and_refuses_one_it_cannot_use(name):
    """A searcher that uses a prior runs under both settings; one that does not runs under none and
    refuses published in one line (it would ignore it)."""
    space, ev = SearchSpace("math", 18.0, max_nodes=4), FakeEvaluator("math", 80)
    uses = getattr(SEARCHERS.get(name), "uses_prior", None)
    assert isinstance(uses, bool)
    for setting in ("none", "published"):
        if setting == "published" and not uses:
            with pytest.raises(ConfigError, match=f"searcher {name!r} does not use a prior"):
                run_search(name, space, ev, 5, seed=2, options=FAST.get(name), prior=setting)
            continue
        result = run_search(name, space, ev, 5, seed=2, options=FAST.get(name), prior=setting)
        assert result.config["prior"] == setting


def test_the_prior_changes_agent_reinforce_and_the_context_carries_it():
    space, ev = SearchSpace("mmlu", 42.0), FakeEvaluator("mmlu", 200)
    seen: list[Prior] = []

    class Probe:
        name = "probe"
        uses_prior = True

        def config(self):
            return {}

        def run(self, ctx):
            seen.append(ctx.prior)
            ctx.evaluate(space.lone_output())

    run_search(Probe(), space, ev, 1, prior="published")
    run_search(Probe(), space, ev, 1)
    assert seen[0] == make_prior("published", space.task) and seen[1] == NO_PRIOR
    none = run_search("agent-reinforce", space, ev, 8, seed=0, prior="none")
    pub = run_search("agent-reinforce", space, ev, 8, seed=0, prior="published")
    assert none.agent_log[0]["text"] != pub.agent_log[0]["text"]


def test_informed_random_stays_within_the_agents_picks_without_pretest_or_loop():
    space, ev = SearchSpace("math", 42.0), FakeEvaluator("math", 200)
    result = run_search("informed-random", space, ev, 12, seed=4, prior="published")
    assert result.cost.agent_calls == 1 and result.agent_log[0]["kind"] == "pick"
    mixes = enumerate_mixes(space)
    reply = InsightAgent().pick_mixes(_request(space, make_prior("published", space.task)))
    allowed = {tuple(sorted(mixes[i].models)) for i in reply.picks}
    assert all(t.full for t in result.trials)  # no pre-test on fewer questions
    for t in result.trials:
        workers = tuple(sorted(n.model for n in t.graph.nodes if n.id != t.graph.output and n.id in t.graph.executed))
        # a budget repair may drop nodes: the graph's models are a sub-multiset of a picked mix
        assert any(_submultiset(workers, mix) for mix in allowed), workers


def _submultiset(small: tuple[str, ...], big: tuple[str, ...]) -> bool:
    rest = list(big)
    for m in small:
        if m not in rest:
            return False
        rest.remove(m)
    return True


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_search_and_baselines_never_import_the_scenario():
    """The scenario's true coefficients live in tts_sim.sim.scenario: no searcher may see them,
    directly (any import statement in tts_sim/search or baselines) or through what it imports."""
    files = sorted((ROOT / "tts_sim" / "search").glob("*.py")) + sorted((ROOT / "baselines").glob("*.py"))
    assert len(files) > 20
    for f in files:
        bad = [n for n in _imports(f) if n == "tts_sim.sim.scenario" or n.startswith("tts_sim.sim.scenario.")]
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
    modules = [f"tts_sim.search.{f.stem}" for f in files if f.parent.name == "search" and f.stem != "__init__"]
    modules += [f"tts_sim.baselines.{f.stem}" for f in files if f.parent.name == "baselines" and f.stem != "__init__"]
    code = ("import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
            + "print('tts_sim.sim.scenario' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr


def test_the_scenario_import_check_can_fail(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from tts_sim.sim.scenario import TRUE_FUSION\nimport tts_sim.sim.scenario\n")
    assert {"tts_sim.sim.scenario", "tts_sim.sim.scenario.TRUE_FUSION"} <= _imports(bad)

