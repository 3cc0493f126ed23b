"""Device catalogue: peak compute, memory bandwidth and memory of each accelerator kind.

GPU figures are public datasheet numbers (dense bf16, no sparsity); ``cpu`` is this machine
(2 vCPU AMD EPYC Zen 4, AVX-512): 2 cores x ~3 GHz x 32 fp32 FLOP/cycle = 1.9e11 FLOP/s, which a
numpy 2048^3 fp32 matmul on 2 threads reaches (194 GFLOP/s measured), 33 GB/s measured bandwidth
(numpy, 2 threads) and 24 GiB of RAM. Names are case-insensitive; third parties register more in
``DEVICES`` (entry-point group ``tts_sim.devices``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tts_sim.errors import ClusterError
from tts_sim.registry import Registry

GB = 1e9
GIB = 2**30


@dataclass(frozen=True)
class DeviceSpec:
    """One device kind. ``peak_flops``: dense bf16 FLOP/s (fp32 for ``cpu``); ``mem_bw``: bytes/s."""

    name: str
    kind: str  # "gpu" | "cpu"
    peak_flops: float
    mem_bw: float
    mem_bytes: float
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("gpu", "cpu"):
            raise ClusterError(f"device {self.name!r}: kind must be 'gpu' or 'cpu', got {self.kind!r}")
        for field_name in ("peak_flops", "mem_bw", "mem_bytes"):
            value = getattr(self, field_name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ClusterError(f"device {self.name!r}: {field_name} must be positive, got {value!r}")


DEVICES: Registry[DeviceSpec] = Registry("devices")

# The built-in devices, declared as entry points (group ``tts_sim.devices``) in pyproject.toml.
H100 = DeviceSpec("H100", "gpu", 989e12, 3350 * GB, 80 * GB, "H100 SXM datasheet")
H200 = DeviceSpec("H200", "gpu", 989e12, 4800 * GB, 141 * GB, "H200 SXM datasheet")
A100_80GB = DeviceSpec("A100-80GB", "gpu", 312e12, 2039 * GB, 80 * GB, "A100 SXM 80GB datasheet")
A100_40GB = DeviceSpec("A100-40GB", "gpu", 312e12, 1555 * GB, 40 * GB, "A100 40GB datasheet")
L4 = DeviceSpec("L4", "gpu", 121e12, 300 * GB, 24 * GB, "L4 datasheet")
CPU = DeviceSpec("cpu", "cpu", 1.9e11, 33 * GB, 24 * GIB, "this machine: 2 vCPU EPYC Zen 4, measured")


def get_device(name: str) -> DeviceSpec:
    """The registered device called ``name`` (any case); ``ClusterError`` naming the known ones if none."""
    key = name.strip().lower()
    if key in DEVICES:
        return DEVICES.get(key)
    for known in DEVICES.names():  # entry points may register mixed-case names
        if known.lower() == key:
            return DEVICES.get(known)
    names = ", ".join(DEVICES.get(n).name for n in DEVICES.names())
    raise ClusterError(f"unknown device {name.strip()!r} (known: {names})")
