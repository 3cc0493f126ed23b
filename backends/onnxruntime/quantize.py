"""Weight quantisation of an exported fp32 ONNX model with onnxruntime's own tools.

* ``int8`` and ``int4``: blockwise (32) symmetric weights in ``MatMulNBits`` with accuracy level 4, i.e.
  activations quantised to int8 per block of each row. Results do not depend on the other sequences of
  a batch, and 8-bit logits stay within ~0.3% of fp32 (correlation 0.997 on SmolLM2).
* ``int8-dynamic``: ``quantize_dynamic`` (int8 MatMul and Gather weights, activations quantised with one
  scale per tensor at run time). That scale spans the whole batch, so one sequence's tokens change with
  the other prompts of its batch; kept for comparison with environment.md's figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tts_sim.errors import ConfigError

from .graph_edit import save_onnx

BLOCK_SIZE = 32


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """Silence the quantisers' root-logger chatter, and undo the ``basicConfig`` that
    ``matmul_nbits_quantizer`` runs on import."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)


def quantize_dynamic_int8(src: Path, dst: Path) -> None:
    """``quantize_dynamic``: int8 weights, per-tensor dynamic int8 activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    large = any(src.parent.glob(src.name + "_data"))
    with _quiet_logging():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, use_external_data_format=large)


def quantize_nbits(src: Path, dst: Path, bits: int, block_size: int = BLOCK_SIZE) -> None:
    """Blockwise symmetric ``bits``-bit MatMul weights (MatMulNBits), int8 compute (accuracy level 4)."""
    with _quiet_logging():
        try:
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        except ModuleNotFoundError as exc:  # onnxruntime >= 1.22 needs onnx_ir for this quantizer
            missing = exc.name or "onnx_ir"  # the name is always set by a failed import
            raise ConfigError(f"{bits}-bit quantisation needs the package {missing!r} "
                              f"(pip install {missing.replace('_', '-')})") from None
        import onnx

        quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits, block_size=block_size, is_symmetric=True,
                                         accuracy_level=4)
        quantizer.process()
    save_onnx(quantizer.model.model, dst)


#: quantisation name -> (how it is made, one-line description)
QUANTIZERS = {
    "int8": (lambda src, dst: quantize_nbits(src, dst, 8), "int8 weights (MatMulNBits, block 32)"),
    "int4": (lambda src, dst: quantize_nbits(src, dst, 4), "int4 weights (MatMulNBits, block 32)"),
    "int8-dynamic": (quantize_dynamic_int8, "int8 dynamic (quantize_dynamic; batch-dependent)"),
}
