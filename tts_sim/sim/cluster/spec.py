"""Cluster specs: ``2xH100``, ``1xA100-80GB,2xL4``, ``cpu``.

Grammar: comma-separated items ``[COUNT x] DEVICE``; COUNT is a positive integer (default 1),
DEVICE a name from ``DEVICES`` (any case). Every malformed spec raises ``ClusterError`` with one
line naming the item at fault. ``str(spec)`` is the canonical text (``1xA100-80GB,2xL4``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tts_sim.core.devices import DeviceSpec, get_device
from tts_sim.errors import ClusterError

MAX_DEVICES = 4096
_COUNTED = re.compile(r"^([+-]?\d*\.?\d+)\s*[xX×*]\s*(.*)$")


@dataclass(frozen=True)
class ClusterSpec:
    """The devices of a hypothetical cluster, in order; ``text`` is what the user wrote.

    ``tp`` > 1: each entry of ``devices`` is a tensor-parallel group of ``tp`` GPUs
    (``DeviceSpec.group``, see tts_sim/sim/cluster/tensor_parallel.py); labels then name the GPUs a
    group spans (``H100:0-1``) and ``str`` counts GPUs, not groups."""

    devices: tuple[DeviceSpec, ...]
    text: str = ""
    tp: int = 1

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per device instance: ``NAME:i`` with i counting devices of that name
        (``NAME:i-j`` for a tensor-parallel group of GPUs i..j)."""
        seen: dict[str, int] = {}
        out = []
        k = self.tp
        for dev in self.devices:
            i = seen.get(dev.name, 0)
            seen[dev.name] = i + k
            out.append(f"{dev.name}:{i}" if k == 1 else f"{dev.name}:{i}-{i + k - 1}")
        return tuple(out)

    def __str__(self) -> str:
        groups: list[list] = []
        for dev in self.devices:
            if groups and groups[-1][1] == dev.name:
                groups[-1][0] += self.tp
            else:
                groups.append([self.tp, dev.name])
        return ",".join(f"{n}x{name}" for n, name in groups)

    def describe(self) -> str:
        """``str`` plus the tensor-parallel degree when there is one."""
        return str(self) if self.tp == 1 else f"{self} (tensor parallel {self.tp})"


def parse_cluster(text: str) -> ClusterSpec:
    """Parse ``[COUNT x] DEVICE[, ...]`` into a ``ClusterSpec`` (``ClusterError`` on any fault)."""
    if not isinstance(text, str):
        raise ClusterError(f"cluster spec must be text, got {type(text).__name__}")
    if not text.strip():
        raise ClusterError("empty cluster spec (expected e.g. '2xH100', '1xA100-80GB,2xL4' or 'cpu')")
    devices: list[DeviceSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ClusterError(f"cluster spec {text!r}: empty item (stray comma?)")
        match = _COUNTED.match(item)
        count, name = (match.group(1), match.group(2).strip()) if match else ("1", item)
        if not re.fullmatch(r"\+?\d+", count) or int(count) < 1:
            raise ClusterError(f"cluster spec {text!r}: item {item!r}: count must be a positive integer, got {count!r}")
        if not name:
            raise ClusterError(f"cluster spec {text!r}: item {item!r} names no device")
        try:
            device = get_device(name)
        except ClusterError as exc:
            raise ClusterError(f"cluster spec {text!r}: {exc}") from None
        if len(devices) + int(count) > MAX_DEVICES:
            raise ClusterError(f"cluster spec {text!r}: more than {MAX_DEVICES} devices")
        devices.extend([device] * int(count))
    return ClusterSpec(tuple(devices), text)
