"""Before / after table of Agent-REINFORCE against random search from `tts-sim bench` results.

Reads one or more bench folders (``OUT/results.jsonl``) and prints, per cell and searcher label, the
mean held-out expected accuracy (± 95% t half-width), the median fraction of the cell's reference
optimum after 10 / 20 / 30 evaluations (main cells; on the small spaces: of the exhaustive optimum),
and the mean paired difference to random search under the same prior with its Wilcoxon p-value.

    PYTHONPATH=$PWD python benchmarks/agent_reinforce_table.py before=/tmp/ar-before after=/tmp/ar-after

With exactly two run names, a second table gives each searcher's paired difference between them (the
last name's run minus the first's, Wilcoxon p over common seeds). Labels are ``NAME=FOLDER``; searcher
labels get the name as a suffix (``agent-reinforce[prior=none] after``);
folders given the same name are merged (a later folder's row replaces an earlier one for the same seed).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.stats import mean_ci, paired_test


def load(folder: str) -> list[dict[str, Any]]:
    path = Path(folder) / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    runs = [a.split("=", 1) for a in argv]
    if not runs or any(len(r) != 2 for r in runs):
        print("usage: agent_reinforce_table.py NAME=FOLDER [NAME=FOLDER ...]", file=sys.stderr)
        return 2
    refs: dict[tuple, float] = {}
    finals: dict[tuple, dict[int, float]] = defaultdict(dict)
    curves: dict[tuple, list[list[float]]] = defaultdict(list)
    labels: list[str] = []
    for name, folder in runs:
        for r in load(folder):
            cell = (r["task"], float(r["budget"]), r["space"])
            if r["kind"] in ("reference", "optimum"):
                refs[cell] = float(r["heldout_expected"])
            elif r["kind"] == "search" and r.get("world", "default") == "default":
                searcher = r["searcher"]
                if r.get("prior") and "[prior=" not in searcher:  # a bench run under one prior omits it
                    searcher = f"{searcher}[prior={r['prior']}]"
                label = f"{searcher} {name}"
                if label not in labels:
                    labels.append(label)
                finals[(cell, label)][int(r["seed"])] = float(r["heldout_expected"])
                curves[(cell, label)].append(r["curve"])
    cells = sorted({c for c, _ in finals}, key=lambda c: (c[2] != "main", c[0], c[1]))
    print("| cell | searcher | n | held-out mean ± 95% | frac@10 | frac@20 | frac@30 | vs random (same prior, run) |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in cells:
        ref = refs.get(cell)
        for label in labels:
            seeds = finals.get((cell, label))
            if not seeds:
                continue
            mean, low, high = mean_ci(list(seeds.values()))
            half = (high - low) / 2
            curve = np.array(curves[(cell, label)])
            fr = [f"{np.median(curve[:, k - 1]) / ref:.3f}" if ref and curve.shape[1] >= k else "-"
                  for k in (10, 20, 30)]
            name, run = label.rsplit(" ", 1)
            rnd = f"random[prior={name.split('prior=')[1]}" if "prior=" in name else "random"
            other = finals.get((cell, f"{rnd} {run}")) or next(
                (v for (c, lab), v in finals.items() if c == cell and lab.startswith(rnd + " ")), None)
            vs = "-"
            if other and not name.startswith("random"):
                common = sorted(set(seeds) & set(other))
                test = paired_test([seeds[s] for s in common], [other[s] for s in common])
                vs = f"{test['mean_diff']:+.4f} (p={test['p_value']:.2g})"
            where = f"{cell[0]} @ {cell[1]:g}" + (" (small)" if cell[2] != "main" else "")
            print(f"| {where} | {label} | {len(seeds)} | {mean:.3f} ± {half:.3f} | {' | '.join(fr)} | {vs} |")
    names = list(dict.fromkeys(name for name, _ in runs))
    if len(names) == 2:  # the same searcher in the two runs, paired over seeds: last run minus first
        first, last = names
        print(f"\n| cell | searcher | {last} minus {first} (Wilcoxon p) |\n|---|---|---|")
        for cell in cells:
            for label in labels:
                name, run = label.rsplit(" ", 1)
                a, b = finals.get((cell, f"{name} {first}")), finals.get((cell, f"{name} {last}"))
                if run != last or not a or not b:
                    continue
                common = sorted(set(a) & set(b))
                test = paired_test([b[s] for s in common], [a[s] for s in common])
                where = f"{cell[0]} @ {cell[1]:g}" + (" (small)" if cell[2] != "main" else "")
                print(f"| {where} | {name} | {test['mean_diff']:+.4f} (p={test['p_value']:.2g}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
