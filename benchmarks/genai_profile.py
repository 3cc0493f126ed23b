"""Where the genai engine's single-stream decode time goes (issue 10), in one process:

  * our ``GenaiEngine.generate`` (greedy) beside a bare ``og.Generator`` loop (onnxruntime-genai's own
    example: ``append_tokens`` then ``generate_next_token`` only) on the same model, alternating rounds;
  * cProfile of one ``generate``: onnxruntime-genai's forward calls vs our Python;
  * onnxruntime's own profiler (``enable_profiling``): kernel time per operator type over the decode steps.

    python benchmarks/genai_profile.py --model smollm2-135m --threads 2 --out /tmp/genai_profile.json
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.backends.onnxruntime import prepare_model  # noqa: E402
from tts_sim.backends.onnxruntime.backend import open_engine  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long story about a robot who learns to paint. Use many details."}]


def _model(folder: Path, threads: int, extra: dict | None = None):
    import onnxruntime_genai as og

    config = og.Config(str(folder))
    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1, "allow_spinning": "0", **(extra or {})}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return og.Model(config)


def bare_loop(model, ids: list[int], new_tokens: int, max_length: int) -> float:
    """Tokens/s of onnxruntime-genai's plain greedy loop (no Python per token beyond the call)."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=max_length, batch_size=1, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.asarray([ids], dtype=np.int32))
    generator.generate_next_token()
    start = time.perf_counter()
    for _ in range(new_tokens - 1):
        generator.generate_next_token()
    return (new_tokens - 1) / (time.perf_counter() - start)


def op_profile(folder: Path, threads: int, ids: list[int], new_tokens: int, max_length: int) -> dict:
    """Share of kernel time per operator type over ``new_tokens`` decode steps (prefill left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            model = _model(folder, threads, {"enable_profiling": "ort_profile_"})
            bare_loop(model, ids, new_tokens, max_length)
            del model
            events = json.loads(next(Path(tmp).glob("ort_profile_*.json")).read_text())
        finally:
            os.chdir(cwd)
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    decode_start = runs[1]["ts"] if len(runs) > 1 else 0  # the first run is the prefill
    per_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= decode_start:
            per_op[e["args"].get("op_name", "?")] += e["dur"]
    total = sum(per_op.values())
    steps = [r["dur"] / 1e3 for r in runs[1:]]
    return {"decode_steps": len(steps), "median_step_ms": round(statistics.median(steps), 2) if steps else None,
            "kernel_share": {op: round(us / total, 3) for op, us in per_op.most_common(8)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quantization", default="int4")
    parser.add_argument("--folder", type=Path, help="a prepared genai folder instead of --model/--quantization")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("genai_profile.json"))
    args = parser.parse_args(argv)
    folder = args.folder or prepare_model(args.model, args.quantization, progress=lambda _: None, engine="genai")
    engine = open_engine(folder, threads=args.threads)
    ids = engine.encode_chat(PROMPT)
    max_length = max(len(ids) + args.new_tokens, engine.min_length)
    bare = _model(folder, args.threads)
    engine.generate([ids], max_new_tokens=8)
    ours, plain, loads = [], [], []
    for _ in range(args.rounds):
        result = engine.generate([ids], max_new_tokens=args.new_tokens)[0]
        ours.append((result.completion_tokens - 1) / result.decode_s)
        plain.append(bare_loop(bare, ids, result.completion_tokens, max_length))
        loads.append(round(os.getloadavg()[0], 2))
    profiler = cProfile.Profile()
    profiler.enable()
    start = time.perf_counter()
    engine.generate([ids], max_new_tokens=args.new_tokens)
    wall = time.perf_counter() - start
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    genai_s = sum(v[2] for k, v in stats.items() if k[0] == "~" and "onnxruntime_genai" in k[2])
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "folder": str(folder), "threads": args.threads,
        "engine_tok_s": [round(x, 1) for x in ours], "bare_loop_tok_s": [round(x, 1) for x in plain],
        "engine_over_bare_median": round(statistics.median(a / b for a, b in zip(ours, plain, strict=True)), 3),
        "load_1min": loads,
        "cprofile": {"wall_s": round(wall, 3), "onnxruntime_genai_calls_s": round(genai_s, 3),
                     "python_share": round(1 - genai_s / wall, 3)},
        "onnxruntime_ops": op_profile(folder, args.threads, ids, args.new_tokens, max_length)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
