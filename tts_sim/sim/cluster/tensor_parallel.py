"""Tensor parallelism (Megatron-style): one replica of a model spans ``k`` GPUs of a node.

A *node* is a run of identical GPUs in the cluster spec (``2xH100`` is one node of two H100s;
``1xA100-80GB,2xL4`` two nodes). ``tp_cluster`` splits each node into groups of ``k`` GPUs; a group
is one device of the simulation (``DeviceSpec.group``: k times the compute, bandwidth and memory,
so weights, KV cache, FLOPs and bytes are split k ways), so a replica occupies k GPUs.

Each transformer layer does two all-reduces of the activations (after attention and after the
MLP). A ring all-reduce of ``n`` bytes over ``k`` GPUs takes ``2(k-1)/k * n / link_bw`` plus the
device's fixed ``link_latency_s``; ``n = tokens x hidden x bytes per activation`` (the model's
``bytes_per_param``, bf16 by default), tokens being ``batch x prompt`` in prefill and ``batch`` in
a decode step. The all-reduces are on the critical path (no overlap with compute).

``auto``: per model, the smallest valid k whose group holds the weights plus the KV cache of one
longest sequence; the cluster's degree is the largest of them (one degree per simulation), 1 when
no valid k holds some model (placement then says why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tts_sim.core.devices import DeviceSpec
from tts_sim.core.models import ModelSpec
from tts_sim.errors import ClusterError
from tts_sim.sim.cluster.placement import ModelDemand
from tts_sim.sim.cluster.spec import ClusterSpec

AUTO = "auto"


def parse_tp(value: int | str | None) -> int | str:
    """``auto`` or a positive integer (as int); ``ClusterError`` otherwise. None means 1."""
    if value is None:
        return 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if not re.fullmatch(r"\+?\d+", text) or int(text) < 1:
            raise ClusterError(f"tensor-parallel degree must be a positive integer or 'auto', got {value!r}")
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClusterError(f"tensor-parallel degree must be a positive integer or 'auto', got {value!r}")
    return value


def nodes(cluster: ClusterSpec) -> list[tuple[DeviceSpec, int]]:
    """(device, GPU count) of each node: each run of identical devices, in order."""
    out: list[tuple[DeviceSpec, int]] = []
    for dev in cluster.devices:
        if out and out[-1][0] == dev:
            out[-1] = (dev, out[-1][1] + 1)
        else:
            out.append((dev, 1))
    return out


def valid_degrees(cluster: ClusterSpec) -> list[int]:
    """Degrees that split every node into whole groups."""
    counts = [n for _, n in nodes(cluster)]
    return [k for k in range(1, min(counts) + 1) if all(n % k == 0 for n in counts)]


def tp_cluster(cluster: ClusterSpec, k: int) -> ClusterSpec:
    """``cluster`` with each node split into tensor-parallel groups of ``k`` GPUs."""
    if cluster.tp != 1:
        raise ClusterError("cluster is already tensor-parallel")
    if k == 1:
        return cluster
    devices: list[DeviceSpec] = []
    for dev, n in nodes(cluster):
        if k > n:
            raise ClusterError(f"tensor-parallel degree {k} exceeds the {n} GPU{'s' * (n > 1)} of node "
                               f"{n}x{dev.name} in cluster {cluster}")
        if n % k:
            raise ClusterError(f"tensor-parallel degree {k} does not divide the {n} GPUs of node {n}x{dev.name} "
                               f"in cluster {cluster}")
        devices.extend([dev.group(k)] * (n // k))
    return ClusterSpec(tuple(devices), cluster.text, tp=k)


def auto_tp(demands: Iterable[ModelDemand], cluster: ClusterSpec, mem_fraction: float) -> int:
    """The smallest degree whose groups hold every model with one longest sequence of KV cache."""
    degrees = [k for k in valid_degrees(cluster)
               if k == 1 or all(dev.link_bw is not None for dev, _ in nodes(cluster))]
    largest = max(d.mem_bytes for d in cluster.devices) * mem_fraction
    best = 1
    for demand in demands:
        need = demand.model.weight_bytes + demand.context_tokens * demand.model.kv_bytes_per_token
        fits = [k for k in degrees if k * largest >= need]
        if not fits:
            return 1
        best = max(best, fits[0])
    return best


def allreduce_s(model: ModelSpec, device: DeviceSpec, tokens: float) -> float:
    """Seconds of one forward pass's all-reduces (2 per layer) for ``tokens`` tokens on a TP group."""
    k = device.tp
    if k == 1:
        return 0.0
    assert device.link_bw is not None  # DeviceSpec.group refuses devices without a link
    nbytes = tokens * model.hidden * model.bytes_per_param
    return 2 * model.layers * (2.0 * (k - 1) / k * nbytes / device.link_bw + device.link_latency_s)
