"""ChatAgent: the paper's LLM agent over any OpenAI-compatible chat-completions endpoint.

Configuration comes from arguments or the environment (``TTS_SIM_AGENT_BASE_URL``,
``TTS_SIM_AGENT_MODEL``, ``TTS_SIM_AGENT_API_KEY``); the base URL follows the shared client's rule
(the API root ``.../v1``; ``/chat/completions`` may be given or not). Transport (retries with
exponential backoff and ``Retry-After``, usage) is ``tts_sim.openai_client``'s. Replies are parsed
robustly (``parsing``); a malformed reply is sent back with the reason and asked again. When the
endpoint is unreachable or keeps answering garbage, the call falls back to the offline agent
(``fallback``, an agent name: ``insight`` by default) with a logged warning, and the reply is marked
``fallback`` - the search goes on. Registered as agent ``chat`` (``ChatConfig``); it implements both
protocols, as far as its fallback does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from tts_sim.errors import ConfigError
from tts_sim.openai_client import ClientSettings, EndpointError, MalformedReply, OpenAIClient
from tts_sim.registry import make_config
from tts_sim.search import prompts
from tts_sim.search.agent_api import (
    AGENTS,
    AgentConfig,
    AgentReply,
    MixRequest,
    ProposeRequest,
    estimate_tokens,
    methods_of,
)
from tts_sim.search.parsing import ReplyError, merge_table, parse_graph, parse_picks, strip_thinking

log = logging.getLogger("tts_sim.search.agent")

ENV_BASE_URL = "TTS_SIM_AGENT_BASE_URL"
ENV_MODEL = "TTS_SIM_AGENT_MODEL"
ENV_API_KEY = "TTS_SIM_AGENT_API_KEY"

T = TypeVar("T")


class ChatAgent:
    """An LLM agent behind ``{base_url}/chat/completions``. ``retries`` bounds both the client's
    transport retries and the re-asks after a malformed reply; after ``max_failed_calls`` calls in a row
    that got no answer at all, the endpoint is left alone and every call falls back at once."""

    name = "chat"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 timeout_s: float = 300.0, retries: int = 2, temperature: float = 0.2, max_tokens: int = 4096,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_failed_calls: int = 2,
                 insights: bool = True, fallback: Any = None) -> None:
        url = (base_url or os.environ.get(ENV_BASE_URL) or "").strip()
        if not url:
            raise ConfigError(f"the chat agent needs an endpoint: pass base_url or set {ENV_BASE_URL}")
        self.model = model or os.environ.get(ENV_MODEL) or ""
        if not self.model:
            raise ConfigError(f"the chat agent needs a model name: pass model or set {ENV_MODEL}")
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
        try:
            settings = ClientSettings(url, key or None, timeout_s, retries, backoff_s, max_backoff_s)
        except ConfigError as exc:
            raise ConfigError(f"chat agent: {exc}") from None
        self.client = OpenAIClient(settings)
        self.retries = retries
        self.temperature, self.max_tokens = temperature, max_tokens
        self.max_failed_calls, self.insights = max_failed_calls, insights
        self.fallback = fallback if fallback is not None else AGENTS.build("insight")
        self._failed_calls = 0

    @property
    def settings(self) -> ClientSettings:
        return self.client.settings

    def __repr__(self) -> str:  # never shows the key
        return f"ChatAgent(base_url={self.settings.base_url!r}, model={self.model!r})"

    # ----- transport ------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, str]]) -> tuple[str, int, int, bool]:
        """(text, prompt tokens, completion tokens, tokens estimated?) of one chat completion."""
        reply = self.client.chat({"model": self.model, "messages": messages, "temperature": self.temperature,
                                  "max_tokens": self.max_tokens})
        if not reply.text:
            raise MalformedReply("the completion has no text content")
        if reply.prompt_tokens is not None:
            return reply.text, reply.prompt_tokens, reply.completion_tokens or 0, False
        return reply.text, estimate_tokens(prompts.render(messages)), estimate_tokens(reply.text), True

    def _ask(self, messages: list[dict[str, str]], parse: Callable[[str], T]) -> tuple[T | None, dict[str, Any]]:
        """Ask with retries; returns (parsed or None, accounting incl. the last error)."""
        acct: dict[str, Any] = {"prompt": 0, "completion": 0, "estimated": False, "error": "", "raw": ""}
        if self._failed_calls >= self.max_failed_calls:
            acct["error"] = f"endpoint disabled after {self._failed_calls} failed calls"
            return None, acct
        messages = list(messages)
        for _ in range(self.retries + 1):
            try:
                text, p, c, est = self.complete(messages)
            except EndpointError as exc:  # the client already retried what can be retried
                acct["error"] = str(exc) if exc.status is not None else f"cannot reach the endpoint: {exc}"
                break
            except MalformedReply as exc:
                acct["error"] = f"not an OpenAI chat completion: {exc}"
                continue
            acct["prompt"] += p
            acct["completion"] += c
            acct["estimated"] = acct["estimated"] or est
            acct["raw"] = text
            try:
                result = parse(text)
            except ReplyError as exc:
                acct["error"] = f"malformed reply: {exc}"
                messages += [{"role": "assistant", "content": text[:4000]}, prompts.retry_message(str(exc))]
                continue
            self._failed_calls = 0
            return result, acct
        if not acct["raw"]:
            self._failed_calls += 1
        return None, acct

    def _fallback(self, method: str, acct: dict[str, Any], *args: Any) -> AgentReply:
        log.warning("chat agent (%s): %s; falling back to the %s agent", self.model, acct["error"],
                    getattr(self.fallback, "name", "offline"))
        reply: AgentReply = getattr(self.fallback, method)(*args)
        reply.agent = f"{self.name}->{getattr(self.fallback, 'name', 'offline')}"
        reply.fallback, reply.error = True, acct["error"]
        reply.prompt_tokens, reply.completion_tokens = acct["prompt"], acct["completion"]
        reply.tokens_estimated = acct["estimated"]
        reply.text = f"[fallback: {acct['error']}]\n{reply.text}"
        return reply

    def _reply(self, kind: str, acct: dict[str, Any], **fields: Any) -> AgentReply:
        return AgentReply(kind=kind, agent=f"{self.name}:{self.model}", prompt_tokens=acct["prompt"],
                          completion_tokens=acct["completion"], tokens_estimated=acct["estimated"], **fields)

    # ----- the agent's steps ------------------------------------------------------------------
    def pick_mixes(self, request: MixRequest) -> AgentReply:
        listed = min(len(request.mixes), 40)
        picks, acct = self._ask(prompts.mix_messages(request, listed),
                                lambda text: parse_picks(text, listed, request.n_picks))
        if picks is None:
            return self._fallback("pick_mixes", acct, request)
        return self._reply("pick", acct, picks=picks, text=strip_thinking(acct["raw"])[:4000])

    def propose(self, request: ProposeRequest) -> AgentReply:
        parsed, acct = self._ask(prompts.propose_messages(request, self.insights),
                                 lambda text: parse_graph(text, request.space))
        if parsed is None:
            return self._fallback("propose", acct, request)
        graph, table, reasoning = parsed
        note = "" if table else " (no edge table in the reply: kept the previous one)"
        return self._reply("propose", acct, graph=graph.to_dict(), edge_table=merge_table(request.edge_table, table),
                           text=(reasoning or strip_thinking(acct["raw"])[:2000]) + note, extras={"edit": "llm"})

    def critique(self, request: ProposeRequest) -> AgentReply:
        """TextGrad's feedback step (no insights)."""
        def parse(text: str) -> str:
            text = strip_thinking(text)
            if not text:
                raise ReplyError("empty feedback")
            return text

        feedback, acct = self._ask(prompts.critique_messages(request), parse)
        if feedback is None:
            return self._fallback("critique", acct, request)
        return self._reply("critique", acct, text=feedback[:4000])

    def edit(self, request: ProposeRequest, feedback: str) -> AgentReply:
        """TextGrad's update step: the graph after applying ``feedback``."""
        parsed, acct = self._ask(prompts.edit_messages(request, feedback),
                                 lambda text: parse_graph(text, request.space))
        if parsed is None:
            return self._fallback("edit", acct, request, feedback)
        graph, _, reasoning = parsed
        return self._reply("edit", acct, graph=graph.to_dict(), text=reasoning or "applied the feedback",
                           extras={"edit": "llm"})


