"""SimPy discrete-event simulation of a collaboration graph served by a cluster.

Entities: queries (one run of the graph), requests (one node of one query), devices (replicas).
Policies: open-loop Poisson or closed-loop arrivals; least-loaded routing among a model's
replicas; batching by a scheduler from ``SCHEDULERS`` (tts_sim/cluster/schedulers.py: ``static``
takes up to ``max_batch`` (default 8) waiting requests of the model whose oldest request waited
longest, FIFO; ``continuous`` batches at every decode step, up to 256 sequences by default, see
tts_sim/cluster/continuous.py; ``auto``, the default, is continuous on GPUs and static with a CPU).
Service times come from a ``LatencyPredictor``. The rules below are those of ``static``.

Semantics, pinned down for exact-timeline tests:
- A node becomes ready when all its predecessors have finished; it then joins the queue of the
  least-loaded replica of its model (load = requests queued or in service; ties: lowest index).
- A device forms a batch only after every event of the same instant has been processed (its
  wake-up is an event triggered at that instant, queued behind the completions and arrivals
  scheduled for it earlier), so requests that become ready at the same time batch together.
- Batch service = prefill of the batch + ``round(B)`` decode steps. Static batching pads every
  prompt to the longest one of the batch (Np_max); decode step k runs at context Np_max + k, and
  the decode time is ``round(B)`` steps at the mean context Np_max + (round(B)+1)/2, which is
  exact for the roofline whenever every step stays in one regime (memory- or compute-bound).
- Token counts follow tts_sim/flops.py: prompt A + in_degree*B, B generated tokens, rounded to
  whole tokens. Only ``graph.executed`` nodes run.
- With a ``TokenModel`` (tts_sim/cluster/tokens.py) service times use its counts instead: prompts
  with the template overhead of their kind, reply lengths per prompt kind (means, or one seeded
  draw per request). The batch decodes for its longest reply at full batch size, as a static
  batch does (the ONNX Runtime engine keeps finished sequences in the batch, fed padding, until
  the last one stops). Budget units and FLOPs are not affected.

For speed (about 10 us per node call) there is one process per device and one for arrivals;
readiness is a per-query counter instead of ``AllOf``, and per-query state is one small list.

Every result states its load (``LatencyStats.load``) and is flagged ``overloaded`` when the
cluster cannot keep up with an open-loop rate (see ``overload``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import cast

import numpy as np
import simpy
from simpy.events import Timeout

from tts_sim.core.evaluation import LatencyStats
from tts_sim.core.graph import Graph
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.core.prompts import prompt_kind
from tts_sim.errors import ConfigError
from tts_sim.sim.cluster.entities import BatchRecord
from tts_sim.sim.cluster.histogram import LogHistogram
from tts_sim.sim.cluster.latency import LatencyPredictor, RooflinePredictor
from tts_sim.sim.cluster.overload import LatencyTrend, overload
from tts_sim.sim.cluster.placement import ModelDemand, Placement, place
from tts_sim.sim.cluster.schedulers import Scheduler, build_scheduler, default_max_batch
from tts_sim.sim.cluster.spec import ClusterSpec, parse_cluster
from tts_sim.sim.cluster.tensor_parallel import AUTO, auto_tp, parse_tp, tp_cluster
from tts_sim.sim.cluster.tokens import LengthDistribution, TokenModel
from tts_sim.tasks import TaskSpec


@dataclass(frozen=True)
class OpenLoop:
    """Queries arrive as a Poisson process of rate ``qps``, whatever the cluster's state."""

    qps: float

    def __post_init__(self) -> None:
        if not (isinstance(self.qps, (int, float)) and math.isfinite(self.qps) and self.qps > 0):
            raise ConfigError(f"open-loop rate must be a positive number of queries/s, got {self.qps!r}")


@dataclass(frozen=True)
class ClosedLoop:
    """``concurrency`` clients, each sending its next query as soon as its last one is answered."""

    concurrency: int

    def __post_init__(self) -> None:
        if not (isinstance(self.concurrency, int) and self.concurrency >= 1):
            raise ConfigError(f"closed-loop concurrency must be an integer >= 1, got {self.concurrency!r}")


