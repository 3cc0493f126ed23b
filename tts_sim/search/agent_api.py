"""What an Agent-REINFORCE agent is asked and what it answers.

Agents are stateless: everything they need (the last graph, its score, the edge-probability
table, two rounds of memory, the history of evaluated graphs) comes in the request, so a search can
be replayed from a checkpoint by answering the recorded replies in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from tts_sim.core.graph import Graph
from tts_sim.registry import Registry
from tts_sim.search.space import SearchSpace


def estimate_tokens(text: str) -> int:
    """Rough token count of English/JSON text (about 4 characters per token)."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


@dataclass(frozen=True)
class MixOption:
    """A multiset of pool models, its cost in integer units and the units it leaves unspent."""

    models: tuple[str, ...]
    units: int
    leftover: int

    def label(self) -> str:
        counts: dict[str, int] = {}
        for m in self.models:
            counts[m] = counts.get(m, 0) + 1
        return " + ".join(f"{n} x {m}" for m, n in counts.items())


@dataclass(frozen=True)
class MixRequest:
    space: SearchSpace
    mixes: tuple[MixOption, ...]
    unit_costs: Mapping[str, int]
    available_units: int
    n_picks: int
    objective: str
    seed: int


@dataclass(frozen=True)
class Round:
    """One past round kept in the agent's memory."""

    graph: Graph
    score: float
    accuracy: float
    units: float
    latency_s: float | None = None
    note: str = ""  # what the agent did to produce this graph


@dataclass(frozen=True)
class ProposeRequest:
    space: SearchSpace
    step: int
    nodes: Mapping[str, str]  # node id -> model: the nodes of the chosen mix
    last: Round
    best: Round
    prev_best_score: float | None  # best score before the last round (None in round 1)
    edge_table: Mapping[str, float]
    memory: tuple[Round, ...]  # rounds before the last one, oldest first (the paper keeps two)
    history: frozenset[str]  # graph keys already evaluated
    objective: str
    show_latency: bool
    seed: int


@dataclass
class AgentReply:
    """An agent's answer. ``graph`` is graph JSON; ``edge_table`` maps ``"u->v"`` to a probability."""

    kind: str  # "pick" | "propose" | "critique" | "edit"
    agent: str
    text: str = ""  # the agent's reasoning or feedback
    graph: dict[str, Any] | None = None
    edge_table: dict[str, float] | None = None
    picks: list[int] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = True
    fallback: bool = False
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentReply:
        return cls(**dict(data))


@runtime_checkable
class Agent(Protocol):
    name: str

    def pick_mixes(self, request: MixRequest) -> AgentReply: ...

    def propose(self, request: ProposeRequest) -> AgentReply: ...


#: Agent factories by name: ``AGENTS.get("insight")(**options)``.
AGENTS: Registry[Any] = Registry("agents")


def make_agent(agent: str | Agent, **options: Any) -> Agent:
    """An agent from its registry name (with options) or the agent itself."""
    if not isinstance(agent, str):
        return agent
    factory = AGENTS.get(agent)
    try:
        return factory(**options)
    except TypeError as exc:
        from tts_sim.errors import ConfigError

        raise ConfigError(f"agent {agent!r}: bad option ({exc})") from None


def _insight(**options: Any) -> Agent:
    from tts_sim.search.agents import InsightAgent

    return InsightAgent(**options)


def _chat(**options: Any) -> Agent:
    from tts_sim.search.chat_agent import ChatAgent

    return ChatAgent(**options)


AGENTS.register("insight", _insight)
AGENTS.register("chat", _chat)
