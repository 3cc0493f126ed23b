"""Width x depth sweeps of homogeneous grids (the paper's heat-maps): accuracy, FLOPs, latency."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.core.models import DEFAULT_CATALOG, DEFAULT_OUTPUT_MODEL, ModelCatalog
from tts_sim.core.presets import grid
from tts_sim.core.profile import Profile
from tts_sim.errors import ConfigError
from tts_sim.sim.evaluator import SimulatedEvaluator


@dataclass
class SweepResult:
    task: str
    model: str
    output_model: str
    widths: list[int]
    depths: list[int]
    accuracy: np.ndarray  # [depth, width], expected accuracy over all questions
    units: np.ndarray  # budget units
    latency_p50: np.ndarray | None  # seconds, when a cluster was given
    profile: str = ""
    overloaded: np.ndarray | None = None  # bool per cell: the cluster cannot keep up with the load
    load: str = ""  # the load every latency cell assumed
    pngs: list[str] = field(default_factory=list)
    json_path: str | None = None

    def best(self) -> tuple[int, int, float]:
        d, w = np.unravel_index(int(np.argmax(self.accuracy)), self.accuracy.shape)
        return self.widths[w], self.depths[d], float(self.accuracy[d, w])

    def to_dict(self) -> dict[str, Any]:
        w, d, acc = self.best()
        return {
            "task": self.task, "model": self.model, "output_model": self.output_model, "profile": self.profile,
            "widths": self.widths, "depths": self.depths, "accuracy": self.accuracy.round(4).tolist(),
            "budget_units": self.units.round(3).tolist(),
            "latency_p50_s": None if self.latency_p50 is None else self.latency_p50.round(4).tolist(),
            "overloaded": None if self.overloaded is None else self.overloaded.tolist(), "load": self.load,
            "best": {"width": w, "depth": d, "accuracy": acc}, "pngs": self.pngs, "json": self.json_path,
        }

    def to_text(self) -> str:
        def grid_text(title: str, values: np.ndarray, fmt: str) -> str:
            head = "depth\\width " + " ".join(f"{w:>7d}" for w in self.widths)
            rows = [f"{d:>11d} " + " ".join(format(v, fmt).rjust(7) for v in values[i])
                    for i, d in enumerate(self.depths)]
            return "\n".join([title, head, *rows])

        parts = [grid_text(f"expected accuracy, {self.task}, {self.model} grids -> {self.output_model} output "
                           f"({self.profile})", self.accuracy, ".3f"),
                 grid_text("budget units (FLOPs / one direct llama-3.2-1b call)", self.units, ".1f")]
        if self.latency_p50 is not None:
            cells = np.array([[f"{v:.2f}" + ("!" if self.overloaded is not None and self.overloaded[i, j] else "")
                               for j, v in enumerate(row)] for i, row in enumerate(self.latency_p50)])
            head = "depth\\width " + " ".join(f"{w:>7d}" for w in self.widths)
            rows = [f"{d:>11d} " + " ".join(c.rjust(7) for c in cells[i]) for i, d in enumerate(self.depths)]
            note = "  (! = overloaded: the cluster cannot keep up, p50 grows with the queries simulated)" \
                if self.overloaded is not None and self.overloaded.any() else ""
            parts.append("\n".join([f"latency p50 (s), {self.load}{note}", head, *rows]))
        w, d, acc = self.best()
        parts.append(f"best: width {w}, depth {d}, expected accuracy {acc:.3f}")
        parts += [f"wrote {p}" for p in [*self.pngs, *([self.json_path] if self.json_path else [])]]
        return "\n\n".join(parts)


#: Largest width or depth of a sweep (each cell is a full evaluation).
MAX_SWEEP = 32


def width_depth_sweep(task: str, model: str, max_width: int, max_depth: int,
                      output_model: str = DEFAULT_OUTPUT_MODEL, cluster: Any = None, arrival: Any = None,
                      n_queries: int = 300, profile: Profile | None = None, catalog: ModelCatalog = DEFAULT_CATALOG,
                      out_dir: Path | None = None, **sim_options: Any) -> SweepResult:
    """Score every ``width x depth`` grid of ``model`` feeding an ``output_model`` output node.
    ``sim_options``: SimulatedEvaluator keywords (scheduler, scheduler_options, predictor)."""
    if not (1 <= max_width <= MAX_SWEEP and 1 <= max_depth <= MAX_SWEEP):
        raise ConfigError(f"sweep: max width and depth must lie in 1..{MAX_SWEEP}, got {max_width} x {max_depth}")
    ev = SimulatedEvaluator(task, profile=profile, cluster=cluster, arrival=arrival, n_queries=n_queries,
                            catalog=catalog, **sim_options)
    widths, depths = list(range(1, max_width + 1)), list(range(1, max_depth + 1))
    acc = np.zeros((len(depths), len(widths)))
    units = np.zeros_like(acc)
    lat = np.zeros_like(acc) if cluster is not None else None
    over = np.zeros(acc.shape, dtype=bool) if cluster is not None else None
    load = ""
    for i, d in enumerate(depths):
        for j, w in enumerate(widths):
            g = grid(w, d, model, output_model, catalog)
            e = ev.expected(g)
            acc[i, j], units[i, j] = e.accuracy, e.budget_units
            if lat is not None and over is not None:
                stats = ev.latency(g)
                assert stats is not None  # the evaluator has a cluster
                lat[i, j], over[i, j] = stats.p50_s, stats.overloaded
                load = f"{stats.load}, {stats.n_queries} queries simulated, {stats.scheduler} batching"
    result = SweepResult(ev.task.name, model, output_model, widths, depths, acc, units, lat, ev.profile.label,
                         overloaded=over, load=load)
    if out_dir is not None:
        result.pngs = [str(p) for p in plot_sweep(result, out_dir)]
        result.json_path = str(out_dir / f"sweep_{result.task}_{result.model}.json")
        Path(result.json_path).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def plot_sweep(result: SweepResult, out_dir: Path) -> list[Path]:
    """One PNG with a heat-map per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    # fixed, zero-based colour scales: a 0.01 accuracy difference must not look like the whole range
    panels = [("expected accuracy", result.accuracy, ".3f", (0.0, 1.0)),
              ("budget units", result.units, ".0f", (0.0, float(np.max(result.units)))),]
    if result.latency_p50 is not None:
        panels.append(("latency p50 (s)", result.latency_p50, ".2f", (0.0, float(np.max(result.latency_p50)))))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4))
    for ax, (title, values, fmt, (low, high)) in zip(np.atleast_1d(axes), panels, strict=True):
        im = ax.imshow(values, origin="lower", cmap="viridis", aspect="auto", vmin=low, vmax=high or 1.0)
        ax.set_xticks(range(len(result.widths)), result.widths)
        ax.set_yticks(range(len(result.depths)), result.depths)
        ax.set_xlabel("width (parallel chains)")
        ax.set_ylabel("depth (chain length)")
        ax.set_title(title)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                light = (values[i, j] - low) / ((high or 1.0) - low or 1.0) > 0.6  # viridis is light at the top
                ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=7,
                        color="black" if light else "white")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{result.task}: {result.model} grids -> {result.output_model} output ({result.profile})",
                 fontsize=9)
    fig.tight_layout()
    path = out_dir / f"sweep_{result.task}_{result.model}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