@dataclass(frozen=True)
class ArrivalTimes:
    """Queries arrive at the given times (seconds, ascending): a replayed trace, open loop."""

    times: tuple[float, ...]

    def __post_init__(self) -> None:
        t = self.times
        if not t or any(not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0) for x in t) \
                or any(b < a for a, b in zip(t, t[1:], strict=False)):
            raise ConfigError("arrival times must be a non-empty ascending sequence of seconds >= 0")


Arrival = OpenLoop | ClosedLoop | ArrivalTimes


@dataclass(frozen=True)
class TimelineEvent:
    """One node of one query, served on ``device`` from ``start`` to ``end`` in a batch of ``batch``;
    ``first_token``: when its prefill ended (continuous batching; NaN under static batching)."""

    query: int
    node: str
    device: str
    start: float
    end: float
    batch: int = 1
    first_token: float = math.nan


@dataclass(frozen=True)
class SimulationResult:
    latency: LatencyStats
    placement: Placement
    timeline: list[TimelineEvent] | None = None  # only with record=True
    latencies: list[float] | None = None  # per-query latency by query id, only with record=True
    arrivals: list[float] | None = None  # per-query arrival time by query id, only with record=True
    n_node_calls: int = 0
    n_batches: int = 0
    batches: list[BatchRecord] | None = None  # only with record=True

    @property
    def mean_batch(self) -> float:
        return self.n_node_calls / self.n_batches if self.n_batches else 0.0


