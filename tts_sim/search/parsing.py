"""Robust parsing of an LLM agent's replies: mix picks, a graph, an edge-probability table.

Models wrap JSON in prose, code fences or ``<think>`` blocks, leave trailing commas, write edges
as pairs, ``"u->v"`` strings or ``{"from", "to"}`` objects, or list predecessors per node. Every
failure raises ``ReplyError`` with one line that is sent back to the model on retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tts_sim.core.graph import Graph, Role
from tts_sim.errors import TtsSimError
from tts_sim.jsonio import loads
from tts_sim.search.space import OUTPUT_ID, SearchSpace


class ReplyError(Exception):
    """The agent's reply cannot be used (the message says why, for the retry prompt)."""


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TABLE_LINE = re.compile(r"([A-Za-z_][\w.-]*)\s*-+>\s*([A-Za-z_][\w.-]*)\s*[:=]\s*([0-9]*\.?[0-9]+)")


def strip_thinking(text: str) -> str:
    text = _THINK.sub("", text)
    if "</think>" in text.lower():  # an opening tag lost upstream: keep what follows the close
        text = re.split(r"</think>", text, flags=re.I)[-1]
    return text.strip()


def _balanced_objects(text: str) -> list[str]:
    """Top-level ``{...}`` substrings, respecting JSON strings."""
    found, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = depth > 0
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found.append(text[start:i + 1])
    return found


def json_objects(text: str) -> list[Any]:
    """Every JSON object found in ``text``: fenced blocks first, then bare ``{...}`` spans."""
    text = strip_thinking(text)
    spans = [m.group(1) for m in _FENCE.finditer(text)]
    spans += _balanced_objects(text)
    out = []
    for span in spans:
        for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
            try:
                out.append(loads(attempt, "reply"))  # jsonio: deep nesting is refused, not a RecursionError
                break
            except TtsSimError:
                continue
    return out


# ----- picks ------------------------------------------------------------------------------------
def parse_picks(text: str, n_options: int, n_picks: int) -> list[int]:
    """Mix numbers from ``{"picks": [...]}`` or, failing that, from ``mix 3``-style mentions."""
    picks: list[int] = []
    for obj in json_objects(text):
        if isinstance(obj, Mapping) and isinstance(obj.get("picks"), list):
            for p in obj["picks"]:
                try:
                    picks.append(int(str(p).strip().rstrip(".")))
                except ValueError:
                    continue
            break
    if not picks:
        picks = [int(m) for m in re.findall(r"\bmix(?:es)?\s*#?\s*(\d+)", strip_thinking(text), re.I)]
    valid = list(dict.fromkeys(p for p in picks if 0 <= p < n_options))
    if not valid:
        raise ReplyError(f"no valid mix numbers (0..{n_options - 1}) found; expected {{\"picks\": [...]}}")
    return valid[:n_picks]


