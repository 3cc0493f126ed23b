"""The simulated timeline in Chrome's Trace Event Format (JSON), which Perfetto and chrome://tracing open.

Process 1 ("devices") has one thread per device: its batches (static) or iterations (continuous:
``prefill``, runs of ``decode`` steps, chunked-prefill ``mixed`` steps) as complete events whose
``args.requests`` lists the requests served (``q<query>/<node>``). Process 2 ("queries") has one
thread per query: its nodes, from admission to the end of their reply. Slices on one thread must
nest, so a node overlapping another of its query without nesting goes to an extra lane (a thread
named ``query N lane k``). Times are microseconds of simulated time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError
from tts_sim.sim.cluster.simulator import SimulationResult

DEVICES_PID, QUERIES_PID = 1, 2
US = 1e6


def _meta(pid: int, tid: int | None, kind: str, name: str) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "M", "pid": pid, "name": kind, "args": {"name": name}}
    if tid is not None:
        event["tid"] = tid
    return event


def _lane(lanes: list[list[tuple[float, float]]], start: float, end: float) -> int:
    """The first lane where [start, end] is disjoint from or nested in the open slices (new if none)."""
    for k, stack in enumerate(lanes):
        while stack and stack[-1][1] <= start:
            stack.pop()
        if not stack or end <= stack[-1][1]:
            return k
    lanes.append([])
    return len(lanes) - 1


def trace_events(result: SimulationResult) -> dict[str, Any]:
    """The trace of a ``record=True`` simulation."""
    if result.timeline is None or result.batches is None:
        raise ConfigError("a trace needs a simulation run with record=True")
    events: list[dict[str, Any]] = [_meta(DEVICES_PID, None, "process_name", "devices"),
                                    _meta(QUERIES_PID, None, "process_name", "queries")]
    device_tid: dict[str, int] = {}
    for b in result.batches:
        tid = device_tid.setdefault(b.device, len(device_tid) + 1)
        events.append({"ph": "X", "pid": DEVICES_PID, "tid": tid, "name": b.kind, "cat": "batch",
                       "ts": b.start * US, "dur": (b.end - b.start) * US,
                       "args": {"requests": [f"q{q}/{n}" for q, n in b.requests], "size": len(b.requests)}})
    for label, tid in device_tid.items():
        events.append(_meta(DEVICES_PID, tid, "thread_name", label))
    by_query: dict[int, list] = {}
    for e in result.timeline:
        by_query.setdefault(e.query, []).append(e)
    next_tid = 1
    for query in sorted(by_query):
        lanes: list[list[tuple[float, float]]] = []  # per lane: stack of open (start, end) intervals
        for e in sorted(by_query[query], key=lambda e: (e.start, -e.end)):
            k = _lane(lanes, e.start, e.end)
            lanes[k].append((e.start, e.end))
            events.append({"ph": "X", "pid": QUERIES_PID, "tid": next_tid + k, "name": e.node, "cat": "node",
                           "ts": e.start * US, "dur": (e.end - e.start) * US,
                           "args": {"device": e.device, "batch": e.batch}})
        for k in range(len(lanes)):
            name = f"query {query}" if k == 0 else f"query {query} lane {k + 1}"
            events.append(_meta(QUERIES_PID, next_tid + k, "thread_name", name))
        next_tid += len(lanes)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"cluster": result.latency.cluster, "load": result.latency.load,
                          "scheduler": result.latency.scheduler, "queries": result.latency.n_queries}}


def write_trace(result: SimulationResult, path: str | Path) -> Path:
    """Write ``trace_events(result)`` to ``path`` (JSON)."""
    path = Path(path)
    path.write_text(json.dumps(trace_events(result)))
    return path
