"""Placement of a graph's models on a cluster's devices, with a memory check.

A replica of a model needs its weights plus the KV cache of ``max_batch`` sequences at the
longest context any node of that model sees (prompt A + in_degree*B, plus B generated tokens).
Each model first gets one replica (largest models first, each on the device with the most free
memory); then models take turns adding replicas on further devices while memory lasts. A device
may host several models. Only ``mem_fraction`` of a device's memory is usable (activations,
runtime, fragmentation), like vLLM's ``gpu_memory_utilization``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from tts_sim.core.models import ModelSpec
from tts_sim.errors import ClusterError
from tts_sim.sim.cluster.spec import ClusterSpec


@dataclass(frozen=True)
class ModelDemand:
    """What one replica of ``model`` needs: weights plus KV cache for ``batch`` x ``context`` tokens."""

    model: ModelSpec
    context_tokens: int
    batch: int

    @property
    def kv_bytes(self) -> float:
        return self.batch * self.context_tokens * self.model.kv_bytes_per_token

    @property
    def bytes(self) -> float:
        return self.model.weight_bytes + self.kv_bytes


@dataclass(frozen=True)
class Placement:
    """Model name -> indices of the devices holding a replica; bytes used per device."""

    replicas: dict[str, tuple[int, ...]]
    used_bytes: tuple[float, ...]
    labels: tuple[str, ...]

    def devices_of(self, model: str) -> tuple[str, ...]:
        return tuple(self.labels[i] for i in self.replicas[model])

    def to_dict(self) -> dict[str, list[str]]:
        return {m: list(self.devices_of(m)) for m in self.replicas}

    def __str__(self) -> str:
        return "; ".join(f"{m} on {', '.join(self.devices_of(m))}" for m in self.replicas)


def place(demands: list[ModelDemand], cluster: ClusterSpec, mem_fraction: float = 0.9) -> Placement:
    """Replicate each model on as many devices as memory allows (``ClusterError`` if one fits nowhere)."""
    if not 0 < mem_fraction <= 1:
        raise ClusterError(f"mem_fraction must be in (0, 1], got {mem_fraction}")
    capacity = [d.mem_bytes * mem_fraction for d in cluster.devices]
    free = list(capacity)
    hosts: dict[str, list[int]] = {d.model.name: [] for d in demands}
    order = sorted(demands, key=lambda d: (-d.bytes, d.model.name))

    def best_device(demand: ModelDemand) -> int | None:
        fits = [i for i in range(len(free)) if free[i] >= demand.bytes and i not in hosts[demand.model.name]]
        return max(fits, key=lambda i: (free[i], -i)) if fits else None

    for demand in order:
        i = best_device(demand)
        if i is None:
            _raise_no_fit(demand, cluster, capacity, free)
        hosts[demand.model.name].append(i)
        free[i] -= demand.bytes
    added = True
    while added:  # models take turns adding one more replica each
        added = False
        for demand in order:
            i = best_device(demand)
            if i is not None:
                hosts[demand.model.name].append(i)
                free[i] -= demand.bytes
                added = True
    return Placement({d.model.name: tuple(sorted(hosts[d.model.name])) for d in demands},
                     tuple(c - f for c, f in zip(capacity, free, strict=True)), cluster.labels)


def _raise_no_fit(demand: ModelDemand, cluster: ClusterSpec, capacity: list[float], free: list[float]) -> NoReturn:
    gb = 1e9
    need = (f"model {demand.model.name} needs {demand.bytes / gb:.1f} GB (weights {demand.model.weight_bytes / gb:.1f}"
            f" GB + KV cache {demand.kv_bytes / gb:.1f} GB for {demand.batch} x {demand.context_tokens} tokens)")
    unit = "device" if cluster.tp == 1 else f"tensor-parallel group ({cluster.tp} GPUs)"
    if max(capacity) >= demand.bytes:
        raise ClusterError(f"{need} but no {unit} of cluster {cluster} has that much left after placing the "
                           f"larger models (most free: {max(free) / gb:.1f} GB)")
    hint = "; try --tp" if cluster.tp == 1 and all(d.link_bw for d in cluster.devices) and len(cluster.devices) > 1 \
        else ""
    raise ClusterError(f"{need} but the largest {unit} of cluster {cluster} offers {max(capacity) / gb:.1f} GB "
                       f"(usable fraction applied){hint}")
