"""ONNX Runtime backend: prepare GGUF / Hugging Face models as ONNX, generate with onnxruntime alone.

Two engines, named in each prepared folder's manifest (``open_engine`` picks):
  * ``onnx``: optimum export + ``OnnxEngine`` (numpy loop); exact against transformers, used by the tiny
    random test models and every quantisation including ``int8-dynamic``;
  * ``genai``: the onnxruntime-genai model builder (fused GroupQueryAttention, MatMulNBits, shared KV buffer)
    + ``GenaiEngine`` (``og.Generator``); several times faster on CPU, and the CUDA path.

``prepare_model`` needs the export extras (torch, transformers, optimum-onnx, gguf) only when it has to
convert (the genai builder runs in its own venv, see ``genai_build.py``); the engines need onnxruntime
(plus onnxruntime-genai for ``genai``), tokenizers, numpy and jinja2.
"""

from .backend import OnnxRuntimeBackend, cpu_name, open_engine
from .chat import render_chat
from .engine import GenerationResult, OnnxEngine, StepTiming
from .export import BUILTIN_MODELS, default_cache_dir, prepare_model
from .genai_engine import GenaiEngine
from .manifest import ENGINES, QUANTIZATIONS, ModelManifest
from .sampling import SamplingParams

__all__ = ["BUILTIN_MODELS", "ENGINES", "QUANTIZATIONS", "GenaiEngine", "GenerationResult", "ModelManifest",
           "OnnxEngine", "OnnxRuntimeBackend", "SamplingParams", "StepTiming", "cpu_name", "default_cache_dir",
           "open_engine", "prepare_model", "render_chat"]
