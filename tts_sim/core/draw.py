"""Draw a graph as a PNG: nodes placed by level, coloured by model family, shaped by role."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tts_sim.core.graph import Graph, Role  # noqa: E402
from tts_sim.core.models import ModelCatalog  # noqa: E402

_FAMILY_COLOURS = {"llama": "#4C72B0", "gemma": "#55A868"}


def _legend_handles(graph: Graph, catalog: ModelCatalog, has_dead: bool) -> list[Patch]:
    """Legend: the model families present, role shapes, the output ring and greyed dead nodes."""
    families = sorted({catalog[n.model].family for n in graph.nodes if n.model in catalog})
    handles = [Patch(facecolor=_FAMILY_COLOURS.get(f, "#C44E52"), label=f"{f} model") for f in families]
    handles += [Patch(facecolor="white", edgecolor="#555", label="rounded box: assistant"),
                Patch(facecolor="white", edgecolor="#555", label="square box: fuser"),
                Patch(facecolor="white", edgecolor="black", linewidth=2.5, label="black border: output node")]
    if has_dead:
        handles.append(Patch(facecolor="#BBBBBB", label="grey: not executed"))
    return handles


def draw_graph(graph: Graph, path: str | Path, title: str = "", catalog: ModelCatalog | None = None) -> Path:
    """Write a PNG of ``graph`` to ``path``; returns the path."""
    from tts_sim.core.models import DEFAULT_CATALOG

    catalog = catalog or DEFAULT_CATALOG
    levels = dict(graph.levels)
    dead = [n.id for n in graph.nodes if n.id not in levels]
    top = max(levels.values(), default=0)
    for n in dead:  # not executed: draw them in a column of their own, greyed
        levels[n] = top + 1
    columns: dict[int, list[str]] = {}
    for nid in graph.topological_order:
        columns.setdefault(levels[nid], []).append(nid)
    pos = {nid: (lv, -(i - (len(col) - 1) / 2)) for lv, col in columns.items() for i, nid in enumerate(col)}

    n_cols, n_rows = len(columns), max(len(c) for c in columns.values())
    fig, ax = plt.subplots(figsize=(max(5, 2.2 * n_cols), max(3.2, 1.1 * n_rows + 1.7)))
    for u, v in graph.edges:
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": "#555", "shrinkA": 28, "shrinkB": 28,
                                "connectionstyle": "arc3,rad=0.08"})
    for node in graph.nodes:
        x, y = pos[node.id]
        family = catalog[node.model].family if node.model in catalog else ""
        colour = "#BBBBBB" if node.id in dead else _FAMILY_COLOURS.get(family, "#C44E52")
        box = "square,pad=0.5" if node.role is Role.FUSER else "round,pad=0.5"
        ring = "black" if node.id == graph.output else "white"
        ax.text(x, y, f"{node.id}\n{node.model}", ha="center", va="center", fontsize=7, color="white",
                zorder=4, fontweight="bold",
                bbox={"boxstyle": box, "facecolor": colour, "edgecolor": ring, "linewidth": 2.5})
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(-(n_rows / 2) - 0.2, n_rows / 2 + 0.2)
    ax.axis("off")
    ax.set_title(title or f"{len(graph.executed)} executed nodes, width {graph.width}, depth {graph.depth}",
                 fontsize=8)
    ax.legend(handles=_legend_handles(graph, catalog, bool(dead)), loc="upper center", bbox_to_anchor=(0.5, 0.0),
              ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
