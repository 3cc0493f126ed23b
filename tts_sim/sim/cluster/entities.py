"""Entities of the cluster simulator, apart from the policies that schedule them.

A *query* is one run of the graph (its state is a small list kept by the run: id, arrival time,
missing predecessors per node). A *request* is one node of one query on one device; static
batching handles requests as plain ``(sequence number, query state, node index)`` tuples for
speed, continuous batching as ``Request`` objects that carry their KV-cache and decode progress.
A *batch* record is what the trace shows on a device's track.
"""

from __future__ import annotations

from dataclasses import dataclass


class Request:
    """One node of one query on a continuous-batching replica."""

    __slots__ = ("seq", "q", "j", "model", "prompt", "decode", "generated", "ctx0", "joined", "epoch",
                 "alloc_tokens", "own_blocks", "prefix", "todo", "start", "first_token")

    def __init__(self, seq: int, q: list, j: int, model: int, prompt: int, decode: int) -> None:
        self.seq, self.q, self.j, self.model = seq, q, j, model
        self.prompt = prompt  # prompt tokens
        self.decode = decode  # reply tokens in all
        self.generated = 0  # reply tokens generated when it last joined the running batch
        self.ctx0 = 0  # tokens in its KV cache when it joined the running batch
        self.joined = 0  # the device's decode-step counter when it joined
        self.epoch = 0  # bumped on preemption: stale heap entries are skipped
        self.alloc_tokens = 0  # tokens its allocated blocks (shared prefix included) can hold
        self.own_blocks = 0  # blocks it holds itself (not the shared prefix)
        self.prefix: int | None = None  # query id of the prefix entry it references
        self.todo = 0  # prompt tokens still to prefill (chunked prefill)
        self.start = -1.0  # first admission time
        self.first_token = -1.0  # end of its (first) prefill


@dataclass(frozen=True)
class BatchRecord:
    """One batch (static) or one iteration / run of decode steps (continuous) on a device."""

    device: str
    kind: str  # "batch" | "prefill" | "decode" | "mixed"
    start: float
    end: float
    requests: tuple[tuple[int, str], ...]  # (query id, node id)
