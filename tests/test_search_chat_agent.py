"""ChatAgent against a real HTTP server on 127.0.0.1 (started here), and reply parsing."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.search_fakes import FakeEvaluator
from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.search import SearchSpace, run_search
from tts_sim.search.agent_api import MixRequest
from tts_sim.search.chat_agent import ChatAgent
from tts_sim.search.mixes import available_units, enumerate_mixes, unit_costs
from tts_sim.search.parsing import ReplyError, parse_graph, parse_picks, table_from_obj

SPACE = SearchSpace("math", 18.0, max_nodes=4)

GOOD_GRAPH = {"nodes": [{"id": "n0", "role": "assistant", "model": "gemma-3-1b"},
                        {"id": "n1", "role": "assistant", "model": "llama-3.2-1b"},
                        {"id": "n2", "role": "fuser", "model": "gemma-3-1b"},
                        {"id": "out", "role": "assistant", "model": "llama-3.2-3b"}],
              "edges": [["n0", "n2"], ["n1", "n2"], ["n2", "out"], ["n1", "out"]], "output": "out"}


def completion(text: str, usage: bool = True) -> bytes:
    body: dict = {"id": "x", "object": "chat.completion",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    if usage:
        body["usage"] = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    return json.dumps(body).encode()


class Server:
    """Serves ``reply(request_json, headers) -> (status, body bytes)``; records requests."""

    def __init__(self, reply: Callable[[dict, dict], tuple[int, bytes]]) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(data)
                outer.headers.append(dict(self.headers))
                status, body = reply(data, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _agent(url: str, **kw) -> ChatAgent:
    return ChatAgent(url, "test-model", "sk-test", timeout_s=5, backoff_s=0, **kw)


def _mix_request() -> MixRequest:
    return MixRequest(SPACE, tuple(enumerate_mixes(SPACE)), unit_costs(SPACE), available_units(SPACE), 2,
                      "accuracy", 0)


def _user_text(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")


def _smart_reply(request: dict, headers: dict) -> tuple[int, bytes]:
    """Good replies: picks for the mix prompt, a graph for each feedback round."""
    text = _user_text(request)
    if "pick the" in text:
        return 200, completion('<think>MATH likes ensembles</think>\n```json\n{"reasoning": "r", "picks": [1, 0]}\n```')
    body = {"reasoning": "widen", "graph": GOOD_GRAPH, "edge_probabilities": {"n0->n2": 0.7, "n1->n2": 0.6}}
    return 200, completion("Here is my answer:\n" + json.dumps(body, indent=1) + "\nDone.")


def test_agent_reinforce_with_a_chat_agent_uses_the_endpoint(caplog):
    with Server(_smart_reply) as server:
        result = run_search("agent-reinforce", SPACE, FakeEvaluator("math", 80), 8, seed=0,
                            options={"agent": "chat", "agent_options": {"base_url": server.url, "model": "m",
                                                                       "api_key": "sk-1", "backoff_s": 0}})
    assert result.cost.agent_fallbacks == 0 and not result.cost.tokens_estimated
    assert result.cost.agent_prompt_tokens == 100 * result.cost.agent_calls
    assert result.cost.agent_completion_tokens == 20 * result.cost.agent_calls
    assert server.headers[0]["Authorization"] == "Bearer sk-1"
    assert server.requests[0]["model"] == "m"
    feedback = _user_text(server.requests[1])
    assert "Last graph" in feedback and "Edge probabilities:" in feedback and "score" in feedback
    assert "preds:" in feedback  # the graph as text, one line per node
    assert "Insight 1" in server.requests[1]["messages"][0]["content"]
    keys = {t.graph_key for t in result.trials}
    from tts_sim.core.identity import graph_key

    assert graph_key(SPACE.repair(Graph.from_dict(GOOD_GRAPH))) in keys
    assert "api_key" not in json.dumps(result.config)


def test_latency_objective_puts_latency_in_the_feedback():
    with Server(_smart_reply) as server:
        run_search("agent-reinforce", SPACE, FakeEvaluator("math", 80, latency=True), 6, seed=0, objective="p95<=4",
                   options={"agent": "chat", "agent_options": {"base_url": server.url, "model": "m", "backoff_s": 0}})
    feedback = _user_text(server.requests[1])
    assert "latency" in feedback and "p95 latency <= 4 s" in feedback


def test_malformed_reply_is_retried_with_the_reason():
    replies = iter([completion("I believe the best graph is a wide one."), completion(json.dumps({"picks": [2]}))])
    with Server(lambda r, h: (200, next(replies))) as server:
        reply = _agent(server.url).pick_mixes(_mix_request())
    assert reply.picks == [2] and not reply.fallback
    assert len(server.requests) == 2
    assert "could not be used" in server.requests[1]["messages"][-1]["content"]
    assert reply.prompt_tokens == 200


@pytest.mark.parametrize("reply", [
    lambda r, h: (200, completion("garbage, no JSON here")),
    lambda r, h: (200, b"<html>not json</html>"),
    lambda r, h: (500, b'{"error": "overloaded"}'),
    lambda r, h: (200, completion(json.dumps({"graph": {"nodes": [{"id": "n0", "model": "gpt-9"}], "edges": []}}))),
])
def test_garbage_falls_back_to_the_insight_agent_with_a_warning(reply, caplog):
    with Server(reply) as server, caplog.at_level(logging.WARNING, logger="tts_sim.search.agent"):
        agent = _agent(server.url, retries=1)
        out = agent.pick_mixes(_mix_request())
    assert out.fallback and out.agent == "chat->insight" and out.picks
    assert out.error and "falling back" in caplog.text
    assert len(server.requests) == 2  # one try + one retry


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_never_loses_the_run(caplog):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with caplog.at_level(logging.WARNING, logger="tts_sim.search.agent"):
        result = run_search("agent-reinforce", SPACE, FakeEvaluator("math", 80), 8, seed=0,
                            options={"agent": "chat", "agent_options": {"base_url": url, "model": "m",
                                                                       "retries": 1, "backoff_s": 0}})
    assert result.cost.evaluations == 8 and result.heldout is not None
    assert result.cost.agent_fallbacks == result.cost.agent_calls > 0
    assert "cannot reach" in caplog.text
    assert "endpoint disabled" in result.agent_log[-1]["error"]  # stopped hammering a dead endpoint


def test_missing_configuration_is_a_clear_error(monkeypatch):
    for var in ("TTS_SIM_AGENT_BASE_URL", "TTS_SIM_AGENT_MODEL", "TTS_SIM_AGENT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="TTS_SIM_AGENT_BASE_URL"):
        ChatAgent()
    with pytest.raises(ConfigError, match="TTS_SIM_AGENT_MODEL"):
        ChatAgent("http://127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match="http"):
        ChatAgent("ftp://x", "m")


def test_configuration_from_the_environment(monkeypatch):
    with Server(_smart_reply) as server:
        monkeypatch.setenv("TTS_SIM_AGENT_BASE_URL", server.url)
        monkeypatch.setenv("TTS_SIM_AGENT_MODEL", "env-model")
        monkeypatch.setenv("TTS_SIM_AGENT_API_KEY", "sk-env")
        agent = ChatAgent(backoff_s=0)
        reply = agent.pick_mixes(_mix_request())
        assert reply.picks == [1, 0]
    assert server.requests[0]["model"] == "env-model" and server.headers[0]["Authorization"] == "Bearer sk-env"
    assert server.requests[0]["messages"][0]["role"] == "system"
    assert "sk-env" not in repr(agent)


# ----- parsing ----------------------------------------------------------------------------------
def test_parse_graph_accepts_common_shapes():
    text = ("<think>long musing {not json}</think>Sure!\n```json\n"
            '{"graph": {"nodes": [{"id": "a", "model": "gemma-3-1b"}, {"id": "b", "model": "llama-3.2-1b",'
            ' "role": "Fuser", "predecessors": ["a"]}, {"id": "out", "model": "gpt-4"}],'
            ' "edges": ["b->out", {"from": "a", "to": "out"}],},'
            ' "edge_probabilities": {"a": {"b": 0.9}, "b->out": "0.8", "a->out": "high"}}\n```')
    graph, table, _ = parse_graph(text, SPACE)
    assert graph.edges == {("a", "b"), ("b", "out"), ("a", "out")}
    assert graph.node("b").role.value == "fuser"
    assert graph.node("out").model == SPACE.output_model  # the output node is the space's
    assert table == {"a->b": 0.9, "b->out": 0.8}


def test_parse_graph_reads_a_text_table_and_pair_lists():
    text = json.dumps({"nodes": GOOD_GRAPH["nodes"], "edges": GOOD_GRAPH["edges"]}) + "\nn0 -> n2: 0.75\nn1->out = 1.5"
    graph, table, _ = parse_graph(text, SPACE)
    assert len(graph.edges) == 4 and table == {"n0->n2": 0.75, "n1->out": 1.0}
    assert table_from_obj({"table": [["n0", "n1", 0.2], {"from": "n1", "to": "out", "p": 0.4}]}) == {
        "n0->n1": 0.2, "n1->out": 0.4}


@pytest.mark.parametrize("text, message", [
    ("no json at all", "no JSON object"),
    ('{"graph": {"nodes": [{"id": "n0", "model": "llama-3.1-70b"}], "edges": [["n0", "out"]]}}', "not in the pool"),
    ('{"graph": {"nodes": [{"id": "n0", "model": "gemma-3-1b"}], "edges": [["n0", "n0"]]}}', "feed itself"),
    ('{"graph": {"nodes": [{"id": "n0", "model": "gemma-3-1b", "role": "boss"}], "edges": []}}', "role"),
])
def test_parse_graph_errors_name_the_problem(text, message):
    with pytest.raises(ReplyError, match=message):
        parse_graph(text, SPACE)


def test_parse_picks():
    assert parse_picks('{"picks": ["3", 1, 99, 1]}', 10, 3) == [3, 1]
    assert parse_picks("I pick mix 4 and mix #2.", 10, 3) == [4, 2]
    with pytest.raises(ReplyError):
        parse_picks('{"picks": [42]}', 10, 3)
