"""Robustness sections of the bench report: fractions of the reference optimum on every main cell
(after 10, 20 and 30 evaluations, and as anytime curves), and win / tie / loss counts over worlds.

*Fraction of the reference*: a search's best-so-far held-out expected accuracy after k evaluations (its
anytime curve) divided by the cell's reference optimum (``tts_sim.search.reference``; job kind
``reference``). The reference must be at least every graph a searcher returned: any row above it is
listed as a violation (the reference is then not strong enough).

*Worlds*: for every pair of searchers and every world, a paired test (Wilcoxon signed-rank,
``tts_sim.stats.paired_test``) over the (main cell, seed) units both ran, on the final held-out expected
accuracy; the p-values of all (world, pair) tests are corrected together by Holm's step-down method.
A searcher *wins* a world against another when the corrected p-value is below ``ALPHA`` and its mean
is higher, *loses* when below and lower, and *ties* otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.bench.analysis import ALPHA, Cell, cell_name
from tts_sim.bench.config import MAIN
from tts_sim.stats import paired_test

FRACTION_AT = (10, 20, 30)
TOLERANCE = 1e-9


def _cell(r: dict[str, Any]) -> Cell:
    return (r["task"], float(r["budget"]), r["space"])


def _world(r: dict[str, Any]) -> str:
    return str(r.get("world", "default"))


def references(rows: Sequence[dict[str, Any]], world: str) -> dict[Cell, float]:
    return {_cell(r): float(r["heldout_expected"]) for r in rows if r.get("kind") == "reference" and _world(r) == world}


def fractions(rows: Sequence[dict[str, Any]], labels: Sequence[str], world: str
              ) -> tuple[dict[tuple[Cell, str], np.ndarray], list[dict[str, Any]]]:
    """({(cell, searcher): (seeds, evals) fraction curves}, violations) of ``world``'s main cells."""
    ref = references(rows, world)
    by: dict[tuple[Cell, str], list[list[float]]] = defaultdict(list)
    violations = []
    for r in rows:
        if r.get("kind") != "search" or _world(r) != world or r["space"] != MAIN or r["searcher"] not in labels:
            continue
        cell = _cell(r)
        if cell not in ref:
            continue
        by[(cell, r["searcher"])].append([v / ref[cell] for v in r["curve"]])
        top = max(float(r["heldout_expected"]), *map(float, r["curve"]))
        if top > ref[cell] + TOLERANCE:
            violations.append({"world": world, "cell": cell_name(cell), "searcher": r["searcher"], "seed": r["seed"],
                               "found": top, "reference": ref[cell]})
    return {k: np.array(v) for k, v in by.items()}, violations


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def world_verdicts(rows: Sequence[dict[str, Any]], labels: Sequence[str], worlds: Sequence[str]
                   ) -> dict[str, dict[str, dict[str, int]]]:
    """{searcher: {other: {"win", "tie", "loss"}}} counted over worlds (see the module docstring)."""
    finals: dict[tuple[str, str], dict[tuple[Cell, int], float]] = defaultdict(dict)
    for r in rows:
        if r.get("kind") == "search" and r["space"] == MAIN and r["searcher"] in labels:
            finals[(_world(r), r["searcher"])][(_cell(r), int(r["seed"]))] = float(r["heldout_expected"])
    tests = []
    for w in worlds:
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                units = sorted(set(finals[(w, a)]) & set(finals[(w, b)]))
                if len(units) < 2:
                    tests.append((w, a, b, 0.0, 1.0))
                    continue
                t = paired_test([finals[(w, a)][u] for u in units], [finals[(w, b)][u] for u in units])
                tests.append((w, a, b, t["mean_diff"], t["p_value"]))
    adjusted = holm([t[4] for t in tests])
    out: dict[str, dict[str, dict[str, int]]] = {a: {b: {"win": 0, "tie": 0, "loss": 0} for b in labels if b != a}
                                                 for a in labels}
    for (_, a, b, diff, _), p in zip(tests, adjusted, strict=True):
        verdict = "tie" if p >= ALPHA or diff == 0 else ("win" if diff > 0 else "loss")
        out[a][b][verdict] += 1
        out[b][a][{"win": "loss", "loss": "win", "tie": "tie"}[verdict]] += 1
    return out


