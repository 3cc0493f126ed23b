"""A fidelity report: per held-out graph, predicted vs measured accuracy and latency; the summary
figures (rank correlation, mean absolute error, interval coverage, whether the predicted best graph
is among the measured top 3, latency errors), their targets (issue 12), Markdown and a PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.real.validate import pair_text, relative_error
from tts_sim.stats import spearman

SCHEMA = "tts-sim/fidelity"
SCHEMA_VERSION = 1
#: The summary's keys, in order.
SUMMARY_KEYS = ("spearman", "mae", "inside_interval", "best_in_top3", "p50_error_median", "p50_error_worst",
                "n_graphs", "n_questions", "if_exact", "profile", "command")
#: What a faithful simulator reaches (issue 12): (comparison, bound) per summary key.
TARGETS: dict[str, tuple[str, float | bool]] = {
    "spearman": (">=", 0.8), "mae": ("<=", 0.04), "inside_interval": (">=", 0.8), "best_in_top3": ("==", True),
    "p50_error_median": ("<=", 0.05), "p50_error_worst": ("<=", 0.10)}
TOP = 3  # the predicted best graph should be among the measured top TOP


@dataclass(frozen=True)
class FidelityRow:
    """One graph: predicted accuracy (expected, with its 95% prediction interval for this many held-out
    questions) and latency (p50, p95 seconds) vs what the real runs measured (Wilson 95% CI)."""

    index: int
    graph: Graph
    predicted: float
    interval: tuple[float, float]
    measured: float
    ci: tuple[float, float]
    n_questions: int
    fit_sd: float = math.nan
    includes: str = ""
    predicted_latency: tuple[float, float] | None = None  # (p50, p95) s
    measured_latency: tuple[float, float] | None = None  # (p50, p95) s over ``latency_queries`` queries
    latency_queries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # token figures of the real runs
    walls: tuple[float, ...] = ()  # the measured latency queries' wall times, s

    def p50_ci(self, level: float = 0.95) -> tuple[float, float] | None:
        """Distribution-free ``level`` confidence interval of the true p50 latency from ``walls`` (order
        statistics around the sample median); None with fewer than 6 walls."""
        if len(self.walls) < 6:
            return None
        from scipy.stats import binom

        w = np.sort(self.walls)
        n = len(w)
        k = max(int(binom.ppf((1 - level) / 2, n, 0.5)) - 1, 0)
        return float(w[k]), float(w[n - 1 - k])

    @property
    def inside(self) -> bool:
        return self.interval[0] <= self.measured <= self.interval[1]

    @property
    def error(self) -> float:
        """predicted - measured accuracy."""
        return self.predicted - self.measured

    def latency_errors(self) -> dict[str, float]:
        """Relative errors (predicted - measured) / measured of p50 and p95; empty without both."""
        p, m = self.predicted_latency, self.measured_latency
        if p is None or m is None:
            return {}
        return {"p50": relative_error(p[0], m[0]), "p95": relative_error(p[1], m[1])}

    def to_dict(self) -> dict[str, Any]:
        g = self.graph
        return {
            "index": self.index, "graph": g.to_dict(), "nodes": len(g.executed), "width": g.width, "depth": g.depth,
            "predicted": {"accuracy": self.predicted, "interval": list(self.interval), "fit_sd": _finite(self.fit_sd),
                          "includes": self.includes,
                          "latency": _lat(self.predicted_latency)},
            "measured": {"accuracy": self.measured, "ci": list(self.ci), "n_questions": self.n_questions,
                         "latency": _lat(self.measured_latency), "latency_queries": self.latency_queries,
                         "p50_ci_s": None if (ci := self.p50_ci()) is None else list(ci),
                         "walls_s": list(self.walls), **self.extra},
            "error": self.error, "inside_interval": self.inside,
            "latency_error": {k: _finite(v) for k, v in self.latency_errors().items()},
        }


#: ``measured`` keys a row writes itself; any others are the real runs' token figures (``extra``).
_MEASURED_KEYS = ("accuracy", "ci", "n_questions", "latency", "latency_queries", "p50_ci_s", "walls_s")


def row_from_dict(data: Any) -> FidelityRow:
    """A row as ``FidelityRow.to_dict`` wrote it (``ConfigError`` naming the row otherwise)."""
    where = f"row {data.get('index', '?')}" if isinstance(data, dict) else "a row"
    try:
        pred, meas = data["predicted"], data["measured"]
        return FidelityRow(
            int(data["index"]), Graph.from_dict(data["graph"], catalog=None), float(pred["accuracy"]),
            _pair(pred["interval"]), float(meas["accuracy"]), _pair(meas["ci"]), int(meas["n_questions"]),
            fit_sd=math.nan if pred.get("fit_sd") is None else float(pred["fit_sd"]),
            includes=str(pred.get("includes", "")), predicted_latency=_unlat(pred.get("latency")),
            measured_latency=_unlat(meas.get("latency")), latency_queries=int(meas.get("latency_queries", 0)),
            extra={k: v for k, v in meas.items() if k not in _MEASURED_KEYS},
            walls=tuple(float(w) for w in meas.get("walls_s", ())))
    except TtsSimError as exc:
        raise ConfigError(f"fidelity report {where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"fidelity report {where}: missing or malformed {exc}") from None


def _pair(values: Any) -> tuple[float, float]:
    low, high = values
    return float(low), float(high)


def _unlat(data: Any) -> tuple[float, float] | None:
    return None if data is None else (float(data["p50_s"]), float(data["p95_s"]))


def _lat(pair: tuple[float, float] | None) -> dict[str, float] | None:
    return None if pair is None else {"p50_s": pair[0], "p95_s": pair[1]}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def best_in_top(predicted: Sequence[float], measured: Sequence[float], top: int = TOP) -> bool:
    """Whether the graph with the highest predicted accuracy (the first on ties) is among the ``top``
    best measured (ties at the boundary count as in)."""
    if not predicted:
        raise ConfigError("no graphs")
    best = int(np.argmax(predicted))
    bar = sorted(measured, reverse=True)[min(top, len(measured)) - 1]
    return measured[best] >= bar


def if_exact(rows: Sequence[FidelityRow], draws: int = 4000, seed: int = 0) -> dict[str, float | None]:
    """What exactly right predictions would score against measurements of this size: each graph's
    true accuracy taken to be its prediction, its measurement a binomial draw on its ``n_questions``.
    Median Spearman and MAE over ``draws`` such experiments, and how often each accuracy target
    (``TARGETS``) would be met. Read it beside the real figures: a target that exact predictions meet
    rarely cannot tell a good simulator from a poor one at this number of questions and graphs."""
    from scipy.stats import rankdata

    p = np.clip([r.predicted for r in rows], 0.0, 1.0)
    n = np.array([r.n_questions for r in rows])
    meas = np.random.default_rng(seed).binomial(n, p, size=(draws, len(rows))) / n
    err = np.abs(meas - p).mean(axis=1)
    out: dict[str, float | None] = {"spearman": None, "spearman_target_met": None}
    if len(rows) >= 2 and np.ptp(p) > 0:
        rp, rm = rankdata(p), rankdata(meas, axis=1)
        rm_c, rp_c = rm - rm.mean(axis=1, keepdims=True), rp - rp.mean()
        denom = np.sqrt((rm_c ** 2).sum(axis=1) * (rp_c ** 2).sum())
        rho = np.where(denom > 0, (rm_c @ rp_c) / np.where(denom > 0, denom, 1.0), np.nan)
        ok = rho[np.isfinite(rho)]
        if ok.size:
            met = float(np.mean(ok >= TARGETS["spearman"][1]))
            out = {"spearman": float(np.median(ok)), "spearman_target_met": met}
    best, k = int(np.argmax(p)), min(TOP, len(rows))
    bar = -np.sort(-meas, axis=1)[:, k - 1]
    return {**out, "mae": float(np.median(err)), "mae_target_met": float(np.mean(err <= TARGETS["mae"][1])),
            "best_in_top3": float(np.mean(meas[:, best] >= bar)), **latency_if_exact(rows, draws, seed)}


def latency_if_exact(rows: Sequence[FidelityRow], draws: int = 4000, seed: int = 0) -> dict[str, float | None]:
    """The p50 latency errors a simulator would show that predicted each graph's p50 exactly: the
    measured p50 of ``walls`` queries itself varies from run to run (bootstrap of each graph's walls
    around its measured p50). Median over ``draws`` of the median and the worst |relative error| over
    the graphs, and how often each would meet its target; None without walls."""
    walls = [np.asarray(r.walls, dtype=float) for r in rows if len(r.walls) >= 2]
    if not walls:
        return {"p50_error_median": None, "p50_error_median_target_met": None, "p50_error_worst": None,
                "p50_error_worst_target_met": None}
    rng = np.random.default_rng(seed + 1)
    errs = np.empty((draws, len(walls)))
    for j, w in enumerate(walls):
        boot = np.median(rng.choice(w, size=(draws, len(w))), axis=1)
        errs[:, j] = np.abs(boot / np.median(w) - 1)
    med, worst = np.median(errs, axis=1), errs.max(axis=1)
    return {"p50_error_median": float(np.median(med)),
            "p50_error_median_target_met": float(np.mean(med <= TARGETS["p50_error_median"][1])),
            "p50_error_worst": float(np.median(worst)),
            "p50_error_worst_target_met": float(np.mean(worst <= TARGETS["p50_error_worst"][1]))}


def summary(rows: Sequence[FidelityRow], *, profile: str, command: str) -> dict[str, Any]:
    """The summary (``SUMMARY_KEYS``): ``spearman`` of predicted vs measured accuracy (None when
    undefined), ``mae`` (mean |predicted - measured|), ``inside_interval`` (fraction of graphs whose
    measured accuracy lies in its predicted interval), ``best_in_top3``, the median and worst
    |relative error| of p50 latency over the graphs that have both (None without), ``n_graphs``,
    ``n_questions`` (held-out questions per graph: the fewest any graph ran), ``if_exact`` (what exactly
    right predictions would score here: ``if_exact``), ``profile``, ``command``."""
    if not rows:
        raise ConfigError("no graphs to summarise")
    pred, meas = [r.predicted for r in rows], [r.measured for r in rows]
    p50 = [abs(e["p50"]) for r in rows if (e := r.latency_errors()) and math.isfinite(e["p50"])]
    return {
        "spearman": spearman(pred, meas),
        "mae": float(np.mean(np.abs(np.subtract(pred, meas)))),
        "inside_interval": sum(r.inside for r in rows) / len(rows),
        "best_in_top3": best_in_top(pred, meas),
        "p50_error_median": float(np.median(p50)) if p50 else None,
        "p50_error_worst": float(max(p50)) if p50 else None,
        "n_graphs": len(rows), "n_questions": min(r.n_questions for r in rows), "if_exact": if_exact(rows),
        "profile": profile, "command": command,
    }


def target_met(key: str, value: Any) -> bool | None:
    """Whether a summary value meets its target (None: no target, or no value)."""
    if key not in TARGETS or value is None:
        return None
    op, bound = TARGETS[key]
    return bool(value >= bound if op == ">=" else value <= bound if op == "<=" else value == bound)


@dataclass
class FidelityReport:
    task: str
    rows: list[FidelityRow]
    profile: str
    command: str
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return summary(self.rows, profile=self.profile, command=self.command)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "task": self.task, "summary": self.summary(),
                "config": self.config, "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Any, what: str = "fidelity report") -> FidelityReport:
        """A report as ``to_dict`` wrote it; ``ConfigError`` (one line, naming ``what``) otherwise."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"{what} is not a tts-sim fidelity report (schema {SCHEMA!r})")
        if data.get("version") != SCHEMA_VERSION:
            raise ConfigError(f"{what}: unsupported version {data.get('version')!r} (this tts-sim reads "
                              f"{SCHEMA_VERSION})")
        rows, summary_ = data.get("rows"), data.get("summary")
        if not isinstance(rows, list) or not rows or not isinstance(summary_, dict) \
                or not isinstance(data.get("task"), str):
            raise ConfigError(f"{what}: needs a task, a summary and at least one row")
        config = data["config"] if isinstance(data.get("config"), dict) else {}
        return cls(data["task"], [row_from_dict(r) for r in rows], str(summary_.get("profile", "")),
                   str(summary_.get("command", "")), config)

    HEADERS = ("#", "graph", "pred acc [95% int]", "meas acc [95% CI]", "in", "p50 s pred/meas (err)",
               "meas p50 95% CI", "p95 s pred/meas (err)")

    def table_rows(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for r in self.rows:
            g, e = r.graph, r.latency_errors()
            p, m = r.predicted_latency, r.measured_latency
            out.append((str(r.index), f"{len(g.executed)}n w{g.width} d{g.depth}",
                        f"{r.predicted:.3f} [{r.interval[0]:.3f}, {r.interval[1]:.3f}]",
                        f"{r.measured:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]", "yes" if r.inside else "no",
                        pair_text(p[0] if p else None, m[0] if m else None, e.get("p50")),
                        "" if (ci := r.p50_ci()) is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]",
                        pair_text(p[1] if p else None, m[1] if m else None, e.get("p95"))))
        return out

    def summary_lines(self) -> list[str]:
        s = self.summary()
        names = {"spearman": "Spearman rank correlation, predicted vs measured accuracy",
                 "mae": "mean absolute accuracy error", "inside_interval": "graphs inside the predicted 95% interval",
                 "best_in_top3": f"predicted best graph among the measured top {TOP}",
                 "p50_error_median": "median |relative error| of p50 latency",
                 "p50_error_worst": "worst |relative error| of p50 latency"}
        lines = []
        for key, name in names.items():
            met = target_met(key, s[key])
            op, bound = TARGETS[key]
            verdict = "" if met is None else f" (target {op} {_fmt(key, bound)}: {'met' if met else 'missed'})"
            lines.append(f"{name}: {_fmt(key, s[key])}{verdict}")
        e = s["if_exact"]
        rho = ("n/a" if e["spearman"] is None
               else f"{e['spearman']:+.3f} (target met in {100 * e['spearman_target_met']:.0f}%)")
        lines.append(f"exactly right predictions would score, with this measurement noise (median of binomial "
                     f"draws): Spearman {rho}, MAE {e['mae']:.3f} (target met in {100 * e['mae_target_met']:.0f}%), "
                     f"best in top {TOP} in {100 * e['best_in_top3']:.0f}%")
        if e.get("p50_error_median") is not None:
            lines.append(f"a p50 latency predicted exactly would be off by, with {self.rows[0].latency_queries} "
                         f"queries per graph (median of bootstrap draws): median {100 * e['p50_error_median']:.1f}% "
                         f"(target met in {100 * e['p50_error_median_target_met']:.0f}%), worst "
                         f"{100 * e['p50_error_worst']:.1f}% "
                         f"(target met in {100 * e['p50_error_worst_target_met']:.0f}%)")
        return lines

    def to_text(self) -> str:
        from tts_sim.text_table import table

        s = self.summary()
        return "\n".join([table(self.HEADERS, self.table_rows()), "",
                          f"{s['n_graphs']} graphs x {s['n_questions']} held-out questions; profile: {s['profile']}",
                          *self.summary_lines()])

    def to_markdown(self, png: str | None = None) -> str:
        s, cfg = self.summary(), self.config
        head = "| " + " | ".join(self.HEADERS) + " |\n|" + "---|" * len(self.HEADERS) + "\n"
        body = "".join("| " + " | ".join(row) + " |\n" for row in self.table_rows())
        misses = [r for r in self.rows if not r.inside]
        miss_text = "\n".join(f"- #{r.index} ({len(r.graph.executed)} nodes, width {r.graph.width}, depth "
                              f"{r.graph.depth}): predicted {r.predicted:.3f}, measured {r.measured:.3f} "
                              f"({r.error:+.3f})" for r in misses) or "- none"
        graphs = "\n\n".join(f"**#{r.index}**\n\n```\n{r.graph.to_text()}\n```" for r in self.rows)
        return (
            f"# Fidelity: predicted vs measured on held-out graphs ({self.task})\n\n"
            f"- profile: {s['profile']}\n"
            f"- {s['n_graphs']} graphs, {s['n_questions']} held-out questions each (never in the profile): "
            f"{cfg.get('questions_text', '')}\n"
            f"- backend: {cfg.get('backend', '')}; max new tokens {cfg.get('max_new_tokens', '')}, temperature "
            f"{cfg.get('temperature', '')}, seed {cfg.get('seed', '')}\n"
            f"- predicted accuracy: the quality model fitted on the profile; interval: "
            f"{cfg.get('interval_text', '95% prediction interval')}\n"
            f"- latency: predicted by the simulator on `{cfg.get('cluster', '')}` "
            f"({cfg.get('scheduler', 'its default scheduler')}) with the profile's latency tables "
            f"(one query in flight, {cfg.get('token_lengths', '')} reply lengths); measured: wall time per query of "
            f"the first {cfg.get('latency_questions', '')} questions of each graph, run one at a time\n"
            f"- command: `{s['command']}`\n"
            + (f"- measured by: `{rep.get('measured_by', '')}` ({rep.get('note', '')})\n"
               if isinstance(rep := cfg.get("repredicted"), dict) else "")
            + "\n" + (f"![predicted vs measured]({png})\n\n" if png else "")
            + f"## Results\n\n{head}{body}\n## Summary\n\n" + "".join(f"- {x}\n" for x in self.summary_lines())
            + f"\n## Graphs outside their predicted interval\n\n{miss_text}\n\n## Graphs\n\n{graphs}\n"
        )

    def plot(self, path: str | Path) -> None:
        """Predicted (x, with its interval) vs measured (y, with its Wilson CI) accuracy, and y = x."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = np.array([r.predicted for r in self.rows])
        y = np.array([r.measured for r in self.rows])
        xerr = np.array([[r.predicted - r.interval[0] for r in self.rows], [r.interval[1] - r.predicted
                                                                            for r in self.rows]])
        yerr = np.array([[r.measured - r.ci[0] for r in self.rows], [r.ci[1] - r.measured for r in self.rows]])
        fig, ax = plt.subplots(figsize=(6, 6))
        lo = float(min(x.min() - xerr[0].max(), y.min() - yerr[0].max(), 0.0 if x.min() < 0.1 else x.min() - 0.1))
        hi = float(max(x.max() + xerr[1].max(), y.max() + yerr[1].max()))
        lo, hi = max(0.0, lo - 0.02), min(1.0, hi + 0.02)
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="y = x")
        ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None), fmt="none", ecolor="lightgrey",
                    elinewidth=1, capsize=2)
        inside = np.array([r.inside for r in self.rows])
        for mask, colour, label in ((inside, "tab:blue", "inside its interval"), (~inside, "tab:red", "outside")):
            if mask.any():
                ax.scatter(x[mask], y[mask], c=colour, zorder=3, s=25, label=label)
        for r in self.rows:
            ax.annotate(str(r.index), (r.predicted, r.measured), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
        s = self.summary()
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("predicted accuracy (95% prediction interval)")
        ax.set_ylabel("measured accuracy (95% Wilson CI)")
        rho = "n/a" if s["spearman"] is None else f"{s['spearman']:.2f}"
        ax.set_title(f"{self.task}: {s['n_graphs']} held-out graphs x {s['n_questions']} questions\n"
                     f"Spearman {rho}, MAE {s['mae']:.3f}, inside {100 * s['inside_interval']:.0f}%", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in ("inside_interval", "p50_error_median", "p50_error_worst"):
        return f"{100 * value:.1f}%"
    return f"{value:+.3f}" if key == "spearman" else f"{value:.3f}"
