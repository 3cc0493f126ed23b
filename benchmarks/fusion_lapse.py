"""A lapse term in the fusion model, tried and not kept: does it fit the records and the graphs better?

On held-out graphs (``benchmarks/fidelity_nodes.py``) and on the profiles' own records, fusing nodes
whose inputs are all or mostly correct are right less often than the model says (mul-words records:
assistants with 2 correct inputs of 2, model 0.73, observed 0.63); with every input correct, the wrong
ones write no answer or an answer of their own (``benchmarks/fidelity_nodes.py``, part 5). The
prototype: with probability ``eps_r`` (one per role) a node ignores its inputs and answers from its own
(degraded) answer distribution: ``--lapse all`` over every answer, ``--lapse wrong`` over its wrong
answers only. It is fitted by maximum likelihood (numerical gradient, the degradation held at the
shipped fit: no long-context records), compared by 5-fold cross-validated negative log-likelihood with
the shipped model, and re-predicts fidelity reports through the simulator (the mixture enters as the
log of the mixed probabilities).

    python benchmarks/fusion_lapse.py --lapse all mul-words docs/fidelity/seed4/fidelity_mul-words.json

Since stop 23 the package's model has the pick term (a node copies an input taken at random), which
took this idea's place; the comparison here stays the stop-22 one: "shipped" is the model fitted with
the pick term held at 0 (``PICK_OFF``), and the lapse is added to that model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import optimize, special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_ablation import ablation_inputs, cross_validated_nll, fold_of, summary  # noqa: E402
from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel, _NodePlan  # noqa: E402

NB = len(F.COEF_NAMES)


def lapse_distribution(own: np.ndarray, wrong_only: bool) -> np.ndarray:
    """The answer distribution of a lapse (last axis: answers) from the degraded own distribution."""
    own = own.copy()
    if wrong_only:
        own[..., 0] = 0.0
    return own / np.maximum(own.sum(axis=-1, keepdims=True), 1e-12)


def record_probs(z: np.ndarray, rec: F.RecordArrays, wrong_only: bool) -> np.ndarray:
    logits, t = F.record_logits(z[:NB], rec)
    eps = special.expit(z[NB:])[rec.role][:, None]
    own = np.where(rec.support, t["own1"], 0.0)
    return (1 - eps) * special.softmax(logits, axis=1) + eps * lapse_distribution(own, wrong_only)


def nll(z: np.ndarray, rec: F.RecordArrays, wrong_only: bool) -> float:
    p = record_probs(z, rec, wrong_only)[np.arange(len(rec.output)), rec.output]
    return -float(np.log(np.maximum(p, 1e-300)).sum())


def fit(rec: F.RecordArrays, skills: dict[str, float], wrong_only: bool) -> np.ndarray:
    x0 = F.fit_fusion(rec, skills, hold=F.PICK_OFF).vector
    z0 = np.concatenate([x0, [-2.0] * len(F.ROLES)])
    bounds = list(F.BOUNDS) + [(-8.0, 3.0)] * len(F.ROLES)
    for name in F.PICK_OFF:  # the stop-22 model: no pick term
        i = F.COEF_NAMES.index(name)
        bounds[i] = (z0[i], z0[i])
    for i in (NB - 2, NB - 1):  # the degradation: no long-context records, held where the shipped fit has it
        bounds[i] = (z0[i], z0[i])
    return optimize.minimize(nll, z0, args=(rec, wrong_only), method="L-BFGS-B", bounds=bounds,
                             options={"maxiter": 400}).x


class LapseModel(QualityModel):
    """The simulator with the lapse: each fusing node's answer probabilities mixed with its lapse's."""

    eps: np.ndarray
    wrong_only: bool

    def _fusion_logits(self, p: _NodePlan, ids: list[np.ndarray], qs: np.ndarray) -> np.ndarray:
        probs = special.softmax(super()._fusion_logits(p, ids, qs).astype(np.float64), axis=2)
        role = F.role_index(self._roles[p.id], len(p.preds))
        lam = float(F.degradation(self.params.gamma(self.answers.skill[p.model]),
                                  np.asarray(len(p.preds) * self.task.answer_tokens)))
        own = F.degraded_probs(self.answers.probs[p.model], lam, self._base[p.model])[qs][:, None, :]
        own = np.where(self.answers.valid[qs][:, None, :], own, 0.0)
        mixed = (1 - self.eps[role]) * probs + self.eps[role] * lapse_distribution(own, self.wrong_only)
        return np.log(np.maximum(mixed, 1e-300))

    def accuracy_of(self, graph) -> float:  # type: ignore[no-untyped-def]
        self._plans.clear()  # plans carry node ids: keep them those of this graph
        self._roles = {n: graph.node(n).role.value for n in graph.executed}
        return float(self.expected(graph).mean())


SHARES = ((0.0, 0.0, "none"), (1e-9, 0.5 - 1e-9, "<half"), (0.5, 1 - 1e-9, ">=half"), (1.0, 1.0, "all"))


def calibration(rec: F.RecordArrays, shipped: np.ndarray, lapse: np.ndarray) -> None:
    """The records by role, in-degree and share of correct inputs: P(correct) by each model against
    the observed rate (± one standard error)."""
    y, share = rec.output == 0, rec.counts[:, 0] / rec.degree
    print(f"{'role':<10}{'inputs':>7}{'correct':>9}{'records':>9}{'shipped':>9}{'lapse':>7}{'observed':>15}")
    for role in range(len(F.ROLES)):
        for d in sorted(set(rec.degree.astype(int))):
            for lo, hi, label in SHARES:
                sel = (rec.role == role) & (rec.degree == d) & (share >= lo) & (share <= hi)
                if sel.sum() >= 10:
                    se = np.sqrt(y[sel].mean() * (1 - y[sel].mean()) / sel.sum())
                    print(f"{F.ROLES[role]:<10}{d:>7}{label:>9}{sel.sum():>9}{shipped[sel].mean():>9.3f}"
                          f"{lapse[sel].mean():>7.3f}{y[sel].mean():>9.3f}±{se:.3f}")


def main() -> None:
    ab = ablation_inputs("fusion_lapse", __doc__.splitlines()[0], profile_option=False,
                         extra=lambda ap: ap.add_argument("--lapse", choices=("all", "wrong"), default="all"))
    args, spec, answers, rec, skills, reports = ab.args, ab.spec, ab.answers, ab.rec, ab.skills, ab.reports
    wrong_only = args.lapse == "wrong"
    z = fit(rec, skills, wrong_only)
    print(f"lapse over {'wrong answers' if wrong_only else 'every answer'}: eps by role "
          + ", ".join(f"{r} {e:.3f}" for r, e in zip(F.ROLES, special.expit(z[NB:]), strict=True)))
    shipped_params = F.fit_fusion(rec, skills, hold=F.PICK_OFF)
    calibration(rec, F.p_correct(shipped_params, rec), record_probs(z, rec, wrong_only)[:, 0])
    fold = fold_of(len(rec.output), args.folds)
    shipped = cross_validated_nll(rec, skills, F.PICK_OFF, args.folds)
    lapse = sum(nll(fit(subset(rec, fold != k), skills, wrong_only), subset(rec, fold == k), wrong_only)
                for k in range(args.folds))
    print(f"{args.folds}-fold cross-validated negative log-likelihood: shipped {shipped:.1f}, "
          f"with the lapse {lapse:.1f}")
    base = QualityModel(spec, answers, shipped_params)
    model = LapseModel(base.task, base.answers, F.FusionParams.from_vector(z[:NB], skills=base.params.skills,
                                                                           widest=base.params.widest))
    model.eps, model.wrong_only = special.expit(z[NB:]), wrong_only
    for path, report in zip(args.reports, reports, strict=True):
        measured = np.array([r.measured for r in report.rows])
        shipped_p = np.array([base.expected(r.graph).mean() for r in report.rows])
        lapse_p = np.array([model.accuracy_of(r.graph) for r in report.rows])
        print(f"{path}:\n  shipped:   {summary(shipped_p, measured)}\n  the lapse: {summary(lapse_p, measured)}")


if __name__ == "__main__":
    main()