def plot_fractions(curves: dict[tuple[Cell, str], np.ndarray], labels: Sequence[str], cells: Sequence[Cell],
                   path: Path, title: str) -> Path | None:
    """One panel per main cell: mean fraction of the reference optimum after k evaluations."""
    if not cells:
        return None
    from tts_sim.bench.report import _colours, _plt

    plt = _plt()
    colours = _colours(labels)
    fig, axes = plt.subplots(1, len(cells), figsize=(max(3.6 * len(cells), 6.0), 3.2), squeeze=False)
    for ax, cell in zip(axes[0], cells, strict=True):
        for s in labels:
            c = curves.get((cell, s))
            if c is not None:
                ax.plot(np.arange(1, c.shape[1] + 1), c.mean(axis=0), color=colours[s], lw=1.3, label=s)
        ax.axhline(1.0, color="black", ls="--", lw=1)
        ax.set_title(cell_name(cell), fontsize=9)
        ax.set_xlabel("evaluations", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("fraction of reference optimum", fontsize=8)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=max(1, min(len(names), 5)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.15, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def robust_markdown(rows: Sequence[dict[str, Any]], labels: Sequence[str], worlds: Sequence[str], out: Path
                    ) -> tuple[str, dict[str, Any]]:
    """The report's sections on reference fractions (every world) and world verdicts, and their data."""
    lines: list[str] = ["## Fraction of the reference optimum", "",
                        "Best-so-far held-out expected accuracy after k evaluations / the cell's reference optimum "
                        "(hill climbing with restarts on expected accuracy, `tts_sim.search.reference`): "
                        "median over seeds (mean in brackets)."]
    data: dict[str, Any] = {"fractions": {}, "violations": [], "references": {}}
    for w in worlds:
        curves, violations = fractions(rows, labels, w)
        refs = references(rows, w)
        cells = [c for c in dict.fromkeys(k[0] for k in curves)]
        data["violations"] += violations
        data["references"][w] = {cell_name(c): v for c, v in refs.items()}
        if not cells:
            continue
        lines += ["", f"### World {w}", ""]
        length = min(c.shape[1] for c in curves.values())
        ks = [k for k in FRACTION_AT if k <= length] or [length]
        head = ["cell", "reference", "searcher", *[f"k={k}" for k in ks]]
        body = []
        for c in cells:
            for s in labels:
                curve = curves.get((c, s))
                if curve is None:
                    continue
                at = [(float(np.median(curve[:, k - 1])), float(curve[:, k - 1].mean())) for k in ks]
                data["fractions"][f"{w}|{cell_name(c)}|{s}"] = {str(k): m for k, (m, _) in zip(ks, at, strict=True)}
                body.append([cell_name(c), f"{refs[c]:.4f}", s, *[f"{m:.3f} ({a:.3f})" for m, a in at]])
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" for _ in head) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in body]
        png = plot_fractions(curves, labels, cells, out / f"reference_fraction_{w}.png", f"fraction of reference, {w}")
        if png is not None:
            lines += ["", f"![fraction of reference, {w}]({png.name})"]
    viol = data["violations"]
    lines += ["", f"Reference check: {len(viol)} searcher run(s) found a graph above the reference"
              + ("." if not viol else ": " + "; ".join(f"{v['world']} {v['cell']} {v['searcher']} seed {v['seed']} "
                                                        f"{v['found']:.4f} > {v['reference']:.4f}" for v in viol[:10]))]
    if len(worlds) > 1:
        verdicts = world_verdicts(rows, labels, worlds)
        data["worlds"] = verdicts
        lines += ["", f"## Robustness over {len(worlds)} worlds", "",
                  f"Worlds: {', '.join(worlds)}. Per row searcher and column opponent: worlds won / tied / lost "
                  "(paired Wilcoxon test over main cells x seeds within a world, Holm-corrected over all "
                  f"world x pair tests, alpha {ALPHA}).", ""]
        lines.append("| searcher | " + " | ".join(labels) + " |")
        lines.append("|---|" + "|".join("---" for _ in labels) + "|")
        for a in labels:
            cells_txt = ["-" if a == b else "{win}/{tie}/{loss}".format(**verdicts[a][b]) for b in labels]
            lines.append(f"| {a} | " + " | ".join(cells_txt) + " |")
    return "\n".join(lines) + "\n", data