@dataclass
class ChatConfig(AgentConfig):
    """Agent ``chat``: an LLM behind an OpenAI-compatible endpoint (unset endpoint, model and key come
    from TTS_SIM_AGENT_BASE_URL / _MODEL / _API_KEY), falling back to the agent named ``fallback``."""

    agent_class: ClassVar[type] = ChatAgent

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 300.0
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    temperature: float = 0.2
    max_tokens: int = 4096
    max_failed_calls: int = 2
    insights: bool = True  # False: TextGrad's insight-free prompts
    fallback: str = "insight"

    def _fallback_config(self) -> Any:
        config_cls = AGENTS.get(self.fallback)
        if isinstance(config_cls, type) and issubclass(config_cls, ChatConfig):
            raise ConfigError(f"agent 'chat': fallback must be an offline agent, got {self.fallback!r}")
        return config_cls

    def provides(self) -> frozenset[str]:
        """The chat agent's methods that its fallback also has (a failed call must have somewhere to go)."""
        fallback = make_config(self._fallback_config(), {}, f"agent {self.fallback!r}")
        theirs = fallback.provides() if callable(getattr(fallback, "provides", None)) else methods_of(ChatAgent)
        return methods_of(ChatAgent) & theirs

    def build(self) -> ChatAgent:
        self._fallback_config()
        return ChatAgent(self.base_url, self.model, self.api_key, timeout_s=self.timeout_s, retries=self.retries,
                         temperature=self.temperature, max_tokens=self.max_tokens, backoff_s=self.backoff_s,
                         max_backoff_s=self.max_backoff_s, max_failed_calls=self.max_failed_calls,
                         insights=self.insights, fallback=AGENTS.build(self.fallback))


__all__ = ["ENV_API_KEY", "ENV_BASE_URL", "ENV_MODEL", "ChatAgent", "ChatConfig"]