# ----- graphs ------------------------------------------------------------------------------------
def _edge_pairs(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise ReplyError("'edges' must be a list")
    pairs = []
    for e in raw:
        if isinstance(e, (list, tuple)) and len(e) == 2:
            pairs.append((str(e[0]), str(e[1])))
        elif isinstance(e, str) and "->" in e:
            u, v = e.split("->", 1)
            pairs.append((u.strip(), v.strip()))
        elif isinstance(e, Mapping):
            u = e.get("from", e.get("source", e.get("u")))
            v = e.get("to", e.get("target", e.get("v")))
            if u is None or v is None:
                raise ReplyError(f"edge {e!r} lacks from/to")
            pairs.append((str(u), str(v)))
        else:
            raise ReplyError(f"cannot read edge {e!r} (expected [from, to])")
    return pairs


def graph_from_obj(obj: Mapping[str, Any], space: SearchSpace) -> Graph:
    """A validated graph of ``space`` (budget aside) from a JSON object; the output node is made
    the space's output (an assistant running its output model)."""
    body = obj.get("graph", obj)
    if isinstance(body, str):  # a graph given as JSON text inside JSON
        try:
            body = loads(body, "'graph' string")
        except TtsSimError:
            raise ReplyError("'graph' is a string that is not JSON") from None
    if not isinstance(body, Mapping) or not isinstance(body.get("nodes"), list):
        raise ReplyError("no graph with a 'nodes' list")
    output = str(body.get("output", OUTPUT_ID))
    nodes, edges = [], []
    for i, n in enumerate(body["nodes"]):
        if not isinstance(n, Mapping) or "id" not in n:
            raise ReplyError(f"node #{i} needs an 'id'")
        nid = str(n["id"])
        role = str(n.get("role", "assistant")).lower()
        model = str(n.get("model", space.output_model if nid == output else ""))
        if nid == output:
            role, model = Role.ASSISTANT.value, space.output_model
        elif role not in ("assistant", "fuser"):
            raise ReplyError(f"node {nid!r}: role must be 'assistant' or 'fuser', not {role!r}")
        nodes.append((nid, role, model))
        for key in ("predecessors", "preds", "inputs"):
            if isinstance(n.get(key), list):
                edges += [(str(p), nid) for p in n[key]]
    if "edges" in body:
        edges += _edge_pairs(body["edges"])
    if output not in {n[0] for n in nodes}:
        nodes.append((output, Role.ASSISTANT.value, space.output_model))
    try:
        graph = Graph.build(nodes, set(edges), output, space.catalog)
        space.check(graph)
    except TtsSimError as exc:
        raise ReplyError(str(exc)) from None
    return graph


def parse_graph(text: str, space: SearchSpace) -> tuple[Graph, dict[str, float] | None, str]:
    """(graph, edge table or None, reasoning) from a reply; ``ReplyError`` if no usable graph."""
    errors = []
    for obj in json_objects(text):
        if not isinstance(obj, Mapping) or not ("graph" in obj or "nodes" in obj):
            continue
        try:
            graph = graph_from_obj(obj, space)
        except ReplyError as exc:
            errors.append(str(exc))
            continue
        table = table_from_obj(obj) or parse_table_text(strip_thinking(text))
        return graph, table, str(obj.get("reasoning", ""))
    if errors:
        raise ReplyError(f"graph rejected: {errors[0]}")
    raise ReplyError("no JSON object with a 'graph' found")


# ----- edge tables -------------------------------------------------------------------------------
def _prob(value: Any) -> float | None:
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    if p != p:  # NaN
        return None
    return min(1.0, max(0.0, p))


def table_from_obj(obj: Mapping[str, Any]) -> dict[str, float] | None:
    for key in ("edge_probabilities", "edge_table", "probabilities", "table"):
        raw = obj.get(key)
        if raw is not None:
            break
    else:
        return None
    table: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for k, v in raw.items():
            if isinstance(v, Mapping):  # {"u": {"v": p}}
                for k2, v2 in v.items():
                    p = _prob(v2)
                    if p is not None:
                        table[f"{str(k).strip()}->{str(k2).strip()}"] = p
            elif "->" in str(k):
                u, w = str(k).split("->", 1)
                p = _prob(v)
                if p is not None:
                    table[f"{u.strip()}->{w.strip()}"] = p
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        for row in raw:
            if isinstance(row, (list, tuple)) and len(row) == 3:
                p = _prob(row[2])
                if p is not None:
                    table[f"{row[0]}->{row[1]}"] = p
            elif isinstance(row, Mapping):
                u = row.get("from", row.get("source"))
                v = row.get("to", row.get("target"))
                p = _prob(row.get("p", row.get("probability")))
                if u is not None and v is not None and p is not None:
                    table[f"{u}->{v}"] = p
    elif isinstance(raw, str):
        return parse_table_text(raw)
    return table or None


def parse_table_text(text: str) -> dict[str, float] | None:
    """``u -> v: p`` lines (the format the prompt shows)."""
    table = {f"{u}->{v}": min(1.0, float(p)) for u, v, p in _TABLE_LINE.findall(text)}
    return table or None


def merge_table(old: Mapping[str, float], new: Mapping[str, float] | None) -> dict[str, float]:
    """The old table with the entries the agent returned for known edges replaced."""
    merged = dict(old)
    for k, p in (new or {}).items():
        if k in merged:
            merged[k] = p
    return merged
