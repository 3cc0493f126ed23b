"""Before/after table of a searcher fix from two ``tts-sim bench`` result folders (issue 8, item 5).

For each searcher and main cell: mean final held-out expected accuracy, and the median over seeds of
the fraction of the cell's reference optimum after 10, 20 and 30 evaluations (as in the bench
report, ``tts_sim.bench.robust``). Only (searcher, cell, seed) runs present in both folders count,
so the two sides are paired; the last rows pool all cells (mean over cells of the per-cell values)
and count the cells where a searcher is at or above random search's mean held-out accuracy.

How docs/bench/bo.md was produced (prior ``none``; the reference optima are cached on disk):

    git archive <commit before the fix> | tar -x -C /tmp/bo-before-src
    cd /tmp/bo-before-src && PYTHONPATH=$PWD python -m tts_sim.cli bench --searchers random bo-gp \\
        bo-forest tpe --priors none --tasks math mmlu humaneval --budgets 18 42 80 --seeds 3 \\
        --regret-budgets none --out /tmp/bo-before
    (the same in the fixed checkout with --out /tmp/bo-after)
    PYTHONPATH=$PWD python benchmarks/bench_search_fix.py /tmp/bo-before /tmp/bo-after --seeds 3 [--markdown]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

KS = (10, 20, 30)
Key = tuple[str, str, float, int]  # searcher, task, budget, seed


def load(folder: Path) -> tuple[dict[Key, dict[str, Any]], dict[tuple[str, float], float]]:
    """(main-space search rows by key, reference value by cell) of a bench folder's results.jsonl."""
    runs: dict[Key, dict[str, Any]] = {}
    refs: dict[tuple[str, float], float] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("space") != "main" or r.get("world", "default") != "default":
            continue
        if r["kind"] == "reference":
            refs[(r["task"], float(r["budget"]))] = float(r["heldout_expected"])
        elif r["kind"] == "search":
            runs[(r["searcher"], r["task"], float(r["budget"]), int(r["seed"]))] = r
    return runs, refs


def summarise(runs: dict[Key, dict[str, Any]], refs: dict[tuple[str, float], float], keys: set[Key]
              ) -> dict[tuple[str, str, float], dict[str, float]]:
    """{(searcher, task, budget): {"heldout": mean, "f10": median fraction, ...}} over ``keys``."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for key in keys:
        groups[key[:3]].append(runs[key])
    out = {}
    for (searcher, task, budget), rows in groups.items():
        ref = refs[(task, budget)]
        stats = {"heldout": float(np.mean([r["heldout_expected"] for r in rows])), "seeds": float(len(rows))}
        for k in KS:
            stats[f"f{k}"] = float(np.median([r["curve"][k - 1] / ref for r in rows]))
        out[(searcher, task, budget)] = stats
    return out


def table(before: dict, after: dict, markdown: bool) -> str:
    searchers = sorted({k[0] for k in after}, key=lambda s: (s != "random", s))
    cells = sorted({k[1:] for k in after})
    head = ["searcher", "cell", "seeds", "held-out before", "after"] + [f"f@{k} before / after" for k in KS]
    lines = []

    def row(values: list[str]) -> None:
        lines.append("| " + " | ".join(values) + " |" if markdown else "  ".join(f"{v:<20}" for v in values))

    row(head)
    if markdown:
        lines.append("|" + "---|" * len(head))
    for s in searchers:
        pooled_b: dict[str, list[float]] = defaultdict(list)
        pooled_a: dict[str, list[float]] = defaultdict(list)
        at_least_random = [0, 0]
        for task, budget in cells:
            b, a = before.get((s, task, budget)), after.get((s, task, budget))
            if b is None or a is None:
                continue
            for name in ("heldout", *(f"f{k}" for k in KS)):
                pooled_b[name].append(b[name])
                pooled_a[name].append(a[name])
            rb, ra = before.get(("random", task, budget)), after.get(("random", task, budget))
            if rb and ra:
                at_least_random[0] += b["heldout"] >= rb["heldout"] - 1e-12
                at_least_random[1] += a["heldout"] >= ra["heldout"] - 1e-12
            row([s, f"{task} @ {budget:g}", f"{a['seeds']:.0f}", f"{b['heldout']:.3f}", f"{a['heldout']:.3f}"]
                + [f"{b[f'f{k}']:.3f} / {a[f'f{k}']:.3f}" for k in KS])
        if pooled_a:
            mb = {k: float(np.mean(v)) for k, v in pooled_b.items()}
            ma = {k: float(np.mean(v)) for k, v in pooled_a.items()}
            cells_note = "" if s == "random" else f" (>= random on {at_least_random[0]} / {at_least_random[1]} cells)"
            fractions = [f"{mb[f'f{k}']:.3f} / {ma[f'f{k}']:.3f}" for k in KS]
            row([f"**{s}**" if markdown else s, f"all {len(pooled_a['heldout'])} cells{cells_note}", "",
                 f"{mb['heldout']:.3f}", f"{ma['heldout']:.3f}", *fractions])
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--seeds", type=int, default=None, help="only seeds 0..N-1 (default: every seed in both)")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    runs_b, refs = load(args.before)
    runs_a, refs_a = load(args.after)
    refs = {**refs_a, **refs}
    keys = {k for k in set(runs_b) & set(runs_a) if k[1:3] in refs and (args.seeds is None or k[3] < args.seeds)}
    print(table(summarise(runs_b, refs, keys), summarise(runs_a, refs, keys), args.markdown))


if __name__ == "__main__":
    main()
