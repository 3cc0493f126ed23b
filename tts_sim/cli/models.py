"""``tts-sim models``: the model catalog; ``tts-sim models prepare``: a real model for ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts_sim.cli.options import add_common, catalog_from, emit, table

#: the engines' quantisations, for the CLI's choices: tts_sim.backends.onnxruntime's ENGINE_QUANTIZATIONS, not
#: imported (that imports onnxruntime); tests/test_cli_rough_edges.py checks the two agree
QUANTIZATIONS = ("fp32", "int8", "int4", "int8-dynamic", "int4-b128", "fp16")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model catalog, or prepare a real model")
    add_common(p, task=False)
    p.set_defaults(func=cmd_models)
    msub = p.add_subparsers(dest="models_command", parser_class=type(p))
    q = msub.add_parser("prepare", help="convert a GGUF / Hugging Face model to ONNX")
    q.add_argument("name", help="smollm2-135m, gemma-3-270m, or a .gguf file / HF folder")
    q.add_argument("--quantization", "-q", choices=QUANTIZATIONS, default="fp32",
                   help="int8/int4: weight-only (MatMulNBits); int8-dynamic: quantize_dynamic (mixes batch rows); "
                        "int4-b128 (genai): int4 in blocks of 128, faster, batch rows differ from single ones")
    q.add_argument("--engine", choices=("onnx", "genai"), default="onnx",
                   help="onnx: optimum export; genai: onnxruntime-genai model builder (fused attention, fastest; "
                        "fp32/int8/int4)")
    q.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="genai: build for this device")
    q.add_argument("--cache-dir", help="prepared models (default: $TTS_SIM_CACHE or ~/.cache/tts-sim/models)")
    q.add_argument("--json", action="store_true", help="print JSON instead of text")
    q.set_defaults(func=cmd_models_prepare)


def cmd_models(args: argparse.Namespace) -> None:
    specs = catalog_from(args).specs()
    rows = [(s.name, s.family, f"{s.params / 1e9:.2f}B", s.layers, s.hidden, f"{s.heads}/{s.kv_heads}",
             s.head_dim, f"{s.weight_bytes / 2**30:.2f}", s.source) for s in specs]
    emit(args, [s.to_dict() for s in specs],
         table(["model", "family", "params", "layers", "hidden", "heads/kv", "head_dim", "weights GiB", "source"],
               rows))


def cmd_models_prepare(args: argparse.Namespace) -> None:
    from tts_sim.backends.onnxruntime import prepare_model

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout)

    path = prepare_model(args.name, args.quantization, Path(args.cache_dir) if args.cache_dir else None,
                         progress=progress, engine=args.engine, execution_provider=args.device)
    emit(args, {"model_dir": str(path)}, f"ready: {path}")
