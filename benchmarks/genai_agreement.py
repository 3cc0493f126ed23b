"""Greedy agreement of the genai engine with transformers (fp32) and of its quantised graphs with fp32.

For each real model: 5 chat prompts, greedy, the first ``--tokens`` (32) new tokens.
  * fp32 genai vs transformers (the dequantised Hugging Face folder the builder read): sequences equal
    token for token (the slow test ``tests/test_backend_genai_slow.py`` asserts 5/5)
  * int8 / int4 genai vs fp32 genai: sequences equal, mean matching prefix, and positions equal

    python benchmarks/genai_agreement.py --out /tmp/genai_agreement.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.backends.onnxruntime import prepare_model  # noqa: E402
from tts_sim.backends.onnxruntime.backend import open_engine  # noqa: E402

PROMPTS = ("What is the capital of France?", "Write a haiku about the sea.", "Explain what a prime number is.",
           "List three colours of the rainbow.", "How do I boil an egg?")


def _quiet(_: str) -> None:
    pass


def transformers_greedy(hf_dir: Path, prompts: list[list[int]], tokens: int, eos: tuple[int, ...]) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for ids in prompts:
            seq = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=tokens, do_sample=False, eos_token_id=list(eos),
                                 pad_token_id=eos[0])
            out.append(seq[0, len(ids):].tolist())
    return out


def _compare(a: list[list[int]], b: list[list[int]]) -> dict:
    prefixes, equal_positions, total = [], 0, 0
    for x, y in zip(a, b, strict=True):
        n = 0
        while n < min(len(x), len(y)) and x[n] == y[n]:
            n += 1
        prefixes.append(n)
        equal_positions += sum(1 for i, j in zip(x, y, strict=False) if i == j)
        total += max(len(x), len(y))
    return {"sequences_equal": sum(x == y for x, y in zip(a, b, strict=True)), "sequences": len(a),
            "mean_matching_prefix": round(sum(prefixes) / len(prefixes), 1), "matching_prefixes": prefixes,
            "position_agreement": round(equal_positions / max(total, 1), 3)}


def agreement(model: str, tokens: int = 32, quantizations: tuple[str, ...] = ("int8", "int4"),
              threads: int = 2, n_prompts: int = len(PROMPTS)) -> dict:
    """fp32 genai vs transformers, and each quantisation vs fp32 genai, on the first ``n_prompts`` of ``PROMPTS``."""
    fp32 = open_engine(prepare_model(model, "fp32", progress=_quiet, engine="genai"), threads=threads)
    prompts = [fp32.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS[:n_prompts]]

    def run(engine) -> list[list[int]]:
        return [list(engine.generate([p], max_new_tokens=tokens)[0].token_ids) for p in prompts]

    ours = run(fp32)
    hf_dir = fp32.model_dir.parent / "hf"
    if not (hf_dir / "config.json").is_file():
        hf_dir = Path(fp32.manifest.source)
    reference = transformers_greedy(hf_dir, prompts, tokens, fp32.manifest.eos_token_ids)
    report = {"model": model, "tokens": tokens, "fp32_vs_transformers": _compare(ours, reference),
              "samples": {"genai_fp32": fp32.decode(ours[0]), "transformers": fp32.decode(reference[0])}}
    for quantization in quantizations:
        engine = open_engine(prepare_model(model, quantization, progress=_quiet, engine="genai"), threads=threads)
        report[f"{quantization}_vs_fp32"] = _compare(run(engine), ours)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--quantizations", nargs="*", default=["int8", "int4"])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), choices=range(1, len(PROMPTS) + 1),
                        help="use the first N prompts (a quick check)")
    parser.add_argument("--out", type=Path, default=Path("genai_agreement.json"))
    args = parser.parse_args(argv)
    started = time.time()
    reports = []
    for model in args.models:
        reports.append(agreement(model, args.tokens, tuple(args.quantizations), n_prompts=args.prompts))
        print(json.dumps(reports[-1]), flush=True)
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "load_avg_end": os.getloadavg(),
            "wall_s": round(time.time() - started, 1)}
    args.out.write_text(json.dumps({"meta": meta, "models": reports}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
