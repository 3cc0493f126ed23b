"""ChatAgent: the paper's LLM agent over any OpenAI-compatible chat-completions endpoint.

Configuration comes from arguments or the environment (``TTS_SIM_AGENT_BASE_URL``,
``TTS_SIM_AGENT_MODEL``, ``TTS_SIM_AGENT_API_KEY``). Replies are parsed robustly (``parsing``); a
malformed reply is sent back with the reason and retried. When the endpoint is unreachable or keeps
answering garbage, the call falls back to the offline agent (InsightAgent by default) with a logged
warning, and the reply is marked ``fallback`` - the search goes on. Only the standard library's
``urllib`` is used.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.jsonio import loads
from tts_sim.search import prompts
from tts_sim.search.agent_api import AgentReply, MixRequest, ProposeRequest, estimate_tokens
from tts_sim.search.parsing import ReplyError, merge_table, parse_graph, parse_picks, strip_thinking

log = logging.getLogger("tts_sim.search.agent")

ENV_BASE_URL = "TTS_SIM_AGENT_BASE_URL"
ENV_MODEL = "TTS_SIM_AGENT_MODEL"
ENV_API_KEY = "TTS_SIM_AGENT_API_KEY"

T = TypeVar("T")


class EndpointError(Exception):
    """The endpoint could not be reached or did not answer with a chat completion."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChatAgent:
    """An LLM agent behind ``{base_url}/chat/completions``."""

    name = "chat"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 timeout_s: float = 300.0, retries: int = 2, temperature: float = 0.2, max_tokens: int = 4096,
                 backoff_s: float = 1.0, max_failed_calls: int = 2, insights: bool = True,
                 fallback: Any = None) -> None:
        url = (base_url or os.environ.get(ENV_BASE_URL) or "").strip().rstrip("/")
        if not url:
            raise ConfigError(f"the chat agent needs an endpoint: pass base_url or set {ENV_BASE_URL}")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"chat agent base URL must start with http:// or https://, got {url!r}")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model or os.environ.get(ENV_MODEL) or ""
        if not self.model:
            raise ConfigError(f"the chat agent needs a model name: pass model or set {ENV_MODEL}")
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
        if retries < 0 or timeout_s <= 0:
            raise ConfigError("chat agent: retries must be >= 0 and timeout_s > 0")
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.temperature, self.max_tokens = temperature, max_tokens
        self.max_failed_calls, self.insights = max_failed_calls, insights
        if fallback is None:
            from tts_sim.search.agents import InsightAgent

            fallback = InsightAgent()
        self.fallback = fallback
        self._failed_calls = 0

    def __repr__(self) -> str:  # never shows the key
        return f"ChatAgent(url={self.url!r}, model={self.model!r})"

    # ----- transport ------------------------------------------------------------------------
    def complete(self, messages: list[dict[str, str]]) -> tuple[str, int, int, bool]:
        """(text, prompt tokens, completion tokens, tokens estimated?) of one chat completion."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace").strip()
            retryable = exc.code == 429 or exc.code >= 500
            raise EndpointError(f"HTTP {exc.code} from {self.url}: {detail or exc.reason}", retryable) from None
        except urllib.error.URLError as exc:
            raise EndpointError(f"cannot reach {self.url}: {exc.reason}") from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise EndpointError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
        try:
            data = loads(raw, "the endpoint's answer")
            text = data["choices"][0]["message"]["content"]
        except (TtsSimError, KeyError, IndexError, TypeError):
            raise ReplyError("the endpoint's answer is not an OpenAI chat completion") from None
        if not isinstance(text, str):
            raise ReplyError("the completion has no text content")
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            return text, usage["prompt_tokens"], int(usage.get("completion_tokens") or 0), False
        return text, estimate_tokens(prompts.render(messages)), estimate_tokens(text), True

    def _ask(self, messages: list[dict[str, str]], parse: Callable[[str], T]) -> tuple[T | None, dict[str, Any]]:
        """Ask with retries; returns (parsed or None, accounting incl. the last error)."""
        acct: dict[str, Any] = {"prompt": 0, "completion": 0, "estimated": False, "error": "", "raw": ""}
        if self._failed_calls >= self.max_failed_calls:
            acct["error"] = f"endpoint disabled after {self._failed_calls} failed calls"
            return None, acct
        messages = list(messages)
        for attempt in range(self.retries + 1):
            try:
                text, p, c, est = self.complete(messages)
            except EndpointError as exc:
                acct["error"] = str(exc)
                if not exc.retryable:
                    break
                if attempt < self.retries and self.backoff_s > 0:
                    time.sleep(self.backoff_s * (attempt + 1))
                continue
            except ReplyError as exc:
                acct["error"] = str(exc)
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
