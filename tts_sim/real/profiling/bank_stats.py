"""Statistics of measured answer banks: how often each model is right, with a confidence interval, and
the structure that decides what sampling, voting and fusion can gain (the figures of
``tts_sim.sim.scenario_stats``, here from real samples).

Samples of one question are correlated, so the interval resamples *questions* (percentile bootstrap),
not samples; with ``k`` samples per question a question is "never" solved at 0/k and "in between"
when neither 0/k nor k/k.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 2000


@dataclass(frozen=True)
class ModelBankStats:
    model: str
    questions: int
    samples: int  # in all
    accuracy: float  # over all samples
    ci95: tuple[float, float]  # bootstrap over questions
    never: float  # fraction of questions with no correct sample
    always: float  # ... with every sample correct
    in_between: float
    majority: float  # fraction of questions whose most frequent answer is correct (ties: not correct)


@dataclass(frozen=True)
class BankStats:
    task: str
    models: list[ModelBankStats]
    correlation: float | None  # mean pairwise correlation of per-question success rates (None: one model)
    same_wrong: float | None  # P(two models' modal answers agree | both modal answers wrong), None if never


def _rows(counts: Sequence[Sequence[int]]) -> list[list[int]]:
    return [list(r) for r in counts if sum(r) > 0]


def model_stats(model: str, counts: Sequence[Sequence[int]], seed: int = 0) -> ModelBankStats:
    """``counts``: [question][answer id] -> count, id 0 correct."""
    rows = _rows(counts)
    if not rows:
        raise ValueError(f"{model}: no samples")
    right = np.array([r[0] for r in rows], dtype=float)
    total = np.array([sum(r) for r in rows], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(rows), size=(BOOTSTRAP, len(rows)))
    boot = right[picks].sum(axis=1) / total[picks].sum(axis=1)
    majority = float(np.mean([r[0] > max(r[1:], default=0) for r in rows]))
    return ModelBankStats(model, len(rows), int(total.sum()), float(right.sum() / total.sum()),
                          (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
                          float(np.mean(right == 0)), float(np.mean(right == total)),
                          float(np.mean((right > 0) & (right < total))), majority)


def bank_stats(task: str, banks: Mapping[str, Sequence[Sequence[int]]], seed: int = 0) -> BankStats:
    """Per-model statistics and the cross-model structure of one task's banks (model -> counts)."""
    models = sorted(banks)
    stats = [model_stats(m, banks[m], seed) for m in models]
    rates = {m: [r[0] / sum(r) if sum(r) else np.nan for r in banks[m]] for m in models}
    corr, agree, both_wrong = [], 0, 0
    for a, b in itertools.combinations(models, 2):
        x, y = np.array(rates[a]), np.array(rates[b])
        ok = ~np.isnan(x) & ~np.isnan(y)
        if ok.sum() > 2 and x[ok].std() > 0 and y[ok].std() > 0:
            corr.append(float(np.corrcoef(x[ok], y[ok])[0, 1]))
        for ra, rb in zip(banks[a], banks[b], strict=False):
            if not sum(ra) or not sum(rb):
                continue
            ma, mb = int(np.argmax(ra)), int(np.argmax(rb))
            if ma != 0 and mb != 0:
                both_wrong += 1
                agree += ma == mb
    return BankStats(task, stats, float(np.mean(corr)) if corr else None,
                     agree / both_wrong if both_wrong else None)


def markdown_table(stats: Sequence[BankStats]) -> str:
    """One row per (task, model)."""
    lines = ["| task | model | questions | samples | accuracy | 95% CI (questions resampled) | never | in between "
             "| always | majority correct |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in stats:
        for m in s.models:
            lines.append(f"| {s.task} | {m.model} | {m.questions} | {m.samples} | {m.accuracy:.3f} | "
                         f"{m.ci95[0]:.3f}-{m.ci95[1]:.3f} | {m.never:.2f} | {m.in_between:.2f} | {m.always:.2f} | "
                         f"{m.majority:.2f} |")
    lines.append("")
    lines.append("| task | cross-model correlation of per-question success | same wrong modal answer when both wrong |")
    lines.append("|---|---|---|")
    for s in stats:
        c = "n/a" if s.correlation is None else f"{s.correlation:.2f}"
        w = "n/a" if s.same_wrong is None else f"{s.same_wrong:.2f}"
        lines.append(f"| {s.task} | {c} | {w} |")
    return "\n".join(lines) + "\n"
