"""ONNX Runtime backend: prepare GGUF / Hugging Face models as ONNX, generate with onnxruntime alone.

``prepare_model`` needs the export extras (torch, transformers, optimum-onnx, gguf) only when it has to
convert; ``OnnxEngine`` and ``OnnxRuntimeBackend`` need onnxruntime, tokenizers, numpy and jinja2.
"""

from .backend import OnnxRuntimeBackend, cpu_name
from .chat import render_chat
from .engine import GenerationResult, OnnxEngine, StepTiming
from .export import BUILTIN_MODELS, default_cache_dir, prepare_model
from .manifest import QUANTIZATIONS, ModelManifest
from .sampling import SamplingParams

__all__ = ["BUILTIN_MODELS", "QUANTIZATIONS", "GenerationResult", "ModelManifest", "OnnxEngine",
           "OnnxRuntimeBackend", "SamplingParams", "StepTiming", "cpu_name", "default_cache_dir",
           "prepare_model", "render_chat"]
