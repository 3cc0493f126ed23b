"""Answer statistics of the default scenario next to real models' (real-answer-stats.md, GSM8K).

The statistics that decide how much sampling, voting and fusion can gain, computed from a
scenario task's true answer distributions exactly where they can be (greedy answers, 0/10 and
10/10 rates) and from a fixed-seed draw of 10 samples per question where the real figure is one
(cross-model correlation of per-question success rates). "Greedy" is the most likely answer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from tts_sim.sim.scenario import QUESTIONS, ScenarioTask, scenario_task


class RealStats(TypedDict):
    greedy: dict[str, float]
    same_wrong: dict[tuple[str, str], float]
    in_between: tuple[float, float]
    never: tuple[float, float]
    correlation: float
    vote3_minus_best: float


#: Real figures (GSM8K test, 1,319 questions; ../shared/reference/real-answer-stats.md).
REAL_GSM8K: RealStats = {
    "greedy": {"llama-3.2-1b": 0.466, "llama-3.2-3b": 0.796, "llama-3.1-8b": 0.860},
    "same_wrong": {("llama-3.1-8b", "llama-3.2-1b"): 0.136, ("llama-3.1-8b", "llama-3.2-3b"): 0.344,
                   ("llama-3.2-1b", "llama-3.2-3b"): 0.173},
    "in_between": (0.38, 0.58),  # neither 0/10 nor 10/10, models of mean accuracy 0.37-0.70
    "never": (0.13, 0.32),  # 0/10 at mean accuracy 0.37-0.70
    "correlation": 0.54,  # mean pairwise, 7 models (range 0.41-0.66)
    "vote3_minus_best": 0.859 - 0.860,  # plurality of 1B/3B/8B greedy answers minus the 8B alone
}
MID_RANGE = (0.35, 0.75)  # models whose in-between / never rates are compared (the real models' range)
TRIO = ("llama-3.1-8b", "llama-3.2-1b", "llama-3.2-3b")  # ties in the vote go to the first
SHOWN = ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b")  # column order of the tables


@dataclass(frozen=True)
class TaskStats:
    task: str
    kind: str
    accuracy: dict[str, float]  # mean probability of the correct answer (calibrated to published)
    greedy: dict[str, float]  # accuracy of the most likely answer
    never: dict[str, float]  # P(0/10 correct) per model
    in_between: dict[str, float]  # P(neither 0/10 nor 10/10) per model
    correlation: float  # mean pairwise correlation of 10-sample success rates (models with 0.05 < acc < 0.95)
    same_wrong: dict[tuple[str, str], float]  # P(same greedy wrong answer | both greedy answers wrong)
    vote3_minus_best: float  # plurality vote of TRIO's greedy answers minus the best of them alone

    def mid_range(self, values: dict[str, float]) -> list[float]:
        return [v for m, v in values.items() if MID_RANGE[0] <= self.accuracy[m] <= MID_RANGE[1]]


def task_stats(truth: ScenarioTask, seed: int = 0, samples: int = 10) -> TaskStats:
    """The statistics of one scenario task (see the module docstring)."""
    p = truth.probs
    p0 = p[:, :, 0]
    models = truth.models
    greedy_id = p.argmax(axis=2)  # (M, Q); ties go to the lower id, i.e. the correct answer
    acc = dict(zip(models, p0.mean(axis=1).tolist(), strict=True))
    greedy = dict(zip(models, (greedy_id == 0).mean(axis=1).tolist(), strict=True))
    never = dict(zip(models, ((1 - p0) ** samples).mean(axis=1).tolist(), strict=True))
    always = (p0**samples).mean(axis=1)
    between = dict(zip(models, (1 - np.array(list(never.values())) - always).tolist(), strict=True))
    rng = np.random.default_rng(seed)
    rates = rng.binomial(samples, p0) / samples
    usable = [i for i, m in enumerate(models) if 0.05 < acc[m] < 0.95]
    cors = [np.corrcoef(rates[i], rates[j])[0, 1] for i, j in itertools.combinations(usable, 2)]
    same: dict[tuple[str, str], float] = {}
    for a, b in itertools.combinations(TRIO, 2):
        if a in models and b in models:
            ga, gb = greedy_id[models.index(a)], greedy_id[models.index(b)]
            both = (ga > 0) & (gb > 0)
            same[(a, b)] = float((ga[both] == gb[both]).mean()) if both.any() else float("nan")
    vote = float("nan")
    if all(m in models for m in TRIO):
        g = np.stack([greedy_id[models.index(m)] for m in TRIO])  # (3, Q)
        agree_12 = g[1] == g[2]
        winner = np.where(agree_12 & (g[0] != g[1]), g[1], g[0])  # a pair outvotes; otherwise the first
        vote = float((winner == 0).mean()) - max(greedy[m] for m in TRIO)
    return TaskStats(truth.task.name, truth.task.kind, acc, greedy, never, between,
                     float(np.mean(cors)) if cors else float("nan"), same, vote)


def scenario_stats(seed: int = 0, tasks: tuple[str, ...] = tuple(QUESTIONS)) -> list[TaskStats]:
    """Statistics of every task of the default scenario as ``generate_profile(seed)`` draws it."""
    out = []
    for name, child in zip(QUESTIONS, np.random.SeedSequence(seed).spawn(len(QUESTIONS)), strict=True):
        if name in tasks:
            out.append(task_stats(scenario_task(name, QUESTIONS[name], np.random.default_rng(child)), seed))
    return out


def _rng(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "n/a"


def markdown(stats: list[TaskStats]) -> str:
    """One table per task: the scenario's figure next to the real GSM8K one."""
    real = REAL_GSM8K
    lines = []
    for t in stats:
        lines += [f"### {t.task} ({t.kind})", "", "| statistic | scenario | real (GSM8K) |", "|---|---|---|"]
        trio = [m for m in SHOWN if m in t.greedy]
        lines.append("| mean accuracy (calibrated to published), " + " / ".join(trio) + " | "
                     + " / ".join(f"{t.accuracy[m]:.2f}" for m in trio) + " | (greedy runs only, next row) |")
        lines.append("| greedy (most likely answer) accuracy, " + " / ".join(trio) + " | "
                     + " / ".join(f"{t.greedy[m]:.2f}" for m in trio) + " | "
                     + " / ".join(f"{real['greedy'][m]:.2f}" for m in trio) + " |")
        pairs = list(t.same_wrong)
        lines.append("| same wrong answer when both wrong, " + " / ".join(f"{a}&{b}" for a, b in pairs) + " | "
                     + " / ".join(f"{t.same_wrong[k]:.2f}" for k in pairs) + " | "
                     + " / ".join(f"{real['same_wrong'][k]:.2f}" for k in pairs) + " |")
        lines.append(f"| never solved (0/10), models of accuracy {MID_RANGE[0]}-{MID_RANGE[1]} | "
                     f"{_rng(t.mid_range(t.never))} | {real['never'][0]:.2f}-{real['never'][1]:.2f} |")
        lines.append(f"| in between (neither 0/10 nor 10/10), same models | {_rng(t.mid_range(t.in_between))} | "
                     f"{real['in_between'][0]:.2f}-{real['in_between'][1]:.2f} |")
        lines.append(f"| cross-model correlation of per-question success (10 samples) | {t.correlation:.2f} | "
                     f"{real['correlation']:.2f} |")
        lines.append(f"| plurality vote of the three greedy answers minus the best alone | {t.vote3_minus_best:+.3f} | "
                     f"{real['vote3_minus_best']:+.3f} |")
        lines.append("")
    return "\n".join(lines)
