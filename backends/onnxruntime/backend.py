"""``OnnxRuntimeBackend``: the tts_sim ``Backend`` protocol on local ONNX Runtime engines."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tts_sim.core.backend import BackendInfo, Generation, GenerationRequest
from tts_sim.errors import ConfigError

from .engine import OnnxEngine
from .export import prepare_model
from .manifest import ENGINE_QUANTIZATIONS, ENGINES, ModelManifest
from .sampling import SamplingParams


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's description)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def gpu_name() -> str:
    """The first NVIDIA GPU's name (via nvidia-smi), or "" when none answers."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""


class OnnxRuntimeBackend:
    """Serve chat requests with ONNX Runtime. ``model`` is a built-in name, a GGUF/HF path (prepared on first
    use into the cache) or a prepared model folder. Requests are decoded in batches of ``max_batch``.

    ``engine``: ``onnx`` (optimum export, ``OnnxEngine``) or ``genai`` (onnxruntime-genai model builder,
    ``GenaiEngine``; fused attention, several times faster on CPU). ``device``: ``cpu`` or ``cuda``; ``cuda``
    fails loudly when the session would run on the CPU instead."""

    name = "onnx"

    def __init__(self, quantization: str = "fp32", providers: list[str] | None = None, threads: int | None = None,
                 cache_dir: Path | None = None, max_batch: int = 8,
                 progress: Callable[[str], None] = print, spin: bool = False, engine: str = "onnx",
                 device: str = "cpu") -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
        if quantization not in ENGINE_QUANTIZATIONS[engine]:
            raise ConfigError(f"unknown quantization {quantization!r} for the {engine} engine "
                              f"(choose from {', '.join(ENGINE_QUANTIZATIONS[engine])})")
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"unknown device {device!r} (cpu or cuda)")
        if max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
        if device == "cuda" and providers is None:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.quantization, self.providers, self.threads = quantization, providers, threads
        self.cache_dir, self.max_batch, self.progress, self.spin = cache_dir, max_batch, progress, spin
        self.engine_name, self.device = engine, device
        self._engines: dict[str, Any] = {}

    def engine(self, model: str) -> Any:
        """The (cached) engine serving ``model`` (``OnnxEngine`` or ``GenaiEngine``, by the folder's manifest)."""
        if model not in self._engines:
            if self.device == "cuda":
                require_cuda_runtime(self.engine_name)  # before minutes of preparing a model
            folder = Path(model).expanduser()
            if not (folder / "tts_sim_model.json").is_file():
                folder = prepare_model(model, self.quantization, self.cache_dir, self.progress,
                                       engine=self.engine_name, execution_provider=self.device)
            self._engines[model] = open_engine(folder, self.device, self.providers, self.threads, self.spin)
        return self._engines[model]

    @property
    def concurrent_models(self) -> bool:
        """Whether calls to different models should run at the same time (``GraphExecutor`` asks): not on
        the CPU, where both engines' thread pools share the same cores. Measured on 2 cores (fidelity
        graphs whose levels mix SmolLM2 and Gemma, one query at a time): in threads a query took
        1.18-1.22x as long as one model after the other."""
        return self.device != "cpu"

    @property
    def equal_prompt_batches(self) -> bool:
        """Whether requests batch only with requests of equal prompt length (the genai engine: see
        ``batch_rows``); the simulator then serves a query's fusion nodes one at a time. Measured on
        fidelity graphs (2 cores): a level of 2-4 fusion calls took 15-25% longer than one batch of them."""
        return self.engine_name == "genai"

    def generate(self, model: str, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Completions in request order, decoded in batches of up to ``max_batch`` (see ``batch_rows``)."""
        engine = self.engine(model)
        prompts = [engine.encode_chat(r.messages) for r in requests]
        params = [SamplingParams(r.max_new_tokens, r.temperature, r.top_p, tuple(r.stop), r.seed) for r in requests]
        out: list[Generation | None] = [None] * len(requests)
        for rows in batch_rows([len(p) for p in prompts], self.max_batch,
                               getattr(engine, "equal_lengths_only", False)):
            results = engine.generate_batch([prompts[r] for r in rows], [params[r] for r in rows])
            for row, result in zip(rows, results, strict=True):
                out[row] = Generation(text=result.text, prompt_tokens=result.prompt_tokens,
                                      completion_tokens=result.completion_tokens, prefill_s=result.prefill_s,
                                      decode_s=result.decode_s, finish_reason=result.finish_reason)
        missing = [i for i, g in enumerate(out) if g is None]
        if missing:  # batch_rows covers every row; a gap is a bug, never a silently shorter answer
            raise ConfigError(f"onnx backend: no completion for request(s) {missing[:5]} of {len(out)}")
        return [g for g in out if g is not None]

    def info(self, model: str) -> BackendInfo:
        import onnxruntime

        engine = self.engine(model)
        version = onnxruntime.__version__
        if engine.manifest.engine == "genai":
            import onnxruntime_genai

            version = f"{version} (onnxruntime-genai {onnxruntime_genai.__version__})"
        device = gpu_name() if engine.provider == "CUDAExecutionProvider" else ""
        return BackendInfo(backend="onnxruntime", version=version, provider=engine.provider,
                           device=device or cpu_name(), model=model, quantization=engine.manifest.quantization,
                           extra={"providers": engine_providers(engine), "threads": engine.threads,
                                  "engine": engine.manifest.engine,
                                  "spin": engine.spin,
                                  "model_dir": str(engine.model_dir), "source": engine.manifest.source,
                                  "architecture": engine.manifest.architecture})


def batch_rows(lengths: Sequence[int], max_batch: int, equal_lengths_only: bool) -> list[list[int]]:
    """Request indices per engine call. An engine that pads mixed prompt lengths takes the requests in order,
    ``max_batch`` at a time. One that batches only equal lengths (``GenaiEngine``) would split such a chunk into
    one generator per length; so requests are grouped by prompt length over the whole call first and each group
    fills batches of ``max_batch`` (the profiler's k samples of each prompt decode k at a time, not k per chunk)."""
    if not equal_lengths_only:
        return [list(range(start, min(start + max_batch, len(lengths)))) for start in range(0, len(lengths), max_batch)]
    groups: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        groups.setdefault(length, []).append(row)
    return [rows[start:start + max_batch] for rows in groups.values() for start in range(0, len(rows), max_batch)]


def require_cuda_runtime(engine: str) -> None:
    """Fail at once when the installed runtime for ``engine`` cannot run CUDA (one-line ``ConfigError``)."""
    if engine == "genai":
        from .genai_engine import _import_genai

        if not _import_genai().is_cuda_available():
            raise ConfigError("--device cuda: this onnxruntime-genai has no usable CUDA "
                              "(install onnxruntime-genai-cuda with matching CUDA and cuDNN)")
        return
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise ConfigError(f"--device cuda: onnxruntime {onnxruntime.__version__} has no CUDAExecutionProvider "
                          "(install onnxruntime-gpu, not beside onnxruntime)")


def engine_providers(engine: Any) -> list[str]:
    """The execution providers an engine's session actually runs on."""
    session = getattr(engine, "session", None)
    return list(session.get_providers()) if session is not None else [engine.provider, "CPUExecutionProvider"]


def open_engine(folder: Path, device: str = "cpu", providers: list[str] | None = None, threads: int | None = None,
                spin: bool = False) -> Any:
    """The engine a prepared folder's manifest names, on ``device``."""
    manifest = ModelManifest.read(folder)
    if manifest.engine == "genai":
        from .genai_engine import GenaiEngine

        return GenaiEngine(folder, device=device, threads=threads, spin=spin)
    return OnnxEngine(folder, providers, threads, spin=spin, device=device)
