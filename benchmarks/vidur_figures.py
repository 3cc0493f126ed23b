"""Turn Vidur's measured operator and all-reduce tables into rows of tts_sim/data/device_calibration.json.

Vidur (https://github.com/microsoft/vidur) publishes per-operator CUDA timings of Llama-2-7B's
decoder layer on A100 and H100 (``data/profiling/compute/{a100,h100}/meta-llama/Llama-2-7b-hf/mlp.csv``:
every operator but the attention kernel, by token count and tensor-parallel degree) and NCCL
all-reduce timings on DGX A100 / DGX H100 (``data/profiling/network/{a100,h100}_dgx/all_reduce.csv``).
This script prints the figures the calibration file holds, so they can be regenerated and checked:

    git clone https://github.com/microsoft/vidur && git -C vidur checkout 7d47513
    python benchmarks/vidur_figures.py vidur

``kernels`` figure: 32 x the sum of the median times of one layer's operators (norms, QKV projection,
rotary embedding, output projection, gated MLP, residual add) for ``num_tokens`` tokens, in seconds.
Token counts 1-4096 (log-spaced) at TP 1 are fitted; TP 2, 4 and 8 at five of them are held out.
All-reduce latency: per group size, the median time of all-reduces of at most 2**20 fp16 elements
(2 MiB; a decode step's activations are 8-64 KiB, a 128-token prefill's 1 MiB), rank 0, one node.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

OPERATORS = ("input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
             "mlp_up_proj", "mlp_act", "mlp_down_proj", "add")
LAYERS = 32
FITTED_TOKENS = (1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096)
HELD_OUT_TOKENS = (1, 32, 128, 512, 2048)
DEVICES = {"A100-80GB": "a100", "H100": "h100"}
SMALL_ELEMENTS = 2**20


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        print(f"vidur_figures: {path} not found (give the root of a Vidur checkout)", file=sys.stderr)
        raise SystemExit(2)
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def kernel_seconds(path: Path) -> dict[tuple[int, int], float]:
    """(num_tokens, TP degree) -> seconds of the 32 decoder layers' operators."""
    out = {}
    for row in _rows(path):
        tp_key = next(k for k in row if k.startswith("num_tensor_parallel"))
        per_layer_ms = sum(float(row[f"time_stats.{op}.median"]) for op in OPERATORS)
        out[(int(row["num_tokens"]), int(row[tp_key]))] = LAYERS * per_layer_ms * 1e-3
    return out


def allreduce_latency(path: Path) -> dict[int, float]:
    """Group size -> median seconds of a small all-reduce (one node, rank 0)."""
    by_k: dict[int, list[float]] = {}
    for row in _rows(path):
        if row["rank"] == "0" and row["num_workers"] == row["devices_per_node"] and int(row["size"]) <= SMALL_ELEMENTS:
            by_k.setdefault(int(row["num_workers"]), []).append(float(row["time_stats.all_reduce.median"]) * 1e-3)
    return {k: statistics.median(v) for k, v in sorted(by_k.items())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vidur", type=Path, help="root of a Vidur checkout")
    args = ap.parse_args(argv)
    try:
        figures, latencies = _rows_of(args.vidur)
    except (KeyError, StopIteration, ValueError) as exc:
        print(f"vidur_figures: a table lacks a column or a token count this script reads ({exc!r}); "
              "is it Vidur's format at commit 7d47513?", file=sys.stderr)
        raise SystemExit(2) from None
    for row in figures:
        print("    " + json.dumps(row) + ",")
    print()
    for row in latencies:
        print("    " + json.dumps(row) + ",")


def _rows_of(vidur: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The data file's ``figures`` and ``allreduce`` rows from a Vidur checkout."""
    figures: list[dict[str, object]] = []
    latencies: list[dict[str, object]] = []
    for device, short in DEVICES.items():
        table = kernel_seconds(vidur / f"data/profiling/compute/{short}/meta-llama/Llama-2-7b-hf/mlp.csv")
        picks = [(n, 1, True) for n in FITTED_TOKENS] + [(n, k, False) for k in (2, 4, 8) for n in HELD_OUT_TOKENS]
        for n, k, fit in picks:
            figures.append({"source": "vidur-profiling", "device": device, "model": "llama-2-7b", "tp": k, "batch": 1,
                            "prompt_tokens": n, "output_tokens": 1, "metric": "kernels",
                            "value": round(table[(n, k)], 7), "unit": "s", "fit": fit})
        for k, seconds in allreduce_latency(vidur / f"data/profiling/network/{short}_dgx/all_reduce.csv").items():
            latencies.append({"source": "vidur-profiling", "device": device, "workers": k,
                              "latency_s": round(seconds, 7)})
    return figures, latencies


if __name__ == "__main__":
    main()