class ClusterSimulator:
    """Simulates queries of a graph on ``cluster`` (a ``ClusterSpec`` or its text).

    ``tokens``: the prompt and reply lengths service times use (default: the paper's A + d*B and B).
    ``scheduler``: ``auto`` (default: continuous on GPUs, static with a CPU), a name from ``SCHEDULERS``
    (``static``, ``continuous``), a config or a built scheduler; ``scheduler_options`` configure a
    named one (e.g. ``block_size``). ``max_batch``: sequences batched together (default: the
    scheduler's, 8 static, 256 continuous).
    ``tp``: tensor-parallel degree, a positive integer or ``"auto"`` (tts_sim/cluster/tensor_parallel.py):
    each replica then spans ``tp`` GPUs of a node and the run's devices are those groups.
    """

    def __init__(self, cluster: ClusterSpec | str, predictor: LatencyPredictor | None = None,
                 catalog: ModelCatalog = DEFAULT_CATALOG, max_batch: int | None = None, mem_fraction: float = 0.9,
                 tokens: TokenModel | None = None, scheduler: str | Scheduler | None = None,
                 scheduler_options: dict | None = None, tp: int | str | None = 1) -> None:
        self.cluster = parse_cluster(cluster) if isinstance(cluster, str) else cluster
        self.scheduler: Scheduler = build_scheduler(scheduler, scheduler_options,
                                                    [d.kind for d in self.cluster.devices])
        self.tp = parse_tp(tp)
        # the devices a run schedules on: TP groups for a fixed degree (checked here), else per graph
        self.serving = tp_cluster(self.cluster, self.tp) if isinstance(self.tp, int) else self.cluster
        self.predictor: LatencyPredictor = predictor if predictor is not None else cast(LatencyPredictor,
                                                                                         RooflinePredictor())
        self.catalog = catalog
        if max_batch is None:  # the scheduler's own default: 8 for static batches, 256 for continuous
            max_batch = default_max_batch(self.scheduler)
        if not (isinstance(max_batch, int) and max_batch >= 1):
            raise ConfigError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        self.max_batch = max_batch
        self.mem_fraction = mem_fraction
        if tokens is not None and not isinstance(tokens, TokenModel):
            raise ConfigError(f"tokens must be a TokenModel, got {type(tokens).__name__}")
        self.tokens = tokens if tokens is not None else TokenModel()
        self._service_cache: dict[tuple[str, str, int, int, int, int], float] = {}
        self._sources: dict[tuple[str, str], str] = {}

    # ----- static analysis -------------------------------------------------------------------
    def placement(self, graph: Graph, task: TaskSpec) -> Placement:
        """Where each model of the graph's executed nodes runs (``ClusterError`` if one fits nowhere);
        sets the run's devices (``serving``: TP groups of the degree ``tp`` resolves to)."""
        demands = self.demands(graph, task)
        if self.tp == AUTO:
            self.serving = tp_cluster(self.cluster, auto_tp(demands, self.cluster, self.mem_fraction))
        return place(demands, self.serving, self.mem_fraction)

    def demands(self, graph: Graph, task: TaskSpec) -> list[ModelDemand]:
        """What one replica of each model needs: weights + KV cache of ``max_batch`` longest contexts
        (of one, for a scheduler that admits requests by free KV memory)."""
        tokens = self.tokens
        longest: dict[str, int] = {}
        for n in graph.executed:
            model = graph.node(n).model
            kind, pred_kinds = _kinds(graph, n)
            ctx = (tokens.prompt_tokens(task, kind, pred_kinds, _predecessor_models(graph, n))
                   + tokens.longest_decode(task, kind, model))
            longest[model] = max(longest.get(model, 0), ctx)
        # a static batch holds the KV cache of max_batch sequences at once; a scheduler that admits by
        # free KV memory (continuous) needs room for one longest sequence, the rest is its KV cache
        batch = 1 if getattr(self.scheduler, "kv_admission", False) else self.max_batch
        return [ModelDemand(self.catalog[m], ctx, batch) for m, ctx in longest.items()]

    def service_s(self, model: str, device: int, prompt_tokens: int, decode_tokens: int, batch: int) -> float:
        """Seconds a batch of ``batch`` requests of ``model`` occupies device ``device`` (index)."""
        dev = self.serving.devices[device]
        key = (model, dev.name, dev.tp, prompt_tokens, decode_tokens, batch)
        cached = self._service_cache.get(key)
        if cached is not None:
            return cached
        spec, pred = self.catalog[model], self.predictor
        mean_ctx = prompt_tokens + (decode_tokens + 1) / 2
        seconds = (pred.prefill_s(spec, dev, prompt_tokens, batch)
                   + decode_tokens * pred.decode_step_s(spec, dev, mean_ctx, batch))
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"predictor {pred.name!r} gave {seconds!r} s for {model} on {dev.name}")
        self._service_cache[key] = seconds
        self._sources[(model, dev.name)] = pred.source(spec, dev)
        return seconds

    def switch_s(self, model: str, device: int) -> float:
        """Seconds a batch of ``model`` costs beyond its steps when device ``device``'s previous batch
        was another model's (the predictor's optional ``switch_s``; 0 without it)."""
        switch = getattr(self.predictor, "switch_s", None)
        if switch is None:
            return 0.0
        seconds = float(switch(self.catalog[model], self.serving.devices[device]))
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"predictor {self.predictor.name!r} gave a model switch of {seconds!r} s for {model}")
        return seconds

    def step_s(self, model: str, device: int, kind: str, tokens: float, batch: int) -> float:
        """One forward pass: a ``"prefill"`` of ``batch`` prompts of ``tokens`` tokens, or a
        ``"decode"`` step of ``batch`` sequences at context ``tokens`` (continuous batching)."""
        dev = self.serving.devices[device]
        spec, pred = self.catalog[model], self.predictor
        if kind == "prefill":
            seconds = pred.prefill_s(spec, dev, tokens, batch)
        else:
            seconds = pred.decode_step_s(spec, dev, tokens, batch)
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"predictor {pred.name!r} gave {seconds!r} s for {model} on {dev.name}")
        self._sources[(model, dev.name)] = pred.source(spec, dev)
        return seconds

    # ----- simulation ------------------------------------------------------------------------
    def simulate(self, graph: Graph, task: TaskSpec, arrival: Arrival, n_queries: int,
                 seed: int = 0, record: bool = False) -> SimulationResult:
        """Run ``n_queries`` queries of ``graph`` and report latency, throughput and utilisation."""
        if not (isinstance(n_queries, int) and n_queries >= 1):
            raise ConfigError(f"n_queries must be an integer >= 1, got {n_queries!r}")
        if not isinstance(arrival, (OpenLoop, ClosedLoop, ArrivalTimes)):
            raise ConfigError(f"arrival must be OpenLoop, ClosedLoop or ArrivalTimes, got {type(arrival).__name__}")
        if isinstance(arrival, ArrivalTimes) and len(arrival.times) < n_queries:
            raise ConfigError(f"{n_queries} queries need as many arrival times, got {len(arrival.times)}")
        placement = self.placement(graph, task)  # also a ConfigError naming a model not in the catalog
        run = _Run(self, graph, task, placement, record)
        run.start(arrival, n_queries, seed)
        run.env.run()
        return run.result(n_queries, arrival)


