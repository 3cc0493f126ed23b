"""Latency tables of the real models on a CUDA GPU (genai engine), saved as a profile the simulator reads, and
compared with the simulator's roofline prediction for that GPU. Run by ``benchmarks/gpu_check.sh``.

    python benchmarks/gpu_profile.py --out gpu_profile   # writes gpu_profile.json.gz, .md, -summary.json

Also runs on the CPU (``--device cpu``) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from tts_sim.core.devices import get_device  # noqa: E402
from tts_sim.core.models import DEFAULT_CATALOG  # noqa: E402
from tts_sim.core.profile import Profile  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.real.profiling import device_key, measure_latency_table  # noqa: E402
from tts_sim.sim.cluster.latency import RooflinePredictor, fit_roofline  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _errors(table, predictor, model, device) -> dict:
    pre = [(predictor.prefill_s(model, device, n, b) - s) / s for n, b, s in table.prefill]
    dec = [(predictor.decode_step_s(model, device, c, b) - s) / s for c, b, s in table.decode]
    return {"prefill_median_rel_error": round(statistics.median(pre), 3),
            "prefill_worst_abs_rel_error": round(max(abs(e) for e in pre), 3),
            "decode_median_rel_error": round(statistics.median(dec), 3),
            "decode_worst_abs_rel_error": round(max(abs(e) for e in dec), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quantization", default="fp32", help="genai builder precision (fp32, fp16, int8, int4)")
    parser.add_argument("--batch-sizes", type=_ints, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--prompt-lengths", type=_ints, default=[16, 64, 256, 1024])
    parser.add_argument("--contexts", type=_ints, default=[64, 256, 1024])
    parser.add_argument("--out", type=Path, default=Path("gpu_profile"))
    args = parser.parse_args(argv)
    started = time.time()
    try:
        backend = OnnxRuntimeBackend(quantization=args.quantization, engine="genai", device=args.device,
                                     progress=lambda m: print(f"  {m}", flush=True))
        tables, summary = [], {}
        for model in args.models:
            engine = backend.engine(model)
            info = backend.info(model)
            device_name = device_key(info)
            print(f"{model}: {info.provider} on {info.device} (device {device_name})", flush=True)
            table = measure_latency_table(engine, model, device=device_name, backend=info.backend,
                                          quantization=info.quantization, provider=info.provider,
                                          prompt_lengths=args.prompt_lengths, batch_sizes=args.batch_sizes,
                                          contexts=args.contexts, progress=print)
            tables.append(table)
            spec, device = DEFAULT_CATALOG[model], get_device(device_name)
            bytes_per_param = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int4": 0.5}.get(args.quantization)
            default = RooflinePredictor(bytes_per_param=bytes_per_param, kv_bytes_per_param=4.0
                                        if args.quantization == "fp32" else 2.0)
            fitted = fit_roofline([table])
            summary[model] = {"device": device_name, "gpu": info.device, "provider": info.provider,
                              "roofline_default": _errors(table, default, spec, device),
                              "roofline_fitted": {**_errors(table, fitted, spec, device),
                                                  "compute_eff": round(fitted.compute_eff, 3),
                                                  "bandwidth_eff": round(fitted.bandwidth_eff, 3),
                                                  "overhead_ms": round(fitted.overhead_s * 1e3, 3)},
                              "decode_ms_batch1": [round(s * 1e3, 3) for c, b, s in table.decode if b == 1]}
            print(json.dumps(summary[model]), flush=True)
    except TtsSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    profile = Profile(metadata={"label": f"measured latency tables on {summary[args.models[0]]['gpu']} "
                                         f"(genai {args.quantization}, {args.device})",
                                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                                "load_avg": os.getloadavg(), "wall_s": round(time.time() - started, 1)},
                      latency=tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    profile.save(args.out.with_suffix(".json.gz"))
    Path(f"{args.out}-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| model | device | roofline | prefill median err | prefill worst | decode median err | decode worst |",
             "|---|---|---|---|---|---|---|"]
    for model, s in summary.items():
        for kind in ("roofline_default", "roofline_fitted"):
            e = s[kind]
            cells = [f"{100 * e['prefill_median_rel_error']:+.0f}%", f"{100 * e['prefill_worst_abs_rel_error']:.0f}%",
                     f"{100 * e['decode_median_rel_error']:+.0f}%", f"{100 * e['decode_worst_abs_rel_error']:.0f}%"]
            lines.append(f"| {model} | {s['device']} | {kind.split('_')[1]} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
