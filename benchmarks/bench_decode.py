"""Decode speed of the ONNX Runtime backend beside the memory-bandwidth bound and llama.cpp, in one run.

For each model (both real models by default) and each variant ``ENGINE:QUANT`` (default ``genai:int4``, the
onnxruntime-genai model builder's int4 graph; ``onnx:int4`` is the optimum export + numpy loop):
  * step tok/s: 1 / median seconds of a single-stream decode step at ``--context`` cached tokens
  * generate tok/s: greedy chat generation of up to ``--new-tokens`` tokens, (tokens - 1) / decode seconds
  * bound tok/s: bandwidth / bytes read per token (weights except embedding tables, plus the KV cache)
  * llama.cpp tok/s: ``llama-server`` (built by ``benchmarks/llama_server.py``) serving the same GGUF with the
    same threads, its own streamed ``timings.predicted_per_second`` over ``--new-tokens`` greedy tokens
One llama-server per model stays up while rounds alternate it and the variants (one generation each), so
that load from other processes hits both alike; the ratio (generate tok/s over llama-server's tok/s, the same
statistic: new tokens over decode time, prefill excluded) is taken per round and its median reported.
Then batched throughput per model and variant: generated tokens/s at ``--batches``, from
the decode step time (batch / step seconds) and end to end (sampled generation, temperature 0.7, prefill
included, tokens generated / wall seconds).

    python benchmarks/bench_decode.py --out /tmp/bench_decode   # writes .json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llama_server import LlamaServer, LlamaServerError, ensure_llama_server  # noqa: E402
from tts_sim.backends.onnxruntime import cpu_name, prepare_model  # noqa: E402
from tts_sim.backends.onnxruntime.backend import open_engine  # noqa: E402
from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, default_cache_dir  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long story about a robot who learns to paint. Use many details."}]
LLAMA_PROMPT = "Write a long story about a robot who learns to paint. Use many details."


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


def kv_bytes(manifest, context: int) -> float:
    """fp32 keys and values of every layer at ``context`` positions."""
    return 2 * manifest.num_layers * manifest.num_kv_heads * manifest.head_dim * context * 4


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Variant:
    """One prepared model + engine, measured in every round."""

    def __init__(self, model: str, spec: str, args: argparse.Namespace) -> None:
        self.model, self.spec = model, spec
        if ":" in spec:
            engine_name, quantization = spec.split(":")
            progress = lambda m: print(f"  {m}", flush=True)  # noqa: E731
            self.folder = prepare_model(model, quantization, progress=progress, engine=engine_name)
        else:  # a prepared folder, e.g. one built with other options, measured beside the default
            self.folder = Path(spec.replace("{model}", model)).expanduser()
        self.engine = open_engine(self.folder, threads=args.threads, spin=args.spin)
        manifest = self.engine.manifest
        weights_read, self.weights_total = bytes_per_token(self.folder, manifest.onnx_file)
        self.per_token = weights_read + kv_bytes(manifest, args.context)
        self.prompt = self.engine.encode_chat(PROMPT)
        self.engine.generate([self.prompt], max_new_tokens=8)  # warm-up
        self.steps: list[float] = []
        self.generate: list[float] = []
        self.tokens: list[int] = []
        self.sample = ""

    def measure(self, args: argparse.Namespace) -> float:
        step_s = self.engine.time_decode(args.context, batch=1, steps=args.steps)
        result = self.engine.generate([self.prompt], max_new_tokens=args.new_tokens)[0]
        self.steps.append(1 / step_s)
        if result.completion_tokens > 1:
            self.generate.append((result.completion_tokens - 1) / result.decode_s)
        self.tokens.append(result.completion_tokens)
        self.sample = result.text[:80]
        return self.generate[-1] if result.completion_tokens > 1 else 1 / step_s


def batched(variant: Variant, args: argparse.Namespace) -> list[dict]:
    rows = []
    for batch in args.batches:
        step_s = variant.engine.time_decode(args.context, batch=batch, steps=max(4, args.steps // 4))
        start = time.perf_counter()
        results = variant.engine.generate([variant.prompt] * batch, max_new_tokens=args.batch_new_tokens,
                                          temperature=0.7, seed=0)
        wall = time.perf_counter() - start
        generated = sum(r.completion_tokens for r in results)
        rows.append({"model": variant.model, "variant": variant.spec, "batch": batch,
                     "step_ms": round(step_s * 1e3, 2), "decode_tok_s": round(batch / step_s, 1),
                     "sampled_tokens": generated, "sampled_wall_s": round(wall, 2),
                     "sampled_tok_s": round(generated / wall, 1), "load": load()})
        print(f"  {variant.model} {variant.spec} batch {batch}: decode {rows[-1]['decode_tok_s']} tok/s, "
              f"sampled end to end {rows[-1]['sampled_tok_s']} tok/s (load {load()})", flush=True)
    return rows


REFILL_PROMPTS = ("Write a long story about a robot who learns to paint. Use many details.",
                  "Name a colour.")


def refill(variant: Variant, args: argparse.Namespace) -> list[dict]:
    """Profiler-shaped call: ``--refill-samples`` sampled completions of each of two prompts of different
    lengths, interleaved, decoded in batches of ``--max-batch`` as ``OnnxRuntimeBackend.generate`` cuts them:
    in request order (before; the genai engine then runs one generator per prompt length in each chunk) and
    grouped by prompt length (``batch_rows``, now). Generated tokens / wall seconds, prefill included."""
    from tts_sim.backends.onnxruntime.backend import batch_rows
    from tts_sim.backends.onnxruntime.sampling import SamplingParams

    prompts = [variant.engine.encode_chat([{"role": "user", "content": text}]) for text in REFILL_PROMPTS]
    ids = [prompts[i % 2] for i in range(2 * args.refill_samples)]
    params = [SamplingParams(args.batch_new_tokens, 0.7, 1.0, (), i) for i in range(len(ids))]
    rows = []
    for grouped in (False, True):
        start, generated, batches = time.perf_counter(), 0, []
        for chunk in batch_rows([len(p) for p in ids], args.max_batch, grouped):
            results = variant.engine.generate_batch([ids[r] for r in chunk], [params[r] for r in chunk])
            generated += sum(r.completion_tokens for r in results)
            # sequences decoded together: the genai engine runs one generator per prompt length in a call
            lengths = [len(ids[r]) for r in chunk]
            batches += ([lengths.count(n) for n in dict.fromkeys(lengths)]
                        if getattr(variant.engine, "equal_lengths_only", False) else [len(chunk)])
        wall = time.perf_counter() - start
        rows.append({"model": variant.model, "variant": variant.spec, "batching": "by length" if grouped else
                     "in order", "requests": len(ids), "max_batch": args.max_batch, "batches": batches,
                     "tokens": generated, "wall_s": round(wall, 2), "tok_s": round(generated / wall, 1),
                     "load": load()})
        print(f"  {variant.model} {variant.spec} refill ({rows[-1]['batching']}): {rows[-1]['tok_s']} tok/s "
              f"(load {load()})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--variants", nargs="+", default=["genai:int4"],
                        help="ENGINE:QUANT, engine onnx or genai (e.g. genai:int4 genai:fp32 onnx:int4), or a "
                             "prepared model folder ({model} stands for the model name)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spin", action="store_true",
                        help="let idle threads busy-wait: onnxruntime's and llama-server's (OpenMP) alike")
    parser.add_argument("--context", type=int, default=128, help="cached tokens for the decode-step timing")
    parser.add_argument("--steps", type=int, default=32, help="decode steps timed per measurement")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8, help="alternating llama-server / variant rounds")
    parser.add_argument("--no-llama", action="store_true", help="skip llama-server")
    parser.add_argument("--llama-server", type=Path, help="a llama-server binary (default: build/find the cached one)")
    parser.add_argument("--llama-args", nargs="*", default=[], help="extra llama-server arguments, e.g. --no-repack")
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 4, 8, 16])
    parser.add_argument("--batch-new-tokens", type=int, default=64)
    parser.add_argument("--refill-samples", type=int, default=8,
                        help="samples per prompt in the refill comparison (0: skip it)")
    parser.add_argument("--max-batch", type=int, default=8, help="backend batch size in the refill comparison")
    parser.add_argument("--bandwidth-gbs", type=float, default=33.0,
                        help="memory bandwidth (environment.md: 2 threads)")
    parser.add_argument("--out", type=Path, default=Path("bench_decode"), help="output prefix (.json and .md)")
    args = parser.parse_args(argv)
    for spec in args.variants:
        folders = [Path(spec.replace("{model}", m)).expanduser() for m in args.models]
        if spec.count(":") != 1 and not all((f / "tts_sim_model.json").is_file() for f in folders):
            print(f"error: variant {spec!r} is neither ENGINE:QUANT nor a prepared model folder", file=sys.stderr)
            return 2

    import onnxruntime

    started = time.time()
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cpu": cpu_name(),
            "cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__, "load_avg_start": os.getloadavg(),
            "bandwidth_gbs": args.bandwidth_gbs, "args": vars(args) | {"out": str(args.out)}}
    try:
        import onnxruntime_genai

        meta["onnxruntime_genai"] = onnxruntime_genai.__version__
    except ImportError:
        pass
    binary = None
    if not args.no_llama:
        try:
            binary = args.llama_server or ensure_llama_server(progress=lambda m: print(f"  {m}", flush=True))
            meta["llama_server"] = str(binary)
        except LlamaServerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    single, batch_rows, refill_rows = [], [], []
    for model in args.models:
        print(f"{model}", flush=True)
        variants = [Variant(model, spec, args) for spec in args.variants]
        gguf = BUILTIN_MODELS[model].locate(default_cache_dir()) if model in BUILTIN_MODELS else None
        llama: list[float] = []
        ratios: dict[str, list[float]] = {v.spec: [] for v in variants}
        server = None
        if binary is not None and gguf is not None:  # one server per model, kept up through the rounds
            server = LlamaServer(binary, gguf, threads=args.threads, spin=args.spin,
                                 extra_args=args.llama_args).start()
            server.complete(LLAMA_PROMPT, max_tokens=8)  # warm-up
        try:
            for round_ in range(args.rounds):
                if server is not None:
                    llama.append(server.complete(LLAMA_PROMPT, max_tokens=args.new_tokens).decode_tok_s)
                for variant in variants:
                    tok_s = variant.measure(args)
                    if llama:
                        ratios[variant.spec].append(tok_s / llama[-1])
                print(f"  round {round_ + 1}: llama-server {llama[-1] if llama else 0:.1f} tok/s; "
                      + "; ".join(f"{v.spec} step {v.steps[-1]:.1f} gen {v.generate[-1] if v.generate else 0:.1f}"
                                  for v in variants) + f" (load {load()})", flush=True)
        finally:
            if server is not None:
                server.stop()
        for variant in variants:
            bound = args.bandwidth_gbs * 1e9 / variant.per_token
            step = statistics.median(variant.steps)
            single.append({
                "model": model, "variant": variant.spec, "provider": variant.engine.provider,
                "threads": args.threads, "file_mb": round(sum(f.stat().st_size for f in
                                                              variant.folder.glob("model.onnx*")) / 1e6, 1),
                "read_per_token_mb": round(variant.per_token / 1e6, 1), "context": args.context,
                "step_tok_s": round(step, 1), "step_tok_s_rounds": [round(x, 1) for x in variant.steps],
                "generate_tok_s": round(statistics.median(variant.generate), 1) if variant.generate else None,
                "generated_tokens": variant.tokens, "bandwidth_bound_tok_s": round(bound, 1),
                "fraction_of_bound": round(step / bound, 3),
                "llama_server_tok_s": round(statistics.median(llama), 1) if llama else None,
                "llama_server_rounds": llama,
                "ratio_vs_llama": round(statistics.median(ratios[variant.spec]), 2) if llama else None,
                "sample": variant.sample})
        for variant in variants:
            batch_rows += batched(variant, args)
            if args.refill_samples > 0:
                refill_rows += refill(variant, args)
    meta["load_avg_end"] = os.getloadavg()
    meta["wall_s"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "single": single, "batched": batch_rows,
                                                         "refill": refill_rows},
                                                        indent=2, default=str) + "\n")
    text = tables(single, batch_rows, refill_rows)
    args.out.with_suffix(".md").write_text(f"{text}\n{json.dumps(meta, default=str)}\n")
    print(text)
    return 0


def tables(single: list[dict], batch_rows: list[dict], refill_rows: Sequence[dict] = ()) -> str:
    head = ("| model | variant | file MB | read/token MB | step tok/s | generate tok/s | bound tok/s | % of bound "
            "| llama-server tok/s | generate / llama-server (per-round median) |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['model']} | {r['variant']} | {r['file_mb']:.0f} | {r['read_per_token_mb']:.0f} "
        f"| {r['step_tok_s']:.1f} | {r['generate_tok_s'] or '-'} | {r['bandwidth_bound_tok_s']:.0f} "
        f"| {100 * r['fraction_of_bound']:.0f}% | {r['llama_server_tok_s'] or '-'} | {r['ratio_vs_llama'] or '-'} |\n"
        for r in single)
    bhead = ("\n| model | variant | batch | step ms | decode tok/s | sampled end-to-end tok/s |\n"
             "|---|---|---|---|---|---|\n")
    bbody = "".join(f"| {r['model']} | {r['variant']} | {r['batch']} | {r['step_ms']} | {r['decode_tok_s']} "
                    f"| {r['sampled_tok_s']} |\n" for r in batch_rows)
    rhead = ("\n| model | variant | batching | requests | batches | tokens | wall s | tok/s |\n"
             "|---|---|---|---|---|---|---|---|\n")
    rbody = "".join(f"| {r['model']} | {r['variant']} | {r['batching']} | {r['requests']} | {r['batches']} "
                    f"| {r['tokens']} | {r['wall_s']} | {r['tok_s']} |\n" for r in refill_rows)
    return head + body + (bhead + bbody if batch_rows else "") + (rhead + rbody if refill_rows else "")


if __name__ == "__main__":
    raise SystemExit(main())
