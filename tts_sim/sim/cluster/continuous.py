"""Continuous (iteration-level) batching, as vLLM serves: requests join and leave every decode step.

One device runs one engine per model it hosts; an *iteration* of the device runs one step of every
engine with work (co-located engines time-share the GPU, so their step times add up). Rules,
pinned down for exact-timeline tests:

- Admission (FCFS per engine): a waiting request is admitted while the engine runs fewer than
  ``max_batch`` requests (default ``MAX_NUM_SEQS``, vLLM's 256) and the free KV blocks hold its
  context (prompt, plus the reply tokens it had generated if it was preempted). Blocks are
  ``block_size`` tokens; an engine's blocks are its share of the device memory left after every
  hosted model's weights (shared in proportion to the KV cache placement reserved for each model).
- Without chunked prefill: if any engine admits requests, the iteration prefills them (all
  admitted requests of an engine in one prefill pass at their mean prompt length) while the
  running batch waits; otherwise it is a decode step of every running request. A request is
  done after its prefill and as many decode steps as its reply has tokens (as in static batching).
- With chunked prefill (token budget T per engine and step): running requests decode one token
  each, the rest of the budget goes to prompt chunks (requests being prefilled first, then newly
  admitted ones); the step costs the engine's prefill pass over its chunks plus its decode step.
- Decode steps between two changes of the running batches are simulated as one event (``k``
  steps at the step time of the mean context, as static batching does). A request that arrives
  in the middle joins at the next step boundary; decisions wait for every event of their instant.
- KV growth: when the next step needs a block and none is free (evictable cached prefixes are
  evicted first), the engine preempts its most recently admitted request (recompute: its blocks
  are freed, it waits at the head of the queue and prefills its prompt and generated tokens again).
- Prefix caching: the question prompt (``A`` tokens, whole blocks only) is shared by every node of
  a query; on an engine the first of them prefills it and the others reference its blocks, also
  after it finished (the blocks stay cached, evictable least-recently-used, up to ``PREFIX_LRU``
  entries per engine). Saved prefill tokens are counted.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simpy.events import Event, Timeout

from tts_sim.errors import ConfigError
from tts_sim.sim.cluster.entities import BatchRecord, Request
from tts_sim.sim.cluster.schedulers import kv_block_budget

if TYPE_CHECKING:
    from tts_sim.sim.cluster.simulator import _Run

PREFIX_LRU = 64
IDLE, SETTLE, STEP, DECODE, BUSY = range(5)


#: Sequences an engine runs at once unless the user sets ``max_batch``: vLLM's ``--max-num-seqs``
#: default (256); the KV cache, not this, usually limits the batch.
MAX_NUM_SEQS = 256


class ContinuousScheduler:
    name = "continuous"
    kv_admission = True  # placement reserves one longest sequence; admission uses what memory is left
    default_max_batch = MAX_NUM_SEQS

    def __init__(self, config: ContinuousConfig) -> None:
        self.config = config

    def replica(self, run: _Run, device: int) -> ContinuousReplica:
        return ContinuousReplica(run, device, self.config)

    def describe(self) -> str:
        c = self.config
        chunk = f", chunked prefill {c.chunked_prefill} tokens/step" if c.chunked_prefill else ""
        return f"continuous batching (KV blocks of {c.block_size} tokens, prefix caching " \
               f"{'on' if c.prefix_caching else 'off'}{chunk})"


class _Engine:
    """One model's serving engine on one device: queues and its share of the KV cache.

    KV blocks in use = the blocks of each running request's context (``ceil(context / block)``,
    less the shared prefix blocks it references) + cached prefixes (referenced or evictable) +
    the prompts of admitted requests still being prefilled (chunked prefill). Contexts grow by
    one token per decode step, so the count is computed when needed, not stored per request.
    """

    __slots__ = ("k", "name", "waiting", "running", "prefilling", "new", "cap", "prefix", "evictable",
                 "evictable_blocks", "prefix_total", "shared", "pending", "base", "prefix_blocks",
                 "kv_per_block", "decode_cache", "prefill_cache")

    def __init__(self, k: int, name: str, cap: int, prefix_blocks: int, kv_per_block: float) -> None:
        self.k, self.name = k, name
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.prefilling: list[Request] = []
        self.new: list[Request] = []
        self.cap = cap  # KV blocks
        self.prefix: dict[int, list[int]] = {}  # query id -> [blocks, references]
        self.evictable: OrderedDict[int, int] = OrderedDict()  # unreferenced prefixes, LRU first
        self.evictable_blocks = 0
        self.prefix_total = 0  # blocks of all cached prefixes (referenced or not)
        self.shared = 0  # prefix blocks referenced by running requests (counted in prefix_total)
        self.pending = 0  # blocks of admitted requests not yet running (chunked prefill)
        self.base = 0  # sum over running requests of ctx0 - joined (context sum = base + n * step)
        self.prefix_blocks = prefix_blocks
        self.kv_per_block = kv_per_block
        self.decode_cache: dict[tuple[int, int], float] = {}
        self.prefill_cache: dict[tuple[int, int], float] = {}

    def used(self, step: int, bs: int) -> int:
        """Blocks in use at decode step ``step`` (exact), evictable prefixes included."""
        return (sum(-(-(r.ctx0 + step - r.joined) // bs) for r in self.running) - self.shared
                + self.prefix_total + self.pending)

    def bound(self, step: int, bs: int) -> float:
        """An upper bound of ``used`` in O(1): each context wastes less than one block."""
        n = len(self.running)
        return (self.base + n * step) / bs + n - self.shared + self.prefix_total + self.pending


class ContinuousReplica:
    """One device serving its engines with iteration-level batching (callback-driven, no process)."""

    def __init__(self, run: _Run, i: int, config: ContinuousConfig) -> None:
        self.run, self.i, self.env = run, i, run.env
        self.bs = config.block_size
        self.chunk = config.chunked_prefill
        self.max_batch = run.sim.max_batch
        self.label = run.labels[i]
        hosted = [k for k, devs in enumerate(run.replicas) if i in devs]
        demand = {k: run.kv_demand[k] for k in hosted}
        total = sum(demand.values()) or 1.0
        prefix = run.prefix_tokens // self.bs if config.prefix_caching else 0
        self.engines: dict[int, _Engine] = {}
        for k in hosted:
            per_token = run.kv_bytes_per_token[k]
            cap = kv_block_budget(run.kv_free_bytes[i] * demand[k] / total, self.bs, per_token)
            self.engines[k] = _Engine(k, run.model_names[k], cap, prefix, self.bs * per_token)
        self.engine_list = list(self.engines.values())
        self.active: list[_Engine] = []  # engines with running requests
        self.n_waiting = 0  # requests waiting on this device, all engines
        self.n_running = 0
        self.kv_bytes = sum(e.cap * e.kv_per_block for e in self.engine_list)
        self.kv_peak_bytes = 0.0
        self.step = 0  # decode steps done on this device
        self.heap: list[tuple[int, int, int, Request]] = []  # (finish step, seq, epoch, request)
        self.state = IDLE
        self.gen = 0  # generation of the pending iteration-end event
        self.t0 = 0.0
        self.dt = 0.0
        self.steps = 0
        self.cut = False
        self.chunks: list[tuple[Request, int]] = []

    # ----- arrivals ----------------------------------------------------------------------------
    def add(self, entry: tuple, model: int) -> None:
        seq, q, j = entry
        run = self.run
        d = run.node_dist[j]  # run.decode_of(j), inlined (once per request)
        req = Request(seq, q, j, model, run.node_prompt[j],
                      run.node_decode[j] if d is None or run.lengths is None else run.lengths.draw(d))
        eng = self.engines[model]
        eng.waiting.append(req)
        self.n_waiting += 1
        state = self.state
        if state == IDLE:
            self._settle()
        elif state == DECODE and not self.cut and len(eng.running) + len(eng.prefilling) < self.max_batch:
            self._cut_span()

    def _settle(self) -> None:
        """Plan the next iteration once every event of this instant has been processed."""
        self.state = SETTLE
        ev = Event(self.env)
        ev.callbacks.append(self._on_settle)
        ev.succeed()

    def _on_settle(self, _ev: Event) -> None:
        self._plan()

    def _span(self, pre: float, dt: float, steps: int, state: int = 0) -> None:
        """A prefill of ``pre`` seconds (0: none) then ``steps`` decode steps of ``dt`` seconds."""
        self.state = state or DECODE
        self.gen += 1
        self.t0, self.dt, self.steps, self.cut = self.env.now + pre, dt, steps, False
        Timeout(self.env, pre + dt * steps, self.gen).callbacks.append(self._on_end)

    def _cut_span(self) -> None:
        """A request arrived: end the span at the next decode-step boundary (the prefill's end
        if it arrived during the prefill)."""
        now = self.env.now
        if now < self.t0 or self.dt <= 0:
            done = 0
        else:
            done = math.ceil((now - self.t0) / self.dt - 1e-9)
        if done >= self.steps:
            return
        self.cut = True
        self.steps = done
        self.gen += 1
        Timeout(self.env, max(0.0, self.t0 + done * self.dt - now), self.gen).callbacks.append(self._on_end)

    # ----- planning ----------------------------------------------------------------------------
    def _plan(self) -> None:
        if self.chunk is not None:
            self._plan_chunked()
            return
        if not self.n_waiting:
            if self.n_running:
                self._start_span()
            else:
                self.state = IDLE
            return
        seconds = 0.0
        joined: list[Request] = []
        max_batch = self.max_batch
        for eng in self.engine_list:
            waiting = eng.waiting
            if not waiting:
                continue
            room = max_batch - len(eng.running)
            first = len(joined)
            tokens = 0
            while waiting and room > 0:
                todo = self._admit(eng, waiting[0])
                if todo < 0:
                    break
                req = waiting.popleft()
                req.todo = todo
                tokens += todo
                joined.append(req)
                eng.pending += req.own_blocks  # (until it joins: the next admission sees its blocks)
                room -= 1
            if len(joined) > first:
                seconds += self._prefill_s(eng, tokens, len(joined) - first)
        if not joined:
            if self.n_running:
                self._start_span()
            else:
                self.state = IDLE
            return
        # prefill them, then decode: one event unless a request arrives meanwhile
        self.n_waiting -= len(joined)
        run = self.run
        now = self.env.now
        run.busy[self.i] += seconds
        run.n_batches += 1
        engines = self.engines
        for req in joined:
            run.prefill_tokens += req.todo
            self._join(engines[req.model], req, now + seconds)
        if run.batches is not None:
            run.batches.append(BatchRecord(self.label, "prefill", now, now + seconds,
                                           tuple((r.q[0], run.node_ids[r.j]) for r in joined)))
        self._start_span(seconds)

    def _plan_chunked(self) -> None:
        if self.n_running:
            self._reserve(1)  # decodes first: they may preempt before new prompts are admitted
        chunks, chunk = self.chunks, self.chunk
        assert chunk is not None  # only planned with chunked prefill on
        seconds = 0.0
        for eng in self.engine_list:
            n_dec = len(eng.running)
            budget = chunk - n_dec
            taken = n_chunks = 0
            for req in eng.prefilling:
                if budget <= 0:
                    break
                c = min(req.todo, budget)
                chunks.append((req, c))
                budget -= c
                taken += c
                n_chunks += 1
            while budget > 0 and eng.waiting and len(eng.running) + len(eng.prefilling) < self.max_batch:
                req = eng.waiting[0]
                tokens = self._admit(eng, req)
                if tokens < 0:
                    break
                eng.waiting.popleft()
                self.n_waiting -= 1
                req.todo = tokens
                eng.prefilling.append(req)
                eng.pending += req.own_blocks
                c = min(tokens, budget)
                chunks.append((req, c))
                budget -= c
                taken += c
                n_chunks += 1
            if n_chunks:
                seconds += self._prefill_s(eng, taken, n_chunks)
        if not chunks:
            if self.n_running:
                self._start_span()
            else:
                self.state = IDLE
            return
        for eng in self.engine_list:
            n = len(eng.running)
            if n:
                seconds += self._decode_s(eng, (eng.base + n * self.step) / n + 1, n)
        self._span(0.0, seconds, 1, STEP)

    # ----- KV cache ----------------------------------------------------------------------------
    def _free(self, eng: _Engine, need: int, step: int, keep: int = -1) -> bool:
        """Make ``need`` blocks free at decode step ``step``, evicting unreferenced cached prefixes
        (least recently used first, ``keep`` last); False if even that is not enough."""
        bs = self.bs
        if eng.bound(step, bs) + need <= eng.cap:
            return True
        used = eng.used(step, bs)
        if used + need <= eng.cap:
            return True
        spare = eng.evictable_blocks - eng.evictable.get(keep, 0)
        if used - spare + need > eng.cap:
            return False
        evictable = eng.evictable
        while used + need > eng.cap:
            qid = next(iter(evictable))
            if qid == keep:  # its blocks are about to be referenced again
                evictable.move_to_end(qid)
                continue
            used -= self._drop_prefix(eng, qid)
        return True

    def _admit(self, eng: _Engine, req: Request) -> int:
        """Allocate ``req``'s KV blocks; the prompt tokens it must prefill, or -1 if they do not fit."""
        tokens = req.prompt + req.generated
        bs = self.bs
        pb = eng.prefix_blocks if tokens > eng.prefix_blocks * bs else 0
        qid = req.q[0]
        entry = eng.prefix.get(qid) if pb else None
        total = -(-tokens // bs)
        need = total - (pb if entry is not None else 0)
        n, step = len(eng.running), self.step
        if ((eng.base + n * step) / bs + n - eng.shared + eng.prefix_total + eng.pending + need > eng.cap
                and not self._free(eng, need, step, qid)):  # (the O(1) bound first, inlined)
            return -1
        if req.start < 0:
            req.start = self.env.now
        req.own_blocks = total - pb
        if not pb:
            return tokens
        req.prefix = qid
        if entry is None:
            eng.prefix[qid] = [pb, 1]
            eng.prefix_total += pb
            return tokens
        if entry[1] == 0:  # cached, unreferenced: in use again
            eng.evictable_blocks -= eng.evictable.pop(qid)
        entry[1] += 1
        self.run.prefill_saved += pb * bs
        return tokens - pb * bs

    def _drop_prefix(self, eng: _Engine, qid: int) -> int:
        b = eng.evictable.pop(qid)
        eng.evictable_blocks -= b
        eng.prefix_total -= b
        del eng.prefix[qid]
        return b

    def _unref(self, eng: _Engine, req: Request) -> None:
        """``req`` no longer references its query's cached prefix."""
        qid = req.prefix
        if qid is None:
            return
        req.prefix = None
        entry = eng.prefix[qid]
        entry[1] -= 1
        if entry[1] == 0:  # kept for later nodes of the query, evictable
            eng.evictable[qid] = entry[0]
            eng.evictable_blocks += entry[0]
            if len(eng.evictable) > PREFIX_LRU:
                self._drop_prefix(eng, next(iter(eng.evictable)))

    def _note_peak(self) -> None:
        """Update the peak of KV memory in use (evictable cached prefixes excluded)."""
        step, bs = self.step, self.bs
        engines = self.engine_list if self.chunk is not None else self.active  # others hold no block in use
        bound = 0.0  # sum of the engines' O(1) bounds, inlined: this runs after every iteration
        for e in engines:
            n = len(e.running)
            blocks: float = e.prefix_total + e.pending - e.shared - e.evictable_blocks
            if n:
                blocks += (e.base + n * step) / bs + n
            bound += blocks * e.kv_per_block
        if bound <= self.kv_peak_bytes:
            return
        used = sum((e.used(step, bs) - e.evictable_blocks) * e.kv_per_block for e in engines)
        if used > self.kv_peak_bytes:
            self.kv_peak_bytes = used
            self.run.kv_peak[self.i] = used / self.kv_bytes if self.kv_bytes > 0 else 0.0

    # ----- decode spans ------------------------------------------------------------------------
    def _clean(self) -> bool:
        """Drop stale heap entries (preempted requests); True if a request is running."""
        heap = self.heap
        while heap and heap[0][2] != heap[0][3].epoch:
            heapq.heappop(heap)
        return bool(heap)

    def _reserve(self, k: int) -> int:
        """The decode steps (<= ``k``) every engine's KV blocks can take, evicting cached prefixes
        and preempting when not even one step fits (0 only if nothing runs any more). After a
        preemption only one step runs, so the preempted request is reconsidered at the next one."""
        step, bs = self.step, self.bs
        preempted = self.run.preemptions
        for eng in list(self.active):
            while eng.running:
                n = len(eng.running)
                if (eng.base + n * (step + k)) / bs + n - eng.shared + eng.prefix_total + eng.pending <= eng.cap:
                    break  # eng.bound(step + k, bs), inlined
                kk = k
                if not self._free(eng, 0, step + kk):
                    lo, hi = 0, kk - 1  # largest feasible step count, by bisection
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if self._free(eng, 0, step + mid):
                            lo = mid
                        else:
                            hi = mid - 1
                    kk = lo if lo > 0 and self._free(eng, 0, step + lo) else 0
                if kk == 0:
                    self._note_peak()  # (the admitted prompts were in memory until now)
                    self._preempt(eng)
                    continue
                k = kk
                break
        if self.run.preemptions != preempted:
            k = 1
        return k if self.n_running else 0

    def _preempt(self, eng: _Engine) -> None:
        """Recompute preemption of the engine's most recently admitted running request."""
        req = eng.running.pop()
        if not eng.running:
            self.active.remove(eng)
        self.n_running -= 1
        req.generated += self.step - req.joined
        eng.base -= req.ctx0 - req.joined
        if req.prefix is not None:
            eng.shared -= eng.prefix[req.prefix][0]
        self._unref(eng, req)
        req.epoch += 1
        eng.waiting.appendleft(req)
        self.n_waiting += 1
        self.run.preemptions += 1

    def _start_span(self, pre: float = 0.0) -> None:
        """After ``pre`` seconds of prefill, run the decode steps until the next request finishes
        (or KV memory runs short)."""
        k = self._reserve(self.heap[0][0] - self.step) if self._clean() else 0
        if k == 0 or not self._clean():  # every running request was preempted
            if pre > 0:
                self._span(pre, 0.0, 0)  # the prefill still takes its time
            else:  # prefill again (terminates: an empty engine admits what placement made room for)
                self._plan()
            return
        k = min(k, self.heap[0][0] - self.step)
        seconds = 0.0
        step, half, bs = self.step, (k + 1) / 2, self.bs
        for eng in self.active:
            n = len(eng.running)
            ctx = (eng.base + n * step) / n + half
            t = eng.decode_cache.get((round(ctx / bs), n))
            seconds += t if t is not None else self._decode_s(eng, ctx, n)
        self._span(pre, seconds, k)

    # ----- service times (cached per engine) ---------------------------------------------------
    def _decode_s(self, eng: _Engine, ctx: float, n: int) -> float:
        """One decode step of ``n`` sequences at mean context ``ctx``, rounded to a whole KV block
        for the cache (for the roofline: < 0.1% of a 1B+ model's step)."""
        bs = self.bs
        key = (round(ctx / bs), n)
        t = eng.decode_cache.get(key)
        if t is None:
            t = eng.decode_cache[key] = self.run.sim.step_s(eng.name, self.i, "decode",
                                                            float(max(1, key[0] * bs)), n)
            self.run.used.add((eng.name, self.i))
        return t

    def _prefill_s(self, eng: _Engine, tokens: int, n: int) -> float:
        key = (tokens, n)
        t = eng.prefill_cache.get(key)
        if t is None:
            t = eng.prefill_cache[key] = self.run.sim.step_s(eng.name, self.i, "prefill", tokens / n, n)
            self.run.used.add((eng.name, self.i))
        return t

    # ----- iteration ends ----------------------------------------------------------------------
    def _on_end(self, ev: Event) -> None:
        if ev.value != self.gen:
            return  # superseded (the span was cut short)
        run, now, state = self.run, self.env.now, self.state
        self.state = BUSY
        batches = run.batches
        if state == DECODE:
            if self.steps:
                elapsed = self.steps * self.dt
                run.busy[self.i] += elapsed
                if batches is not None:
                    batches.append(BatchRecord(self.label, "decode", self.t0, self.t0 + elapsed, self._members()))
                self.step += self.steps
        else:  # a chunked-prefill step
            run.busy[self.i] += self.dt
            members = self._members() if batches is not None else ()
            if self.n_running:
                self.step += 1
            for req, c in self.chunks:
                req.todo -= c
                run.prefill_tokens += c
                if req.todo == 0:
                    eng = self.engines[req.model]
                    eng.prefilling.remove(req)
                    self._join(eng, req, now)
            if batches is not None:
                members += tuple((r.q[0], run.node_ids[r.j]) for r, _ in self.chunks)
                batches.append(BatchRecord(self.label, "mixed", self.t0, now, members))
            self.chunks = []
            run.n_batches += 1
        self._note_peak()
        heap = self.heap
        while heap and (heap[0][2] != heap[0][3].epoch or heap[0][0] <= self.step):
            _, _, epoch, req = heapq.heappop(heap)
            if epoch == req.epoch:
                self._leave(req, now)
        if self.env.peek() == now:
            self._settle()
        else:
            self._plan()

    def _members(self) -> tuple[tuple[int, str], ...]:
        ids = self.run.node_ids
        return tuple((r.q[0], ids[r.j]) for e in self.engine_list for r in e.running)

    def _join(self, eng: _Engine, req: Request, at: float) -> None:
        """``req``'s prompt is in the cache (at time ``at``): it joins the running batch."""
        if req.first_token < 0:
            req.first_token = at
        eng.pending -= req.own_blocks
        if req.prefix is not None:
            eng.shared += eng.prefix[req.prefix][0]
        req.ctx0 = req.prompt + req.generated
        req.joined = self.step
        eng.base += req.ctx0 - req.joined
        if not eng.running:
            self.active.append(eng)
        eng.running.append(req)
        self.n_running += 1
        heapq.heappush(self.heap, (self.step + req.decode - req.generated, req.seq, req.epoch, req))

    def _leave(self, req: Request, now: float) -> None:
        eng = self.engines[req.model]
        eng.running.remove(req)
        if not eng.running:
            self.active.remove(eng)
        req.epoch += 1
        self.n_running -= 1
        eng.base -= req.ctx0 - req.joined
        if req.prefix is not None:
            eng.shared -= eng.prefix[req.prefix][0]
        self._unref(eng, req)
        self.run.node_done(req.q, req.j, self.i, req.start, now, len(eng.running) + 1, req.first_token)


@dataclass(frozen=True)
class ContinuousConfig:
    """Continuous (iteration-level) batching.

    ``block_size``: KV-cache block in tokens. ``prefix_caching``: a query's nodes share the blocks
    of the question prompt on a replica (prefilled once). ``chunked_prefill``: token budget per
    step (decodes first, then prompt chunks), None: a prompt is prefilled in a step of its own
    while the running batch waits (vLLM's default without chunked prefill).
    """

    block_size: int = 16
    prefix_caching: bool = True
    chunked_prefill: int | None = None
    name: str = "continuous"

    def __post_init__(self) -> None:
        if not (isinstance(self.block_size, int) and not isinstance(self.block_size, bool) and self.block_size >= 1):
            raise ConfigError(f"KV block size must be an integer >= 1 token, got {self.block_size!r}")
        budget = self.chunked_prefill
        if budget is not None and not (isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1):
            raise ConfigError(f"chunked-prefill token budget must be an integer >= 1, got {budget!r}")
        if not isinstance(self.prefix_caching, bool):
            raise ConfigError(f"prefix_caching must be true or false, got {self.prefix_caching!r}")

    def build(self) -> ContinuousScheduler:
        return ContinuousScheduler(self)
