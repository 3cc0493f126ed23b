"""The agents family: entry points, config dataclasses with build(), the two protocols, and searchers
that refuse an unfit agent when they are configured."""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
from pathlib import Path
from typing import ClassVar

import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.baselines.textgrad import OfflineTextGrad, OfflineTextGradConfig, TextGradSearch
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace, make_searcher, run_search
from tts_sim.search.agent_api import (
    AGENTS,
    CRITIQUE_EDIT_METHODS,
    PROPOSE_METHODS,
    Agent,
    AgentConfig,
    CritiqueEditAgent,
    MixRequest,
    ProposeRequest,
)
from tts_sim.search.agents import InsightAgent, InsightConfig
from tts_sim.search.chat_agent import ChatAgent, ChatConfig

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SPACE = SearchSpace("math", 18.0, max_nodes=4)


def declared_agents() -> dict[str, str]:
    data = tomllib.loads(PYPROJECT.read_text())
    return dict(data["project"]["entry-points"]["tts_sim.agents"])


def _load(target: str) -> type:
    module, _, attr = target.partition(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


@pytest.fixture()
def builtin_agents(monkeypatch):
    """The agents pyproject.toml declares, registered in-test (so the tests do not depend on whether the
    installed package's entry points are up to date)."""
    items = {name: _load(target) for name, target in declared_agents().items()}
    monkeypatch.setattr(AGENTS, "_items", {**AGENTS._items, **items})
    return items


def test_pyproject_declares_the_builtin_agents():
    declared = {name: _load(target) for name, target in declared_agents().items()}
    assert declared == {"insight": InsightConfig, "chat": ChatConfig, "offline-textgrad": OfflineTextGradConfig}
    for cls in declared.values():
        assert dataclasses.is_dataclass(cls) and issubclass(cls, AgentConfig)


def test_no_agent_is_registered_in_code():
    """Built-ins come from entry points, exactly like a third party's."""
    for path in (PYPROJECT.parent / "tts_sim" / "search").glob("*.py"):
        assert "AGENTS.register(" not in path.read_text(), path


def test_build_validates_and_converts_options(builtin_agents):
    agent = AGENTS.build("insight", {"step_size": "0.5", "momentum": 0.1})
    assert isinstance(agent, InsightAgent) and (agent.step_size, agent.momentum) == (0.5, 0.1)
    with pytest.raises(ConfigError, match="agent 'insight' has no option 'base_url'"):
        AGENTS.build("insight", {"base_url": "http://x"})
    with pytest.raises(ConfigError, match="unknown agent 'oracle'.*offline-textgrad"):
        AGENTS.build("oracle")
    assert set(AGENTS.options("chat")) >= {"base_url", "model", "api_key", "retries", "fallback", "insights"}


def test_agents_implement_the_declared_protocols(builtin_agents):
    insight, offline = AGENTS.build("insight"), AGENTS.build("offline-textgrad")
    assert isinstance(insight, Agent) and not isinstance(insight, CritiqueEditAgent)
    assert isinstance(offline, CritiqueEditAgent) and not isinstance(offline, Agent)
    chat = AGENTS.build("chat", {"base_url": "http://127.0.0.1:9", "model": "m"})
    assert isinstance(chat, Agent) and isinstance(chat, CritiqueEditAgent)
    assert isinstance(chat.fallback, InsightAgent) and chat.settings.base_url == "http://127.0.0.1:9/v1"
    assert InsightConfig().provides() == frozenset(PROPOSE_METHODS)
    assert OfflineTextGradConfig().provides() == frozenset(CRITIQUE_EDIT_METHODS)


def test_the_chat_agent_provides_what_its_fallback_can_answer(builtin_agents):
    assert ChatConfig().provides() == frozenset(PROPOSE_METHODS)
    assert ChatConfig(fallback="offline-textgrad").provides() == frozenset(CRITIQUE_EDIT_METHODS)
    with pytest.raises(ConfigError, match="fallback must be an offline agent"):
        ChatConfig(fallback="chat").provides()


@pytest.mark.parametrize(("searcher", "agent", "message"), [
    ("textgrad", "insight", "textgrad needs an agent with critique and edit; agent 'insight' has no critique or "
                            "edit (agents that fit: chat, offline-textgrad)"),
    ("agent-reinforce", "offline-textgrad", "agent-reinforce needs an agent with pick_mixes and propose"),
    ("hybrid", "offline-textgrad", "hybrid needs an agent with propose; agent 'offline-textgrad' has no propose"),
    ("textgrad", "oracle", "unknown agent 'oracle'"),
    ("agent-reinforce", "insight", "agent 'insight' has no option 'retries'"),
])
def test_searchers_refuse_an_unfit_agent_when_configured(builtin_agents, searcher, agent, message):
    options = {"agent_options": {"retries": 1}} if message.endswith("'retries'") else {}
    with pytest.raises(ConfigError) as info:
        make_searcher(searcher, agent=agent, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_textgrad_gives_the_chat_agent_insight_free_prompts_and_its_offline_fallback(builtin_agents, monkeypatch):
    for var in ("TTS_SIM_AGENT_BASE_URL", "TTS_SIM_AGENT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    searcher = make_searcher("textgrad", agent="chat")  # configuring needs no endpoint yet
    assert isinstance(searcher, TextGradSearch)
    with pytest.raises(ConfigError, match="TTS_SIM_AGENT_BASE_URL"):
        searcher.engine()
    engine = TextGradSearch(agent="chat", agent_options={"base_url": "http://127.0.0.1:9", "model": "m"}).engine()
    assert isinstance(engine, ChatAgent) and not engine.insights and isinstance(engine.fallback, OfflineTextGrad)
    explicit = TextGradSearch(agent="chat", agent_options={"base_url": "http://127.0.0.1:9", "model": "m",
                                                           "insights": True}).engine()
    assert isinstance(explicit, ChatAgent) and explicit.insights  # the searcher's defaults never override


class EchoAgent(InsightAgent):
    """A third party's agent: the insight agent under another name, counting its calls."""

    name = "echo"
    calls: ClassVar[list[str]] = []

    def pick_mixes(self, request: MixRequest):
        self.calls.append("pick")
        return super().pick_mixes(request)

    def propose(self, request: ProposeRequest):
        self.calls.append("propose")
        return super().propose(request)


@dataclasses.dataclass
class EchoConfig(AgentConfig):
    agent_class: ClassVar[type] = EchoAgent

    def build(self) -> EchoAgent:
        return EchoAgent()


def test_a_registered_agent_is_used_by_name(builtin_agents):
    AGENTS.register("echo", EchoConfig)
    EchoAgent.calls.clear()
    result = run_search("agent-reinforce", SPACE, FakeEvaluator("math", 60), 8, seed=0, options={"agent": "echo"})
    assert EchoAgent.calls[0] == "pick" and "propose" in EchoAgent.calls
    assert result.config["options"]["agent"] == "echo"
    assert {e["agent"] for e in result.agent_log} == {"echo"}
    with pytest.raises(ConfigError, match="textgrad needs an agent with critique and edit"):
        make_searcher("textgrad", agent="echo")
