"""Static batching: a device serves one padded batch at a time, until its longest reply is done.

A device takes up to ``max_batch`` waiting requests of the model whose oldest request waited
longest (FIFO); the batch is prefilled at its longest prompt and decodes for its longest reply
at full batch size (see ``tts_sim/cluster/simulator.py`` for the timing rules), plus the
predictor's model-switch cost when the device's previous batch was another model's. A device forms a
batch only after every event of its instant: a wake-up is a plain SimPy event triggered at that
instant, processed after the batch completions and arrivals already scheduled for it (they were
all scheduled earlier, and SimPy processes same-time, same-priority events first-in first-out).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simpy.events import Event, Timeout

from tts_sim.sim.cluster.entities import BatchRecord

if TYPE_CHECKING:
    from tts_sim.sim.cluster.simulator import _Run


class StaticScheduler:
    name = "static"

    def __init__(self, same_prompt_only: bool = False) -> None:
        self.same_prompt_only = same_prompt_only

    def replica(self, run: _Run, device: int) -> StaticReplica:
        return StaticReplica(run, device, self.same_prompt_only)

    def describe(self) -> str:
        return "static batching" + (", same prompts only" if self.same_prompt_only else "")


class StaticReplica:
    """One device: per-model FIFO queues and one SimPy process serving batches."""

    def __init__(self, run: _Run, i: int, same_prompt_only: bool = False) -> None:
        self.run, self.i, self.same_prompt_only = run, i, same_prompt_only
        self.queues: dict[int, deque] = {k: deque() for k, devs in enumerate(run.replicas) if i in devs}
        self.sleeping: Event | None = None
        run.env.process(self._serve())

    def add(self, entry: tuple, model: int) -> None:
        self.queues[model].append(entry)
        wake = self.sleeping
        if wake is not None:
            self.sleeping = None
            wake.succeed()

    def _serve(self) -> Generator[Event, object, None]:
        run, i = self.run, self.i
        env, queues, max_batch = run.env, self.queues, run.sim.max_batch
        service = run.sim.service_s
        node_prompt, succ, output = run.node_prompt, run.succ, run.output
        node_decode, node_dist, lengths = run.node_decode, run.node_dist, run.lengths
        fixed = node_decode[0] if lengths is None and len(set(node_decode)) == 1 else None
        model_names, load, enqueue = run.model_names, run.load, run.enqueue
        timeline, batches, label, node_ids = run.timeline, run.batches, run.labels[i], run.node_ids
        kv_per_token, kv_free = run.kv_bytes_per_token, run.kv_free_bytes[i]
        cache: dict[tuple[int, int, int, int], tuple[float, float]] = {}
        switch = {kk: run.sim.switch_s(model_names[kk], i) for kk in queues}
        previous = -1  # the model of the device's previous batch
        peak = 0.0
        while True:
            dq = None
            oldest = -1
            k = -1
            for kk, d in queues.items():  # the model whose oldest request waited longest
                if d and (dq is None or d[0][0] < oldest):
                    dq, oldest, k = d, d[0][0], kk
            if dq is None:
                self.sleeping = wake = Event(env)
                yield wake
                continue
            batch = self._same_prompt(dq, max_batch) if self.same_prompt_only else \
                [dq.popleft() for _ in range(min(max_batch, len(dq)))]
            b = len(batch)
            prompt = max(node_prompt[r[2]] for r in batch) if b > 1 else node_prompt[batch[0][2]]
            if fixed is not None:
                decode = fixed
            elif lengths is None:
                decode = max(node_decode[r[2]] for r in batch)
            else:  # the batch decodes until its longest reply is done
                decode = max(node_decode[r[2]] if node_dist[r[2]] is None else lengths.draw(node_dist[r[2]])
                             for r in batch)
            key = (k, prompt, decode, b)
            hit = cache.get(key)
            if hit is None:
                seconds = service(model_names[k], i, prompt, decode, b)
                kv = b * (prompt + decode) * kv_per_token[k] / kv_free if kv_free > 0 else 0.0
                hit = cache[key] = (seconds, kv)
                run.used.add((model_names[k], i))
            seconds = hit[0] + (switch[k] if previous not in (-1, k) else 0.0)
            previous = k
            if hit[1] > peak:
                peak = run.kv_peak[i] = hit[1]
            start = env.now
            yield Timeout(env, seconds)
            run.busy[i] += seconds
            run.n_batches += 1
            run.n_calls += b
            run.prefill_tokens += b * prompt
            load[i] -= b
            if batches is not None:
                batches.append(BatchRecord(label, "batch", start, env.now,
                                           tuple((q[0], node_ids[j]) for _, q, j in batch)))
            for _, q, j in batch:
                if timeline is not None:
                    run.log(q, j, label, start, env.now, b)
                if j == output:
                    run.finish(q)
                else:
                    for s in succ[j]:
                        q[s] -= 1
                        if not q[s]:
                            enqueue(q, s - 2)
            if load[i] and env.peek() == env.now:  # let same-instant completions elsewhere join the next batch
                wake = Event(env)
                wake.succeed()
                yield wake

    def _same_prompt(self, dq: deque[tuple], max_batch: int) -> list[tuple]:
        """The oldest request and, in arrival order, up to ``max_batch - 1`` others with the same prompt;
        the rest keep their places. Same prompt: nodes of one query with the same kind of prompt on the
        same inputs (``node_signature``: every node answering the question directly, or the refiners of
        one node); fusion nodes with inputs of their own run alone. Requests of different queries never
        batch (the questions' own token lengths are not simulated)."""
        first = dq.popleft()
        batch: list[tuple] = [first]
        skipped: list[tuple] = []
        signature, query = self.run.node_signature, first[1][0]
        sig = signature[first[2]]
        while dq and len(batch) < max_batch:
            entry = dq.popleft()
            (batch if entry[1][0] == query and signature[entry[2]] == sig else skipped).append(entry)
        dq.extendleft(reversed(skipped))
        return batch


@dataclass(frozen=True)
class StaticConfig:
    """Static batching: today's behaviour, kept for engines that batch statically (the CPU engine).
    ``same_prompt_only``: the engine batches only requests with equal prompts (onnxruntime-genai on
    the CPU pads nothing: its backend batches equal prompt lengths only), so a level of fusion nodes
    runs one request after the other."""

    name: str = "static"
    same_prompt_only: bool = False

    def build(self) -> StaticScheduler:
        return StaticScheduler(self.same_prompt_only)