def _kind(graph: Graph, node: str) -> str:
    return prompt_kind(graph.node(node).role, len(graph.predecessors(node)), node == graph.output)


def _kinds(graph: Graph, node: str) -> tuple[str, list[str]]:
    """The prompt kind of ``node`` and those of its predecessors."""
    return _kind(graph, node), [_kind(graph, p) for p in graph.predecessors(node)]


def _predecessor_models(graph: Graph, node: str) -> list[str | None]:
    return [graph.node(p).model for p in graph.predecessors(node)]


class _Lengths:
    """Reply lengths drawn per request from each node's distribution, in chunks (seeded)."""

    def __init__(self, dists: list[LengthDistribution], rng: np.random.Generator, chunk: int = 1024) -> None:
        self.dists, self.rng, self.chunk = dists, rng, chunk
        self.buffers: list[list[int]] = [[] for _ in dists]

    def draw(self, d: int) -> int:
        buf = self.buffers[d]
        if not buf:
            buf.extend(self.dists[d].sample(self.rng, self.chunk))
        return max(1, buf.pop())


class _Run:
    """The state of one ``simulate`` call (the simulator itself stays reusable across calls)."""

    def __init__(self, sim: ClusterSimulator, graph: Graph, task: TaskSpec, placement: Placement,
                 record: bool) -> None:
        self.sim, self.placement, self.record = sim, placement, record
        self.env = simpy.Environment()
        ids = graph.executed
        index = {n: j for j, n in enumerate(ids)}
        self.node_ids = ids
        self.model_names = sorted({graph.node(n).model for n in ids})
        model_index = {m: k for k, m in enumerate(self.model_names)}
        self.node_model = [model_index[graph.node(n).model] for n in ids]
        tokens = sim.tokens
        kinds = [_kinds(graph, n) for n in ids]
        models = [graph.node(n).model for n in ids]
        self.node_prompt = [tokens.prompt_tokens(task, kind, preds, _predecessor_models(graph, n))
                            for n, (kind, preds) in zip(ids, kinds, strict=True)]
        # nodes of one query with the same prompt: same kind of prompt on the same inputs (the same number
        # means the same text, model aside; e.g. every direct node, or refiners of one node)
        first: dict[tuple, int] = {}
        self.node_signature = [first.setdefault((kind, tuple(sorted(graph.predecessors(n)))), j)
                               for j, (n, (kind, _)) in enumerate(zip(ids, kinds, strict=True))]
        self.node_decode = [tokens.decode_tokens(task, kind, m) for (kind, _), m in zip(kinds, models, strict=True)]
        self.prefix_tokens = round(task.prompt_tokens)  # the question, shared by every node of a query
        # sampled reply lengths: node -> index of its distribution (None: its fixed node_decode)
        self.node_dist: list[int | None] = [None] * len(ids)
        self.dists: list[LengthDistribution] = []
        if tokens.sampled:
            for j, (kind, _) in enumerate(kinds):
                dist = tokens.answer(kind, models[j])
                if dist is not None:
                    if dist not in self.dists:
                        self.dists.append(dist)
                    self.node_dist[j] = self.dists.index(dist)
        self.lengths: _Lengths | None = None
        # per-query state: [query id, arrival time, missing predecessors of each node...]
        self.template = [len(graph.predecessors(n)) for n in ids]
        self.succ = [tuple(index[s] + 2 for s in graph.successors(n) if s in index) for n in ids]
        self.sources = [j for j, d in enumerate(self.template) if d == 0]
        self.output = index[graph.output]
        self.replicas = [placement.replicas[m] for m in self.model_names]
        # memory: KV bytes per token and reserved KV per model; per device, what weights leave
        catalog, devices = sim.catalog, sim.serving.devices
        self.kv_bytes_per_token = [catalog[m].kv_bytes_per_token for m in self.model_names]
        demand = {d.model.name: d.kv_bytes for d in sim.demands(graph, task)}
        self.kv_demand = [demand[m] for m in self.model_names]
        n_dev = len(devices)
        self.kv_free_bytes = [dev.mem_bytes * sim.mem_fraction for dev in devices]
        for k, devs in enumerate(self.replicas):
            for i in devs:
                self.kv_free_bytes[i] -= catalog[self.model_names[k]].weight_bytes
        self.kv_peak = [0.0] * n_dev  # peak fraction of that KV memory in use
        self.preemptions = 0
        self.prefill_tokens = 0  # prompt tokens prefilled (static: padded)
        self.prefill_saved = 0  # prompt tokens not prefilled thanks to prefix caching
        self.labels = sim.serving.labels
        self.load = [0] * n_dev
        self.busy = [0.0] * n_dev
        self.seq = count()
        self.hist = LogHistogram()
        self.timeline: list[TimelineEvent] | None = [] if record else None
        self.batches: list[BatchRecord] | None = [] if record else None
        self.queries: dict[int, tuple[float, float]] | None = {} if record else None  # id -> (arrival, done)
        self.issued = 0
        self.completed = 0
        self.first_arrival = math.inf
        self.last_arrival = 0.0
        self.last_done = 0.0
        self.n_batches = 0
        self.n_calls = 0
        self.on_done: Callable[[], None] | None = None
        self.used: set[tuple[str, int]] = set()  # (model, device index) pairs that served a batch
        self.trend = LatencyTrend(1)  # sized by start()
        self.adders: list = []

    # ----- arrivals --------------------------------------------------------------------------
    def start(self, arrival: Arrival, n_queries: int, seed: int) -> None:
        env = self.env
        self.trend = LatencyTrend(n_queries)
        if self.dists:  # a stream of its own, so arrivals stay those of the same seed without it
            self.lengths = _Lengths(self.dists, np.random.default_rng([seed, 1]))
        scheduler = self.sim.scheduler
        self.adders = [scheduler.replica(self, i).add for i in range(len(self.load))]
        if isinstance(arrival, OpenLoop):
            env.process(self._poisson(arrival.qps, n_queries, np.random.default_rng(seed)))
        elif isinstance(arrival, ArrivalTimes):
            env.process(self._replay(arrival.times[:n_queries]))
        else:
            def next_query() -> None:
                if self.issued < n_queries:
                    self.issue()
            self.on_done = next_query
            for _ in range(min(arrival.concurrency, n_queries)):
                self.issue()

    def _poisson(self, qps: float, n: int, rng: np.random.Generator):
        env, issue, chunk = self.env, self.issue, 1024
        left = n
        while left:
            gaps = rng.exponential(1.0 / qps, min(chunk, left)).tolist()
            left -= len(gaps)
            for gap in gaps:
                yield Timeout(env, gap)
                issue()

    def _replay(self, times: tuple[float, ...]):
        env, issue = self.env, self.issue
        for t in times:
            if t > env.now:
                yield Timeout(env, t - env.now)
            issue()

    def issue(self) -> None:
        """Start one query now: its source nodes become ready."""
        now = self.env.now
        q = [self.issued, now, *self.template]
        self.issued += 1
        if now < self.first_arrival:
            self.first_arrival = now
        self.last_arrival = now
        for j in self.sources:
            self.enqueue(q, j)

    def enqueue(self, q: list, j: int) -> None:
        """Node ``j`` of query ``q`` is ready: route it to the least-loaded replica of its model."""
        k = self.node_model[j]
        reps = self.replicas[k]
        load = self.load
        i = reps[0] if len(reps) == 1 else min(reps, key=load.__getitem__)
        load[i] += 1
        self.adders[i]((next(self.seq), q, j), k)

    def decode_of(self, j: int) -> int:
        """Reply tokens of one request of node ``j`` (a fresh draw when lengths are sampled)."""
        d = self.node_dist[j]
        if d is None or self.lengths is None:
            return self.node_decode[j]
        return self.lengths.draw(d)

    # ----- completions -------------------------------------------------------------------------
    def log(self, q: list, j: int, label: str, start: float, end: float, batch: int,
            first_token: float = math.nan) -> None:
        if self.timeline is not None:
            self.timeline.append(TimelineEvent(q[0], self.node_ids[j], label, start, end, batch, first_token))

    def node_done(self, q: list, j: int, i: int, start: float, end: float, batch: int,
                  first_token: float = math.nan) -> None:
        """Request (``q``, ``j``) left device ``i`` (continuous batching): its successors may start."""
        self.load[i] -= 1
        self.n_calls += 1
        if self.timeline is not None:
            self.log(q, j, self.labels[i], start, end, batch, first_token)
        if j == self.output:
            self.finish(q)
        else:
            for s in self.succ[j]:
                q[s] -= 1
                if not q[s]:
                    self.enqueue(q, s - 2)

    def finish(self, q: list) -> None:
        now = self.env.now
        latency = now - q[1]
        self.hist.add(latency)
        assert self.trend is not None  # set by start()
        self.trend.add(q[0], latency)
        if self.queries is not None:
            self.queries[q[0]] = (q[1], now)
        self.completed += 1
        self.last_done = now
        if self.on_done is not None:
            self.on_done()

    # ----- report ----------------------------------------------------------------------------
    def result(self, n_queries: int, arrival: Arrival) -> SimulationResult:
        if self.completed != n_queries:  # cannot happen unless the graph has unreachable nodes
            raise RuntimeError(f"simulation ended with {self.completed} of {n_queries} queries answered")
        span = self.last_done - self.first_arrival
        hist = self.hist
        devices = self.sim.serving.devices
        sources = {self.sim._sources[(m, devices[i].name)] for m, i in self.used}
        predictor = sources.pop() if len(sources) == 1 else ("mixed" if sources else "")
        throughput = n_queries / span if span > 0 else math.inf
        if isinstance(arrival, (OpenLoop, ArrivalTimes)):
            load, offered = (f"open loop, {arrival.qps:g} queries/s", arrival.qps) if isinstance(arrival, OpenLoop) \
                else ("replayed arrival times", None)
            arrival_span = self.last_arrival - self.first_arrival
            realised = (n_queries - 1) / arrival_span if arrival_span > 0 else math.inf
        else:
            load, offered, realised = f"closed loop, {arrival.concurrency} in flight", None, None
        assert self.trend is not None  # set by start()
        verdict = overload(throughput, realised, self.trend, hist.mean)
        stats = LatencyStats(
            mean_s=hist.mean, p50_s=hist.quantile(0.5), p95_s=hist.quantile(0.95), p99_s=hist.quantile(0.99),
            throughput_qps=throughput, n_queries=n_queries,
            utilisation={label: (busy / span if span > 0 else 0.0) for label, busy in zip(self.labels, self.busy,
                                                                                        strict=True)},
            predictor=predictor, cluster=self.sim.serving.describe(),
            load=load, offered_qps=offered, overloaded=verdict.overloaded, overload_reason=verdict.reason,
            latency_growth=verdict.growth, scheduler=self.sim.scheduler.name,
            kv_peak=dict(zip(self.labels, (round(x, 4) for x in self.kv_peak), strict=True)),
            preemptions=self.preemptions, prefill_tokens=self.prefill_tokens,
            prefill_tokens_saved=self.prefill_saved,
        )
        latencies = arrivals = None
        if self.queries is not None:
            arrivals = [self.queries[k][0] for k in range(n_queries)]
            latencies = [self.queries[k][1] - self.queries[k][0] for k in range(n_queries)]
        return SimulationResult(stats, self.placement, self.timeline, latencies, arrivals, self.n_calls,
                                self.n_batches, self.batches)
