"""The bench's Markdown report and PNG plots (matplotlib, Agg backend).

- ``anytime.png`` (and ``anytime_small.png``): per cell, the mean held-out expected accuracy of the
  best-so-far graph against evaluations, with a 95% band over seeds;
- ``final.png``: per cell, bars of the final held-out expected accuracy with 95% CI whiskers;
- ``report.md``: settings, the per-cell tables (mean +- CI, regret where computable), the paired
  tests of Agent-REINFORCE against each searcher, the win/loss table and the expected check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.bench.analysis import Analysis, Cell, cell_name, half_width
from tts_sim.bench.config import MAIN, BenchConfig

_DPI = 90


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(searchers: Sequence[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(searchers)}


def _grid(cells: Sequence[Cell]) -> tuple[list[str], list[float]]:
    tasks = list(dict.fromkeys(c[0] for c in cells))
    budgets = list(dict.fromkeys(c[1] for c in cells))
    return tasks, budgets


def plot_anytime(analysis: Analysis, cells: Sequence[Cell], path: Path, title: str) -> Path | None:
    """One panel per cell (tasks down, budgets across): mean best-so-far curve +- 95% band."""
    if not cells:
        return None
    plt = _plt()
    tasks, budgets = _grid(cells)
    colours = _colours(analysis.searchers)
    fig, axes = plt.subplots(len(tasks), len(budgets), figsize=(max(4.2 * len(budgets), 7.0), 3.0 * len(tasks)),
                             squeeze=False, sharex=True)
    from matplotlib.ticker import MaxNLocator

    for cell in cells:
        ax = axes[tasks.index(cell[0])][budgets.index(cell[1])]
        means: list[float] = []
        for s in analysis.searchers:
            st = analysis.get(cell, s)
            if st is None:
                continue
            k = np.arange(1, len(st.curve) + 1)
            lw = 2.2 if s in analysis.references else 1.2
            ax.plot(k, st.curve, color=colours[s], lw=lw, label=s)
            means += [float(st.curve.min()), float(st.curve.max())]
            if st.n > 1:
                ax.fill_between(k, np.clip(st.curve_low, 0, 1), np.clip(st.curve_high, 0, 1), color=colours[s],
                                alpha=0.12, lw=0)
        if cell in analysis.optimum:
            value = float(analysis.optimum[cell]["heldout_expected"])
            ax.axhline(value, color="black", ls="--", lw=1, label="optimum")
            means.append(value)
        if means:  # the means decide the view; wide bands of few seeds are cut
            ax.set_ylim(max(0.0, min(means) - 0.04), min(1.0, max(means) + 0.04))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(cell_name(cell), fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("evaluations", fontsize=8)
    for row in axes:
        row[0].set_ylabel("held-out expected acc.", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:  # the legend of the panel with the most entries
        h, lab = ax.get_legend_handles_labels()
        if len(lab) > len(labels):
            handles, labels = h, lab
    fig.legend(handles, labels, loc="lower center", ncol=max(1, min(len(labels), 5)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.09 if len(tasks) > 1 else 0.2, 1, 0.97))
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def plot_final(analysis: Analysis, cells: Sequence[Cell], path: Path, title: str) -> Path | None:
    """Grouped bars: final held-out expected accuracy per searcher and cell, 95% CI whiskers."""
    if not cells:
        return None
    plt = _plt()
    colours = _colours(analysis.searchers)
    bars = len(cells) * max(1, len(analysis.searchers))
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.13 * bars + 2.0)), 4.2))
    width = 0.8 / max(1, len(analysis.searchers))
    for i, s in enumerate(analysis.searchers):
        xs, means, errs = [], [], []
        for j, cell in enumerate(cells):
            st = analysis.get(cell, s)
            if st is None:
                continue
            xs.append(j + (i - (len(analysis.searchers) - 1) / 2) * width)
            means.append(st.final[0])
            errs.append(half_width(st.final))
        ax.bar(xs, means, width=width, yerr=errs, color=colours[s], label=s, capsize=1.5,
               error_kw={"lw": 0.8})
    means = [st.final[0] for st in analysis.stats.values() if st.cell in cells]
    if means:  # the means decide the view; wide intervals of few seeds are cut
        ax.set_ylim(max(0.0, min(means) - 0.06), min(1.0, max(means) + 0.04))
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([cell_name(c) for c in cells], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("held-out expected accuracy", fontsize=8)
    fig.suptitle(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=max(1, min(len(analysis.searchers), 8)), frameon=False, loc="lower center",
              bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def write_plots(analysis: Analysis, out: Path) -> list[Path]:
    main = [c for c in analysis.cells if c[2] == MAIN]
    other = [c for c in analysis.cells if c[2] != MAIN]
    made = [plot_anytime(analysis, main, out / "anytime.png", "Best-so-far held-out expected accuracy (mean, 95% CI)"),
            plot_final(analysis, analysis.cells, out / "final.png", "Final held-out expected accuracy (mean, 95% CI)"),
            plot_anytime(analysis, other, out / "anytime_small.png",
                         "Small enumerable space: best-so-far vs the exhaustive optimum (dashed)")]
    return [p for p in made if p is not None]


# ----- Markdown -----------------------------------------------------------------------------
def _pm(ci: tuple[float, float, float], digits: int = 3) -> str:
    return f"{ci[0]:.{digits}f} ± {half_width(ci):.{digits}f}"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def summary_rows(analysis: Analysis, cells: Sequence[Cell] | None = None) -> list[list[str]]:
    """One row per cell: the mean +- CI half-width of every searcher (best in bold)."""
    rows = []
    for cell in cells if cells is not None else analysis.cells:
        stats = [analysis.get(cell, s) for s in analysis.searchers]
        top = max((st.final[0] for st in stats if st is not None), default=None)
        row = [cell_name(cell)]
        for st in stats:
            if st is None:
                row.append("–")
                continue
            text = _pm(st.final)
            row.append(f"**{text}**" if top is not None and st.final[0] == top else text)
        rows.append(row)
    return rows


def render_markdown(analysis: Analysis, config: BenchConfig, *, wall_s: float | None, jobs: int,
                    images: Sequence[Path]) -> str:
    ref = analysis.reference
    parts = ["# tts-sim bench report", ""]
    heldout = ", ".join(f"{t}: {n}" for t, n in analysis.heldout_n.items())
    search = ", ".join(f"{t}: {n}" for t, n in analysis.search_n.items())
    seeds = sorted({s for st in analysis.stats.values() for s in st.seeds})
    parts += [
        f"- searchers: {', '.join(analysis.searchers)}",
        f"- cells: {len(analysis.cells)} (tasks {', '.join(dict.fromkeys(c[0] for c in analysis.cells))}; "
        f"budgets {', '.join(f'{b:g}' for b in dict.fromkeys(c[1] for c in analysis.cells if c[2] == MAIN))} units"
        + (f"; small-space budgets {', '.join(f'{b:g}' for b in config.regret_budgets)}" if config.regret_budgets
           else "") + ")",
        f"- seeds: {len(seeds)} ({seeds[0]}..{seeds[-1]})" if seeds else "- seeds: none",
        f"- evaluations per search: {config.evals}; search-time accuracy: noisy `evaluate()` on the search split "
        f"({search} questions)",
        f"- **held-out accuracy = expected (noise-free) accuracy from `SimulatedEvaluator.expected` on the "
        f"held-out split** ({heldout} questions), the same split and seeds for every searcher",
        f"- main space: {config.max_nodes} worker slots, pool {', '.join(config.pool)}; small space: "
        f"{config.regret_max_nodes} slots, pool {', '.join(config.regret_pool)}",
        f"- prior settings: {', '.join(config.priors)} (`none`: the space and the costs only; `published`: also "
        f"the task's published single-model accuracies and its kind). A searcher that uses a prior is reported as "
        f"NAME[prior=SETTING] and compared with searchers of the same setting or that ignore the prior",
        f"- profile: {config.profile or 'the embedded default scenario (synthetic)'}; objective: {config.objective}"
        + (f"; cluster: {config.cluster}" if config.cluster else ""),
        f"- jobs: {jobs}" + (f"; wall time of the last run: {wall_s:.0f} s" if wall_s is not None else ""),
        "", "Means over seeds ± half-width of the 95% t-interval. Paired tests: Wilcoxon signed-rank over seeds "
        "(`tts_sim.stats.paired_test`).", "",
    ]
    parts += ["## Final held-out expected accuracy per cell", "",
              _md_table(["cell", *analysis.searchers], summary_rows(analysis)), ""]
    parts += _regret_section(analysis)
    for name in analysis.references if ref is not None else []:
        parts += _paired_section(analysis, name)
    checked: list[str | None] = list(analysis.references) or [None]
    for checked_ref in checked:
        parts += _check_section(analysis, checked_ref)
    parts += _breakeven_section(analysis, config)
    if analysis.cost:
        rows = [[s, int(c["searches"]), f"{c['wall_s']:.2f}", f"{c['search_wall_s']:.2f}", f"{c['evaluations']:.1f}",
                 f"{c['cache_hits']:.1f}", f"{c['penalised']:.1f}", f"{c['agent_calls']:.1f}"]
                for s, c in analysis.cost.items()]
        parts += ["## Search cost (mean per search, all cells)", "",
                  "Job = search + held-out scoring of the anytime curve, in one worker.", "",
                  _md_table(["searcher", "searches", "s / job", "s / search", "evaluations", "cache hits",
                             "penalised", "agent calls"], rows), ""]
    parts += ["## Per-cell details", ""]
    for cell in analysis.cells:
        rows = []
        for s in analysis.searchers:
            st = analysis.get(cell, s)
            if st is None:
                continue
            rows.append([s, st.n, _pm(st.final), f"[{st.final[1]:.3f}, {st.final[2]:.3f}]", f"{st.sampled:.3f}",
                         f"{st.evaluations:.1f}", f"{st.nodes:.1f}", f"{st.budget_use:.2f}",
                         _pm(st.regret) if st.regret is not None else "–", f"{st.wall_s:.2f}"])
        parts += [f"### {cell_name(cell)}", "",
                  _md_table(["searcher", "seeds", "held-out expected", "95% CI", "held-out sampled", "evals used",
                             "nodes", "budget use", "regret", "s / search"], rows), ""]
    if images:
        parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    return "\n".join(parts)


def _regret_section(analysis: Analysis) -> list[str]:
    out = ["## Regret to the exhaustive optimum", ""]
    if not analysis.optimum:
        return out + ["No cell's space is small enough to enumerate: no regret is reported.", ""]
    out += [f"Computed only on these cells (their space is enumerable): "
            f"{', '.join(cell_name(c) for c in analysis.optimum)}. Regret = the optimum's held-out expected "
            f"accuracy minus the returned graph's (Monte Carlo expectation with fixed draws: a few 1e-3 below "
            f"zero is possible for a graph isomorphic to the optimum). Other cells have no regret.", ""]
    rows = []
    for cell, opt in analysis.optimum.items():
        row = [cell_name(cell), f"{opt['heldout_expected']:.3f}", opt["n_graphs"]]
        for s in analysis.searchers:
            st = analysis.get(cell, s)
            row.append("–" if st is None or st.regret is None else f"{_pm(st.regret)} ({st.found_optimum}/{st.n})")
        rows.append(row)
    out += [_md_table(["cell", "optimum", "graphs", *analysis.searchers], rows),
            "", "(k/n) = seeds whose returned graph reaches the optimum.", ""]
    return out


def _paired_section(analysis: Analysis, ref: str) -> list[str]:
    mine = [p for p in analysis.paired if p.reference == ref]
    out = [f"## Paired tests: {ref} minus each searcher", "",
           "Mean difference of held-out expected accuracy over seeds, its 95% CI, the Wilcoxon p-value and "
           "wins/losses/ties over seeds; verdict at p < 0.05.", ""]
    rows = [[cell_name(p.cell), p.other, p.n, f"{p.mean_diff:+.4f}", f"[{p.ci_low:+.4f}, {p.ci_high:+.4f}]",
             f"{p.p_value:.3g}", f"{p.wins}/{p.losses}/{p.ties}", p.verdict] for p in mine]
    out += [_md_table(["cell", "vs", "n", "mean diff", "95% CI", "p", "W/L/T", "verdict"], rows), ""]
    others = list(dict.fromkeys(p.other for p in mine))
    table_rows: list[list[object]] = []
    for cell in analysis.cells:
        row: list[object] = [cell_name(cell)]
        for o in others:
            p = next((p for p in mine if p.cell == cell and p.other == o), None)
            row.append("–" if p is None else {"win": "win", "loss": "LOSS", "tie": "tie"}[p.verdict]
                       + (" (+)" if p.verdict == "tie" and p.mean_diff > 0 else
                          " (−)" if p.verdict == "tie" and p.mean_diff < 0 else ""))
        table_rows.append(row)
    tally: list[object] = ["**total W/T/L**"]
    for o in others:
        ps = [p for p in mine if p.other == o]
        tally.append(f"{sum(p.verdict == 'win' for p in ps)}/{sum(p.verdict == 'tie' for p in ps)}/"
                     f"{sum(p.verdict == 'loss' for p in ps)}")
    table_rows.append(tally)
    out += [f"### Win/loss table ({ref} vs ...)", "",
            "win / LOSS: significant (p < 0.05); tie (+)/(−): not significant, sign of the mean difference.", "",
            _md_table(["cell", *others], table_rows), ""]
    if max((p.n for p in mine), default=0) < 6:
        out += ["With 5 or fewer seeds the smallest two-sided Wilcoxon p-value is 0.0625: no difference can be "
                "significant at 0.05; read the W/L/T counts and the CIs.", ""]
    return out


def _check_section(analysis: Analysis, ref: str | None) -> list[str]:
    c = analysis.checks.get(ref, analysis.check) if ref else analysis.check
    who = ref or "Agent-REINFORCE"
    out = [f"## Expected check: does {who} beat random search and BO at equal evaluations?", ""]
    if not c.get("applicable"):
        return out + [f"Not applicable: {c.get('reason', '')}.", ""]
    weak = [o for o, t in c["per_opponent"].items() if t["significant_wins"] <= t["cells"] / 2]
    verdict = ("**No**" if not c["holds"] else "**Yes**" if not weak else "**Yes by means, not significantly**")
    out += [f"{verdict}: on {c['beats_all']} of {c['cells']} main cells {who}'s mean final held-out "
            f"expected accuracy is above that of every one of {', '.join(c['opponents'])}, each searcher having "
            f"had the same evaluation budget."]
    for o in weak:
        t = c["per_opponent"][o]
        out.append(f"Against {o} the paired test finds a significant win on only {t['significant_wins']} of "
                   f"{t['cells']} cells (and {t['significant_losses']} significant losses): the rest are within noise.")
    out.append("")
    rows = [[o, f"{t['higher_mean']}/{t['cells']}", t["significant_wins"], t["significant_losses"]]
            for o, t in c["per_opponent"].items()]
    out += [_md_table(["opponent", "cells with higher mean", "significant wins", "significant losses"], rows), ""]
    if c.get("anytime"):
        ks = list(c["anytime"])
        rows = [[o, *[f"{c['anytime'][k][o]}/{c['cells']}" for k in ks]] for o in c["opponents"]]
        out += [f"Cells where {who}'s mean best-so-far curve is above the opponent's after k evaluations:",
                "", _md_table(["opponent", *[f"k={k}" for k in ks]], rows), ""]
    if weak or not c["holds"]:
        facts = _explain(analysis, weak or c["opponents"], c)
        out += ["Facts behind this (computed from the rows):", "", *facts, ""]
    if c["lost_cells"]:
        out += ["Cells where it does not beat every opponent (facts for the explanation):", ""]
        rows = [[d["cell"], ", ".join(d["beaten_by"]) or "–", ", ".join(d["significant"]) or "none",
                 f"{d['ref_mean']:.3f}", f"{d['best']} {d['best_mean']:.3f}", f"{d['ref_evaluations']:.1f}",
                 f"{d['ref_pretests']:.1f}", f"{d['ref_nodes']:.1f} / {d['best_nodes']:.1f}",
                 f"{d['ref_budget_use']:.2f} / {d['best_budget_use']:.2f}"] for d in c["lost_cells"]]
        out += [_md_table(["cell", "at or above AR", "significantly", "AR", "best", "AR evals used",
                           "AR pre-test evals", "nodes AR / best", "budget use AR / best"], rows), ""]
    return out


def _explain(analysis: Analysis, opponents: Sequence[str], c: dict[str, Any]) -> list[str]:
    """Bullet points of measured facts that explain a weak or failed check ``c``."""
    ref = c.get("reference") or analysis.reference or ""
    cells = [cell for cell in analysis.main_cells if analysis.get(cell, ref) is not None]
    out = []
    anytime = c.get("anytime") or {}
    if anytime:
        first, last = min(anytime), max(anytime)
        for o in opponents:
            a, b = anytime[first][o], anytime[last][o]
            out.append(f"- Anytime: {ref} is ahead of {o} on {a}/{len(cells)} cells after {first} evaluations "
                       f"{'but only' if b < a else 'and'} on {b}/{len(cells)} after {last}.")

    def mean_of(searcher: str, attr: str) -> float:
        values = [getattr(st, attr) for cell in cells if (st := analysis.get(cell, searcher)) is not None]
        return float(np.mean(values)) if values else float("nan")

    sizes = "; ".join(f"{s} {mean_of(s, 'nodes'):.1f} nodes, {mean_of(s, 'budget_use'):.0%}" for s in [ref, *opponents])
    out.append(f"- Returned graphs (mean over main cells; executed nodes, share of the budget spent): {sizes}.")
    used = mean_of(ref, "evaluations")
    pre = mean_of(ref, "pretests")
    out.append(f"- {ref} used {used:.1f} evaluations per search on average ({pre:.1f} of them scored on fewer "
               f"questions than the search split).")
    pairs = [(cell, st) for cell in cells
             if (st := analysis.get(cell, ref)) is not None and st.after_pretests is not None]
    better = [(cell, st) for cell, st in pairs
              if st.after_pretests is not None and st.after_pretests > st.final[0] + 0.005]
    if better:
        cases = ", ".join(f"{cell_name(cell)} {st.after_pretests:.3f} vs {st.final[0]:.3f}" for cell, st in better)
        out.append(f"- On {len(better)}/{len(pairs)} cells the best graph of {ref}'s pre-tests (scored on fewer "
                   f"questions) has a higher held-out expected accuracy than the graph it finally returns ({cases}); "
                   f"the full-split search that follows starts from a random sparse graph of the mix, and the "
                   f"driver picks the result among full-split trials only.")
    for cell in analysis.optimum:
        st = analysis.get(cell, ref)
        others = [(o, analysis.get(cell, o)) for o in opponents]
        if st is None or st.regret is None:
            continue
        text = ", ".join(f"{o} {x.regret[0]:.3f}" for o, x in others if x is not None and x.regret is not None)
        out.append(f"- {cell_name(cell)}: regret to the optimum {ref} {st.regret[0]:.3f} "
                   f"(optimum found on {st.found_optimum}/{st.n} seeds); {text}.")
    return out


def _breakeven_section(analysis: Analysis, config: BenchConfig) -> list[str]:
    """Full search cost and break-even against the fixed presets, per cell and searcher."""
    rows = []
    for cell in analysis.cells:
        for s in analysis.searchers:
            st = analysis.get(cell, s)
            be = st.breakeven if st is not None else None
            if be is None:
                continue
            rows.append([cell_name(cell), s, f"{be.cost_flops:.3g}", f"{be.agent_flops / be.cost_flops:.1%}"
                         if be.cost_flops else "–", f"{be.repaid}/{be.never}/{be.unmatched}",
                         f"{be.median_queries:,.0f}" if be.median_queries is not None else "–",
                         f"{be.gain_per_eflop:+.4f}" if be.gain_per_eflop is not None else "–"])
    if not rows:
        return []
    return ["## Search cost and break-even", "",
            f"Full cost of a search (mean over seeds): simulated FLOPs of every evaluation plus the agent's tokens "
            f"priced as FLOPs of {config.agent_cost_model} (2 x params per token). Break-even: served queries after "
            "which the search is repaid by the FLOPs per query the found graph saves against the cheapest fixed "
            "preset (single / parallel / chain of one pool model, up to the space's slots, any cost) whose expected "
            "held-out accuracy is at least the graph's (`tts_sim.search.breakeven`). Seeds: repaid / never (a "
            "preset as accurate costs no more) / none (no preset reaches the graph: then accuracy gained over the "
            "best preset per 1e18 FLOPs of search).", "",
            _md_table(["cell", "searcher", "search FLOPs", "agent share", "repaid/never/none",
                       "median break-even (queries)", "gain per EFLOP"], rows), ""]


def write_report(analysis: Analysis, config: BenchConfig, out: Path, *, wall_s: float | None = None,
                 jobs: int = 0, extra: str = "") -> Path:
    """Write the PNGs and ``report.md`` into ``out``; returns the report's path."""
    images = write_plots(analysis, out)
    text = render_markdown(analysis, config, wall_s=wall_s, jobs=jobs, images=images)
    if extra:
        text += "\n" + extra.strip() + "\n"
    path = out / "report.md"
    path.write_text(text)
    return path
