"""Scheduler seam of the cluster simulator: one registry, one small protocol (Vidur-style).

Entities (``tts_sim/cluster/entities.py``: requests, batches; replicas are the devices the run
owns) stay apart from policies. A *scheduler* is a config dataclass registered in ``SCHEDULERS``;
``build()`` gives the policy, whose ``replica(run, device)`` returns the object serving one
device: the run routes each ready request to a device (least-loaded replica of its model) and
calls ``add(entry, model)`` on it; the replica serves requests and reports each finished one back
through ``run.node_done``. Built-ins:

- ``static``: a device takes up to ``max_batch`` waiting requests of one model and serves them as
  one padded batch until the longest reply is done (the CPU engine's behaviour; the default).
- ``continuous``: iteration-level batching as in vLLM: requests join and leave the running batch
  at every decode step, KV-cache memory in blocks limits admission, preemption by recompute,
  prefix caching of the question prompt shared by a query's nodes, optional chunked prefill.

A replica is one device of the run: a GPU, or with tensor parallelism (``--tp``,
tts_sim/sim/cluster/tensor_parallel.py) a group of k GPUs that the run sees as one device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

from tts_sim.errors import ConfigError
from tts_sim.registry import Registry

if TYPE_CHECKING:
    from tts_sim.sim.cluster.simulator import _Run

DEFAULT_SCHEDULER = "static"


class Replica(Protocol):
    """Serves the requests routed to one device."""

    def add(self, entry: tuple, model: int) -> None:
        """Accept ``entry`` = (arrival sequence number, query state, node index) of model ``model``."""
        ...


class Scheduler(Protocol):
    """A batching policy: builds one ``Replica`` per device of a simulation run. ``kv_admission``
    (optional, default False): it admits requests by free KV memory, so placement need only
    reserve one longest sequence per model instead of ``max_batch`` of them."""

    name: str

    def replica(self, run: _Run, device: int) -> Replica: ...

    def describe(self) -> str: ...


SCHEDULERS: Registry[type] = Registry("schedulers")


def build_scheduler(spec: str | Any | None = None, options: Mapping[str, Any] | None = None) -> Scheduler:
    """A scheduler from its registered name (+ config options), a config, or a built scheduler."""
    if spec is None:
        spec = DEFAULT_SCHEDULER
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
