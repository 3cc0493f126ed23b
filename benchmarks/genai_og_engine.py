"""onnxruntime-genai's ``og.Engine`` (static batching on CPU in 0.18) vs ``og.Generator`` one prompt at a time.

Needs a genai folder built *without* the pruned LM head (og.Engine's static path fails on pruned builds),
e.g. the builder's ``--extra_options prune_lm_head=false`` on a prepared folder's ``hf`` source, with the
project's ``tokenizer.json`` and ``tts_sim_model.json`` copied in. Greedy, the agreement prompts (different
lengths), ``--tokens`` new tokens: tokens/s of both, and which prompts' tokens are equal.

    python benchmarks/genai_og_engine.py FOLDER --threads 1 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.genai_agreement import PROMPTS  # noqa: E402
from tts_sim.backends.onnxruntime.backend import open_engine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    import onnxruntime_genai as og

    engine = open_engine(args.folder, threads=args.threads)  # our tokenizer and chat template
    prompts = [engine.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    eos = set(engine.manifest.eos_token_ids)
    config = og.Config(str(args.folder))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {
        "intra_op_num_threads": args.threads, "inter_op_num_threads": 1, "allow_spinning": "0"}}}}))
    model = og.Model(config)

    def singles() -> list[list[int]]:
        out = []
        for ids in prompts:
            params = og.GeneratorParams(model)
            params.set_search_options(max_length=len(ids) + args.tokens, batch_size=1, do_sample=False)
            generator = og.Generator(model, params)
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
            seq: list[int] = []
            while len(seq) < args.tokens and not generator.is_done():
                generator.generate_next_token()
                seq.append(int(generator.get_next_tokens()[0]))
                if seq[-1] in eos:
                    break
            out.append(seq)
        return out

    def batched() -> tuple[list[list[int]], list[str], int]:
        eng = og.Engine(model)
        requests = []
        for ids in prompts:
            request = eng.create_request()
            turn = og.TurnOptions(request)
            turn.set_do_sample(False)
            turn.set_max_generated_tokens(args.tokens)
            request.begin_turn(np.asarray(ids, dtype=np.int32), turn)
            requests.append(request)
        got: list[list[int]] = [[] for _ in prompts]
        failures: list[str] = []
        events = eng.create_event_buffer(256)
        while eng.has_pending_requests():
            eng.run(events)
            for k in range(len(events)):
                event = events[k]
                row = next(i for i, r in enumerate(requests) if r == event.request)
                if event.token is not None:
                    got[row].append(int(event.token))
                if event.finish_reason == og.FinishReason.FAILED:
                    failures.append(str(event.error_code))
        return got, failures, eng.get_capabilities().configured_max_batch_size

    singles()  # warm-up
    for round_ in range(args.rounds):
        start = time.perf_counter()
        alone = singles()
        alone_s = time.perf_counter() - start
        start = time.perf_counter()
        together, failures, max_batch = batched()
        together_s = time.perf_counter() - start
        print(f"round {round_ + 1}: one at a time {sum(map(len, alone)) / alone_s:.1f} tok/s; og.Engine (static "
              f"batch {max_batch}) {sum(map(len, together)) / together_s:.1f} tok/s; failures {failures[:2]}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("prompt lengths", [len(p) for p in prompts], "equal tokens per prompt",
          [a == b for a, b in zip(alone, together, strict=True)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
