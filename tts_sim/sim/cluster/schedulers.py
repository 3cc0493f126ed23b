"""Scheduler seam of the cluster simulator: one registry, one small protocol (Vidur-style).

Entities (``tts_sim/cluster/entities.py``: requests, batches; replicas are the devices the run
owns) stay apart from policies. A *scheduler* is a config dataclass registered in ``SCHEDULERS``;
``build()`` gives the policy, whose ``replica(run, device)`` returns the object serving one
device: the run routes each ready request to a device (least-loaded replica of its model) and
calls ``add(entry, model)`` on it; the replica serves requests and reports each finished one back
through ``run.node_done``. Built-ins:

- ``static``: a device takes up to ``max_batch`` waiting requests of one model and serves them as
  one padded batch until the longest reply is done (the CPU engine's behaviour).
- ``continuous``: iteration-level batching as in vLLM: requests join and leave the running batch
  at every decode step, KV-cache memory in blocks limits admission, preemption by recompute,
  prefix caching of the question prompt shared by a query's nodes, optional chunked prefill.

``auto`` (the default) is ``continuous`` on a cluster of GPUs, as every GPU serving engine batches
(vLLM, SGLang, TensorRT-LLM, llama.cpp server), and ``static`` when a CPU device is in it.

A replica is one device of the run: a GPU, or with tensor parallelism (``--tp``,
tts_sim/sim/cluster/tensor_parallel.py) a group of k GPUs that the run sees as one device.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

from tts_sim.errors import ConfigError
from tts_sim.registry import Registry

if TYPE_CHECKING:
    from tts_sim.sim.cluster.simulator import _Run

AUTO = "auto"
DEFAULT_SCHEDULER = AUTO
DEFAULT_MAX_BATCH = 8  # static batches: the CPU engine's batch


def default_max_batch(scheduler: Any) -> int:
    """The batch limit of ``scheduler`` when the user sets none."""
    return int(getattr(scheduler, "default_max_batch", DEFAULT_MAX_BATCH))


class Replica(Protocol):
    """Serves the requests routed to one device."""

    def add(self, entry: tuple, model: int) -> None:
        """Accept ``entry`` = (arrival sequence number, query state, node index) of model ``model``."""
        ...


class Scheduler(Protocol):
    """A batching policy: builds one ``Replica`` per device of a simulation run. ``kv_admission``
    (optional, default False): it admits requests by free KV memory, so placement need only
    reserve one longest sequence per model instead of ``max_batch`` of them. ``default_max_batch``
    (optional, default ``DEFAULT_MAX_BATCH``): the sequences an engine runs together when the user
    sets no ``max_batch``."""

    name: str

    def replica(self, run: _Run, device: int) -> Replica: ...

    def describe(self) -> str: ...


SCHEDULERS: Registry[type] = Registry("schedulers")


def resolve_auto(spec: str | Any | None, device_kinds: Collection[str] = ("gpu",)) -> str | Any:
    """``auto`` (or None) -> ``continuous`` when every device is a GPU, else ``static``; others unchanged."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == AUTO):
        return "continuous" if all(k == "gpu" for k in device_kinds) else "static"
    return spec


def build_scheduler(spec: str | Any | None = None, options: Mapping[str, Any] | None = None,
                    device_kinds: Collection[str] = ("gpu",)) -> Scheduler:
    """A scheduler from its registered name (+ config options), ``auto`` (see ``resolve_auto``; the
    default), a config, or a built scheduler."""
    spec = resolve_auto(spec, device_kinds)
    if isinstance(spec, str):
        config_cls = SCHEDULERS.get(spec.strip().lower())
        opts = {k: v for k, v in (options or {}).items() if v is not None}
        known = {f.name for f in fields(config_cls)} - {"name"}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ConfigError(f"scheduler {spec!r} has no option {unknown[0]!r} (options: "
                              f"{', '.join(sorted(known)) or 'none'})")
        return config_cls(**opts).build()
    if options:
        raise ConfigError("scheduler options go with a scheduler name, not a built scheduler")
    if hasattr(spec, "build") and not hasattr(spec, "replica"):
        return spec.build()
    if hasattr(spec, "replica"):
        return spec
    raise ConfigError(f"scheduler must be a name ({', '.join(SCHEDULERS.names())}) or a config, got {spec!r}")


def kv_block_budget(free_bytes: float, block_size: int, kv_bytes_per_token: float) -> int:
    """Whole KV blocks that fit in ``free_bytes``."""
    if kv_bytes_per_token <= 0:
        return 1 << 40
    return max(0, math.floor(free_bytes / (block_size * kv_bytes_per_token)))
