"""What an agent is asked and what it answers; the agent protocols and the agents family.

Agents are stateless: everything they need (the last graph, its score, the edge-probability
table, two rounds of memory, the history of evaluated graphs) comes in the request, so a search can
be replayed from a checkpoint by answering the recorded replies in order.

Two protocols, by what a searcher asks: ``Agent`` (``pick_mixes`` + ``propose``: Agent-REINFORCE;
hybrid asks only ``propose``) and ``CritiqueEditAgent`` (``critique`` + ``edit``: TextGrad). An agent
implements the methods it supports (the chat agent implements all four). ``AGENTS`` maps a name to a
config dataclass (an ``AgentConfig``) whose fields are the agent's options, whose ``build()`` makes
the agent and whose ``provides()`` names the methods it will have, so a searcher can refuse an
unfit agent when it is configured rather than in the middle of a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.registry import Registry, make_config
from tts_sim.search.prior import NO_PRIOR, Prior
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
    prior: Prior = NO_PRIOR  # the search's prior knowledge (the only source of accuracies and task kind)


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
    prior: Prior = NO_PRIOR
    evidence: tuple[Round, ...] = ()  # every full-split round scored so far (what the scores taught)


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


#: The methods of each protocol (what ``AgentConfig.provides()`` names).
PROPOSE_METHODS = ("pick_mixes", "propose")
CRITIQUE_EDIT_METHODS = ("critique", "edit")


@runtime_checkable
class Agent(Protocol):
    """Agent-REINFORCE's agent: picks model mixes (Insight 1) and proposes the next graph."""

    name: str

    def pick_mixes(self, request: MixRequest) -> AgentReply: ...

    def propose(self, request: ProposeRequest) -> AgentReply: ...


@runtime_checkable
class CritiqueEditAgent(Protocol):
    """TextGrad's engine: textual feedback on the last graph (``critique``), then the graph after
    applying it (``edit``)."""

    name: str

    def critique(self, request: ProposeRequest) -> AgentReply: ...

    def edit(self, request: ProposeRequest, feedback: str) -> AgentReply: ...


def methods_of(agent_class: type) -> frozenset[str]:
    """Which protocol methods ``agent_class`` implements."""
    return frozenset(m for m in (*PROPOSE_METHODS, *CRITIQUE_EDIT_METHODS) if callable(getattr(agent_class, m, None)))


class AgentConfig:
    """Base of the agents family's config dataclasses: fields are options, ``build()`` makes the agent."""

    agent_class: ClassVar[type]

    def build(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def provides(self) -> frozenset[str]:
        """The protocol methods the built agent will have."""
        return methods_of(self.agent_class)


#: Agent config dataclasses by name (entry-point group ``tts_sim.agents``): ``AGENTS.build("insight", {...})``.
AGENTS: Registry[type] = Registry("agents")


def agent_options(name: str, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``options`` plus those of a searcher's ``defaults`` that agent ``name`` has and ``options`` does not set."""
    fields = AGENTS.options(name)
    return {**{k: v for k, v in (defaults or {}).items() if k in fields}, **options}


def check_agent(searcher: str, name: str, options: Mapping[str, Any], needs: Sequence[str],
                defaults: Mapping[str, Any] | None = None) -> None:
    """One-line ``ConfigError`` unless agent ``name`` exists, takes ``options`` (plus the searcher's
    ``defaults``) and provides the methods ``needs``; a config without ``provides()`` is checked when built."""
    if not isinstance(name, str):
        raise ConfigError(f"{searcher}: agent must be a registered agent name, got {type(name).__name__}")
    if not isinstance(options, Mapping):
        raise ConfigError(f"{searcher}: agent_options must be a mapping, got {type(options).__name__}")
    missing = _missing(name, agent_options(name, options, defaults), needs)
    if missing:
        fit = [n for n in AGENTS.names() if n != name and _fits(n, needs, defaults)]
        raise ConfigError(f"{searcher} needs an agent with {' and '.join(needs)}; agent {name!r} has no "
                          f"{' or '.join(missing)} (agents that fit: {', '.join(fit) or 'none'})")


def build_agent(searcher: str, name: str, options: Mapping[str, Any], needs: Sequence[str],
                defaults: Mapping[str, Any] | None = None) -> Any:
    """``AGENTS.build(name, options + defaults)``, checked to have the methods ``needs``."""
    agent = AGENTS.build(name, agent_options(name, options, defaults))
    missing = [m for m in needs if not callable(getattr(agent, m, None))]
    if missing:
        raise ConfigError(f"{searcher}: agent {name!r} has no {' or '.join(missing)}")
    return agent


def _missing(name: str, options: Mapping[str, Any], needs: Sequence[str]) -> list[str]:
    config = make_config(AGENTS.get(name), options, f"agent {name!r}")
    provides = getattr(config, "provides", None)
    return [m for m in needs if m not in provides()] if callable(provides) else []


def _fits(name: str, needs: Sequence[str], defaults: Mapping[str, Any] | None) -> bool:
    try:
        return not _missing(name, agent_options(name, {}, defaults), needs)
    except ConfigError:
        return False
