"""Device catalogue: peak compute, memory bandwidth and memory of each accelerator kind.

GPU figures are public datasheet numbers (dense bf16, no sparsity); ``cpu`` is this machine
(2 vCPU AMD EPYC Zen 4, AVX-512): 2 cores x ~3 GHz x 32 fp32 FLOP/cycle = 1.9e11 FLOP/s, which a
numpy 2048^3 fp32 matmul on 2 threads reaches (194 GFLOP/s measured), 33 GB/s measured bandwidth
(numpy, 2 threads) and 24 GiB of RAM. Names are case-insensitive; third parties register more in
``DEVICES`` (entry-point group ``tts_sim.devices``).

Interconnect (tensor parallelism): ``link_bw`` is the per-GPU, per-direction bandwidth of the
GPU-to-GPU link (half the datasheet's bidirectional NVLink figure; PCIe for cards without NVLink),
``link_latency_s`` a fixed cost per all-reduce; ``link_source`` says where both come from. The
latencies are Vidur's NCCL measurements on DGX A100 / DGX H100 (tts_sim/data/device_calibration.json,
``allreduce``); the H200 and A100-40GB borrow them (same NVLink generation and NVSwitch), the L4
has none (0: the bandwidth term only, a lower bound). A device without ``link_bw`` cannot be
tensor-parallel.

Calibration: ``calibration`` holds per-device roofline factors (compute and bandwidth efficiency,
fixed per-step overhead, overlap of compute and memory time), each with its source
(tts_sim/sim/cluster/calibration.py fits them to the published figures in
tts_sim/data/device_calibration.json). None: the predictor's defaults apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tts_sim.errors import ClusterError
from tts_sim.registry import Registry

GB = 1e9
GIB = 2**30


@dataclass(frozen=True)
class Calibration:
    """Roofline factors of one device, each value with its source."""

    compute_eff: float
    bandwidth_eff: float
    overhead_s: float
    compute_source: str
    bandwidth_source: str
    overhead_source: str
    #: p of the roofline's p-norm of compute and memory time (inf: their max), with its source
    overlap: float = math.inf
    overlap_source: str = "default: the max of compute and memory time"

    def __post_init__(self) -> None:
        for name in ("compute_eff", "bandwidth_eff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ClusterError(f"calibration {name} must be positive, got {value!r}")
        if not (isinstance(self.overhead_s, (int, float)) and 0 <= self.overhead_s < math.inf):
            raise ClusterError(f"calibration overhead_s must be >= 0, got {self.overhead_s!r}")
        if not (isinstance(self.overlap, (int, float)) and self.overlap >= 1):
            raise ClusterError(f"calibration overlap must be >= 1, got {self.overlap!r}")


@dataclass(frozen=True)
class DeviceSpec:
    """One device kind. ``peak_flops``: dense bf16 FLOP/s (fp32 for ``cpu``); ``mem_bw``: bytes/s.

    ``tp`` > 1: a tensor-parallel group of ``tp`` such devices acting as one replica (``group``):
    compute, bandwidth and memory are the group's totals; predictors add the all-reduce cost."""

    name: str
    kind: str  # "gpu" | "cpu"
    peak_flops: float
    mem_bw: float
    mem_bytes: float
    source: str = ""
    link_bw: float | None = None
    link_latency_s: float = 0.0
    link_source: str = ""
    calibration: Calibration | None = None
    tp: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("gpu", "cpu"):
            raise ClusterError(f"device {self.name!r}: kind must be 'gpu' or 'cpu', got {self.kind!r}")
        for field_name in ("peak_flops", "mem_bw", "mem_bytes"):
            value = getattr(self, field_name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ClusterError(f"device {self.name!r}: {field_name} must be positive, got {value!r}")
        if self.link_bw is not None and not (isinstance(self.link_bw, (int, float)) and self.link_bw > 0):
            raise ClusterError(f"device {self.name!r}: link_bw must be positive, got {self.link_bw!r}")
        if not (isinstance(self.link_latency_s, (int, float)) and self.link_latency_s >= 0):
            raise ClusterError(f"device {self.name!r}: link_latency_s must be >= 0, got {self.link_latency_s!r}")
        if isinstance(self.tp, bool) or not isinstance(self.tp, int) or self.tp < 1:
            raise ClusterError(f"device {self.name!r}: tp must be a positive integer, got {self.tp!r}")

    def group(self, k: int) -> DeviceSpec:
        """A tensor-parallel group of ``k`` of these devices, seen as one device (k = 1: itself)."""
        if k == 1:
            return self
        if self.link_bw is None:
            raise ClusterError(f"device {self.name} has no GPU-to-GPU link in the catalogue: it cannot be "
                               f"tensor-parallel (--tp {k})")
        return replace(self, peak_flops=self.peak_flops * k, mem_bw=self.mem_bw * k,
                       mem_bytes=self.mem_bytes * k, tp=k)


DEVICES: Registry[DeviceSpec] = Registry("devices")

#: Per-device roofline factors fitted to published measurements (the figures and their sources are
#: in tts_sim/data/device_calibration.json; ``python benchmarks/device_calibration.py --fit`` refits
#: them and tests/test_calibration.py checks these values against a refit). Devices absent here
#: (H200, L4, cpu) have no published measurement in that file: the predictor's defaults.
_TRTLLM = "TensorRT-LLM performance.md, A100 FP16 Llama-2-7b first-token latency " \
    "<https://github.com/NVIDIA/TensorRT-LLM/blob/v0.6.1/docs/source/performance.md>"
_NEMO = "NeMo Framework Llama 2 inference performance, 128 in / 20 out, batch 1-8 " \
    "<https://docs.nvidia.com/nemo-framework/user-guide/latest/performance/llama.html>"
_VLLM_A100_40 = "vLLM Llama-3.1-8B BF16 decode on A100 40GB, about 75 tokens/s " \
    "<https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on>"
_VIDUR = "Vidur's Llama-2-7B operator timings <https://github.com/microsoft/vidur/tree/" \
    "7d47513363ec447a741ac5e47241580b47724fbf/data/profiling>"
_DEFAULT = "no published figure in tts_sim/data/device_calibration.json fixes it: roofline default"
_A100_80 = f"fitted to {_TRTLLM}, {_NEMO} and {_VIDUR}"
_H100 = f"fitted to {_NEMO} and {_VIDUR}"
CALIBRATIONS: dict[str, Calibration] = {
    "A100-80GB": Calibration(0.6594, 0.6965, 0.002669, _A100_80, _A100_80, _A100_80, 2.011, _A100_80),
    "H100": Calibration(0.6777, 0.6967, 0.002304, _H100, _H100, _H100, 1.486, _H100),
    "A100-40GB": Calibration(0.5, 0.8119, 5e-4, _DEFAULT, f"fitted to {_VLLM_A100_40}", _DEFAULT),
}

# The built-in devices, declared as entry points (group ``tts_sim.devices``) in pyproject.toml.
_ALLREDUCE = "per-all-reduce latency: median of Vidur's small NCCL all-reduces on a {} (2-8 GPUs) " \
    "<https://github.com/microsoft/vidur/tree/7d47513363ec447a741ac5e47241580b47724fbf/data/profiling/network>"
_NVLINK4 = "NVLink 4: 900 GB/s bidirectional per GPU (H100/H200 SXM datasheet) -> 450 GB/s per direction; " \
    + _ALLREDUCE.format("DGX H100")
_NVLINK3 = "NVLink 3: 600 GB/s bidirectional per GPU (A100 SXM datasheet) -> 300 GB/s per direction; " \
    + _ALLREDUCE.format("DGX A100")
_BORROWED = " (measured on the {}: same NVLink generation and NVSwitch)"
#: Seconds of one small all-reduce (tts_sim/data/device_calibration.json ``allreduce``; tests/test_calibration.py
#: checks them against ``calibration.link_latencies``).
LINK_LATENCY_S = {"H100": 3.9e-05, "A100-80GB": 4.2e-05}
_PCIE4 = "no NVLink; PCIe Gen4 x16: 64 GB/s bidirectional (L4 datasheet) -> 32 GB/s per direction; " \
    "per-all-reduce latency: no published figure found, 0"
H100 = DeviceSpec("H100", "gpu", 989e12, 3350 * GB, 80 * GB, "H100 SXM datasheet", 450 * GB, LINK_LATENCY_S["H100"],
                  _NVLINK4, CALIBRATIONS.get("H100"))
H200 = DeviceSpec("H200", "gpu", 989e12, 4800 * GB, 141 * GB, "H200 SXM datasheet", 450 * GB, LINK_LATENCY_S["H100"],
                  _NVLINK4 + _BORROWED.format("H100"), CALIBRATIONS.get("H200"))
A100_80GB = DeviceSpec("A100-80GB", "gpu", 312e12, 2039 * GB, 80 * GB, "A100 SXM 80GB datasheet", 300 * GB,
                       LINK_LATENCY_S["A100-80GB"], _NVLINK3, CALIBRATIONS.get("A100-80GB"))
A100_40GB = DeviceSpec("A100-40GB", "gpu", 312e12, 1555 * GB, 40 * GB, "A100 40GB datasheet", 300 * GB,
                       LINK_LATENCY_S["A100-80GB"], _NVLINK3 + _BORROWED.format("DGX A100, memory size not stated"),
                       CALIBRATIONS.get("A100-40GB"))
L4 = DeviceSpec("L4", "gpu", 121e12, 300 * GB, 24 * GB, "L4 datasheet", 32 * GB, 0.0, _PCIE4, CALIBRATIONS.get("L4"))
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
