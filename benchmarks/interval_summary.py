"""How wide, how lopsided and how often right are a fidelity report's 95% prediction intervals?

Per report: graphs inside their interval, the mean width of the multi-node graphs' intervals (the
single models' carry run noise only), the mean distance above and below the prediction, and the mean
fit sd. With ``--rev REV`` the same reports are read as they were at that git revision (e.g. before a
model change re-predicted them), side by side with the working tree's.

    python benchmarks/interval_summary.py docs/fidelity/seed5/fidelity_add-words.json ... --rev HEAD~1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _summary(data: dict[str, Any]) -> str:
    rows = data["rows"]
    inside = [bool(r["inside_interval"]) for r in rows]
    multi = [r["predicted"] for r in rows if r["nodes"] > 1]
    width = np.mean([p["interval"][1] - p["interval"][0] for p in multi]) if multi else float("nan")
    above = np.mean([p["interval"][1] - p["accuracy"] for p in multi]) if multi else float("nan")
    below = np.mean([p["accuracy"] - p["interval"][0] for p in multi]) if multi else float("nan")
    fit_sd = np.nanmean([p.get("fit_sd", float("nan")) for p in multi]) if multi else float("nan")
    return (f"inside {sum(inside)}/{len(rows)}, multi-node width {width:.3f} (+{above:.3f} / -{below:.3f}), "
            f"fit sd {fit_sd:.3f}")


def _read(path: Path, rev: str | None) -> dict[str, Any]:
    if rev is None:
        return json.loads(path.read_text())
    text = subprocess.run(["git", "show", f"{rev}:./{path.as_posix()}"], capture_output=True, text=True, check=True)
    return json.loads(text.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path, help="fidelity report JSON files (inside the repository)")
    ap.add_argument("--rev", help="also read each report as it was at this git revision")
    args = ap.parse_args()
    for path in args.reports:
        try:
            now = _summary(_read(path, None))
            before = _summary(_read(path, args.rev)) if args.rev else None
        except (OSError, ValueError, KeyError, TypeError, subprocess.CalledProcessError) as exc:
            print(f"interval_summary: {path}: {exc}", file=sys.stderr)
            sys.exit(2)
        print(f"{path}:" + (f"\n  {args.rev}: {before}" if before else "") + f"\n  now: {now}")


if __name__ == "__main__":
    main()
