"""A profile with fresh latency tables: PROFILE's answer banks and fusion records, TABLES' latency tables.

How much of a fidelity run's latency error is the tables having gone stale (this shared machine's
speed moves between days)? Time the tables again right before or after the run with the profile's
own grid and ``--no-banks`` (no answer banks, no fusion calls: minutes, not an hour), put them into
the profile with this script, and re-predict the run from its journal (the same ``tts-sim fidelity``
command with ``--profile OUT``: a finished journal only predicts).

    tts-sim profile --task add-words -m smollm2-135m -m gemma-3-270m --no-banks --engine genai -q int8 \\
        --threads 2 --max-batch 16 --temperature 0.7 --top-p 0.9 --max-new-tokens 16 --batch-sizes 1,2,4,8 \\
        --contexts 32,128,512 --prompt-lengths 16,32,64,128,256,512 --repeats 3 --steps 16 --passes 2 \\
        -o tables.json.gz
    python benchmarks/retime_tables.py measured:add-words tables.json.gz -o retimed-add-words.json.gz

Each table of TABLES replaces PROFILE's table of the same model, device, backend and quantisation; a
table of TABLES that PROFILE lacks, or one of PROFILE's that TABLES does not replace, is an error
(the point is the same tables, timed again). The output's metadata records both commands and how
each table's rows moved (median ratio new/old over the rows both grids hold).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_sim.core.profile import LatencyTable, Profile  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402


def _key(t: LatencyTable) -> tuple[str, str, str, str]:
    return t.model, t.device, t.backend, t.quantization


def row_ratio(old: LatencyTable, new: LatencyTable) -> dict[str, float]:
    """Median new/old seconds over the (tokens, batch) rows both tables time, prefill and decode apart."""
    out = {}
    for name in ("prefill", "decode"):
        before = {(a, b): s for a, b, s in getattr(old, name)}
        ratios = [s / before[(a, b)] for a, b, s in getattr(new, name) if before.get((a, b), 0) > 0]
        out[name] = float(np.median(ratios)) if ratios else float("nan")
    out["switch"] = new.switch_s / old.switch_s if old.switch_s > 0 else float("nan")
    return out


def retimed(profile: Profile, tables: Profile, *, profile_name: str, tables_name: str) -> Profile:
    """``profile`` with each of its latency tables replaced by the same one from ``tables``."""
    fresh = {_key(t): t for t in tables.latency}
    old = {_key(t): t for t in profile.latency}
    if not fresh:
        raise ValueError(f"{tables_name} holds no latency tables")
    if set(fresh) != set(old):
        raise ValueError(f"{tables_name} times {sorted(fresh)}, {profile_name} has {sorted(old)}: not the same tables")
    moved = {f"{m} on {d}": row_ratio(old[(m, d, b, q)], t) for (m, d, b, q), t in fresh.items()}
    where = tables.metadata.get("device", "another run")
    meta = {**profile.metadata, "label": f"{profile.label}; latency tables retimed on {where}", "tables_retimed": {
        "tables_command": tables.metadata.get("command", ""), "from_profile": profile_name,
        "median_ratio_new_over_old": moved}}
    return Profile(meta, dict(profile.tasks), [fresh[_key(t)] for t in profile.latency])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="the profile to refresh (measured:TASK or a file)")
    ap.add_argument("tables", help="a profile holding the same latency tables, timed again "
                                   "(tts-sim profile --no-banks)")
    ap.add_argument("-o", "--out", required=True, help="output profile (.json or .json.gz)")
    args = ap.parse_args()
    try:
        out = retimed(load_profile(args.profile), load_profile(args.tables), profile_name=args.profile,
                      tables_name=args.tables)
        out.save(args.out)
    except (TtsSimError, OSError, ValueError) as e:
        print(f"retime_tables: {e}", file=sys.stderr)
        sys.exit(2)
    for name, r in out.metadata["tables_retimed"]["median_ratio_new_over_old"].items():
        print(f"{name}: prefill x{r['prefill']:.3f}, decode x{r['decode']:.3f}, switch x{r['switch']:.3f} "
              "(median new/old)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
