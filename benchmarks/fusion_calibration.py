"""How well the fitted fusion model describes its own records, by role, in-degree and model.

For each group of a profile's fusion records: how many, the fitted model's mean probability that the
output is the correct answer, the observed rate, and the fraction of inputs that were correct. Then a
5-fold cross-validated negative log-likelihood of the model as shipped (context degradation at its
documented prior without long-context records, the pull's dilution with in-degree fitted) against one
without dilution (every input pulls alike: the model before it had the term) and one whose
degradation is fitted from the profile's short contexts anyway (what the "fitted only from long
contexts" rule forbids).

    python benchmarks/fusion_calibration.py measured:add-words add-words
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from tts_sim.sim.profiles import load_profile
from tts_sim.sim.quality import fusion as F
from tts_sim.sim.quality.model import fit_inputs
from tts_sim.tasks import get_task


def subset(rec: F.RecordArrays, mask: np.ndarray) -> F.RecordArrays:
    return F.RecordArrays(rec.role[mask], rec.skill[mask], rec.probs[mask], rec.counts[mask], rec.output[mask],
                          rec.excess[mask], rec.base[mask])


def fit_without_dilution(rec: F.RecordArrays, skills: dict[str, float]) -> F.FusionParams:
    return F.fit_fusion(rec, skills, hold=("dilution",))  # the prior's 0: every input pulls alike


def fit_degradation_anyway(rec: F.RecordArrays, skills: dict[str, float]) -> F.FusionParams:
    saved = F.LONG_CONTEXT_TOKENS, F.MIN_LONG_RECORDS
    F.LONG_CONTEXT_TOKENS, F.MIN_LONG_RECORDS = 0, 0
    try:
        return F.fit_fusion(rec, skills)
    finally:
        F.LONG_CONTEXT_TOKENS, F.MIN_LONG_RECORDS = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="scenario, measured:TASK or a file")
    ap.add_argument("task")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    threadpool_limits(1)
    tp = load_profile(args.profile).task(args.task)
    recs = tp.fusion_records
    _, rec, skills = fit_inputs(tp, get_task(args.task), args.profile)
    degree, model = np.array([len(r.inputs) for r in recs]), np.array([r.model for r in recs])
    params = F.fit_fusion(rec, skills)
    print(params.table())
    p0, y = F.p_correct(params, rec), rec.output == 0
    print(f"context beyond the question: {rec.excess.min():.0f}-{rec.excess.max():.0f} tokens "
          f"(median {np.median(rec.excess):.0f})\n")
    print(f"{'role':<10}{'inputs':>7}{'model':>15}{'records':>9}{'model P(correct)':>18}{'observed':>10}"
          f"{'inputs correct':>16}")
    for role in range(len(F.ROLES)):
        for d in sorted(set(degree)):
            for m in sorted(set(model)):
                sel = (rec.role == role) & (degree == d) & (model == m)
                if sel.sum():
                    se = np.sqrt(y[sel].mean() * (1 - y[sel].mean()) / sel.sum())
                    print(f"{F.ROLES[role]:<10}{d:>7}{m:>15}{sel.sum():>9}{p0[sel].mean():>18.3f}"
                          f"{y[sel].mean():>7.3f}±{se:.3f}{(rec.counts[sel, 0] / d).mean():>13.3f}")
    levels = np.array([r.level for r in recs])
    if levels.min() > 0:
        by_level(rec, p0, y, levels, skills)
    fold = np.random.default_rng(0).integers(0, args.folds, len(recs))
    print(f"\n{args.folds}-fold cross-validated negative log-likelihood (lower is better):")
    for name, fitter in (("as shipped", lambda r: F.fit_fusion(r, skills)),
                         ("without dilution (dilution 0)", lambda r: fit_without_dilution(r, skills)),
                         ("degradation fitted from short contexts", lambda r: fit_degradation_anyway(r, skills))):
        total = sum(F.negative_log_likelihood(fitter(subset(rec, fold != k)).vector, subset(rec, fold == k))[0]
                    for k in range(args.folds))
        print(f"  {name:<40} {total:9.1f}")


def by_level(rec: F.RecordArrays, p0: np.ndarray, y: np.ndarray, levels: np.ndarray,
             skills: dict[str, float]) -> None:
    """Observed against fitted P(correct) per level, then the deepest level under a fit without it."""
    print(f"\n{'level':<8}{'records':>9}{'model P(correct)':>18}{'observed':>16}{'inputs correct':>16}")
    degree = rec.counts.sum(axis=1)
    for lv in sorted(set(levels.tolist())):
        sel = levels == lv
        se = np.sqrt(y[sel].mean() * (1 - y[sel].mean()) / sel.sum())
        print(f"{lv:<8}{sel.sum():>9}{p0[sel].mean():>18.3f}{y[sel].mean():>10.3f}±{se:.3f}"
              f"{(rec.counts[sel, 0] / degree[sel]).mean():>16.3f}")
    top = levels == levels.max()
    shallow = F.fit_fusion(subset(rec, ~top), skills)
    p_top = F.p_correct(shallow, subset(rec, top))
    nll_all = F.negative_log_likelihood(F.fit_fusion(rec, skills).vector, subset(rec, top))[0]
    nll_shallow = F.negative_log_likelihood(shallow.vector, subset(rec, top))[0]
    print(f"level {levels.max()} predicted by a fit on the levels below: P(correct) {p_top.mean():.3f} against "
          f"{y[top].mean():.3f} observed; its negative log-likelihood {nll_shallow:.1f} (a fit on all levels: "
          f"{nll_all:.1f})")


if __name__ == "__main__":
    main()
