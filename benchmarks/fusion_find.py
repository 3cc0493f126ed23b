"""A candidate fusion term, tested before it enters the model: a node finds the correct answer itself.

The shipped fusion model lets a node's own knowledge enter only through ``tau * log own~(a)``, on every
answer alike. Fitted to the measured profiles, ``tau`` sits at its lower bound (0.05): the node's own
distribution over *wrong* answers does not predict what it writes, so the fit flattens the whole term,
and with it the one part that matters, its knowledge of the *correct* answer. The records say that
part is real: when no input holds the correct answer, the node still gives it, the more often the
easier the question is for it (add-words: 0.04 on questions it never solves alone, 0.17 on those it
solves 60%+ of the time; the shipped model says 0.06-0.08 throughout).

The candidate adds, for a node none of whose inputs holds the correct answer, to the correct answer's
logit ``find_r + solve_r * log own~(correct)`` (one pair per role: refine, assistant, fuser). With
correct inputs nothing changes (the records show no dependence on the node's own accuracy there).
This script fits it by maximum likelihood (numerical gradient: a prototype, not the package's fit),
prints the 5-fold cross-validated negative log-likelihood against the shipped model, the calibration
of records without a correct input, and re-predicts held-out fidelity reports (``tts-sim fidelity``
JSON files) with both models: Spearman, mean absolute error, predicted best in the measured top 3.

    python benchmarks/fusion_find.py add-words docs/fidelity/seed2/fidelity_add-words.json \\
        docs/fidelity/seed1-all/fidelity_add-words.json docs/fidelity/fidelity_add-words.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special, stats
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.core.graph import Graph, Role  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel, fit_inputs  # noqa: E402
from tts_sim.tasks import get_task  # noqa: E402

NB = len(F.COEF_NAMES)
EXTRA = tuple(f"{p}.{r}" for p in ("solve", "find") for r in F.ROLES)
EXTRA_BOUNDS = [(-5.0, 10.0)] * 3 + [(-10.0, 10.0)] * 3
BINS = ((0, 0.001), (0.001, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01))


def with_find(x: np.ndarray, logits: np.ndarray, role: np.ndarray, log_own0: np.ndarray,
              no_correct: np.ndarray) -> np.ndarray:
    """``logits`` (..., K) with the candidate term added at the correct answer where ``no_correct``."""
    solve, find = x[NB:NB + 3][role], x[NB + 3:NB + 6][role]
    out = logits.copy()
    out[..., 0] += np.where(no_correct, find + solve * log_own0, 0.0)
    return out


def record_log_probs(x: np.ndarray, rec: F.RecordArrays) -> np.ndarray:
    logits, t = F.record_logits(x[:NB], rec)
    if len(x) > NB:
        logits = with_find(x, logits, rec.role, t["log_own0"][:, 0], rec.counts[:, 0] == 0)
    return logits - special.logsumexp(logits, axis=1, keepdims=True)


def nll(x: np.ndarray, rec: F.RecordArrays) -> float:
    return -float(record_log_probs(x, rec)[np.arange(len(rec.output)), rec.output].sum())


def fit(rec: F.RecordArrays, candidate: bool) -> np.ndarray:
    """The shipped model: the package's own fit. The candidate: maximum likelihood from the documented
    prior (its terms from 0); what ``fit_plan`` cannot inform stays fixed, as in the package's fit."""
    if not candidate:
        return F.fit_fusion(rec).vector
    free, _ = F.fit_plan(rec)
    x0 = np.concatenate([F.PRIOR.vector, np.zeros(len(EXTRA))])
    free = np.concatenate([free, np.ones(len(EXTRA), dtype=bool)])
    bounds = [b for b, f in zip(F.BOUNDS + EXTRA_BOUNDS, free, strict=True) if f]

    def objective(z: np.ndarray) -> float:
        x = x0.copy()
        x[free] = z
        return nll(x, rec)

    res = optimize.minimize(objective, x0[free], method="L-BFGS-B", bounds=bounds)
    x = x0.copy()
    x[free] = res.x
    return x


class CandidateModel(QualityModel):
    """The shipped simulator with the candidate term added to every fusion node."""

    x: np.ndarray
    roles: dict[str, int]

    def _plan(self, graph: Graph) -> list[Any]:
        self._plans.clear()  # a cached plan may be an isomorphic graph's, with other node ids
        plan = super()._plan(graph)
        for p in plan:
            if p.preds:
                self.roles[p.id] = F.role_index(Role(graph.node(p.id).role).value, len(p.preds))
        return plan

    def _fusion_logits(self, p: Any, ids: list[np.ndarray], qs: np.ndarray) -> np.ndarray:
        logits = super()._fusion_logits(p, ids, qs).astype(np.float64)
        no_correct = np.ones(ids[0].shape, dtype=bool)
        for j in p.preds:
            no_correct &= ids[j] != 0
        log_own0 = (p.log_own[qs, 0] / float(self.params.tau(self.roles[p.id])))[:, None]
        return with_find(self.x, logits, np.full(ids[0].shape, self.roles[p.id]), log_own0, no_correct)


def read_report(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", help="a task with a packaged measured profile (add-words, mul-words)")
    ap.add_argument("reports", nargs="*", type=Path, help="fidelity JSON reports of that task to re-predict")
    ap.add_argument("--profile", help="default: measured:TASK")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    threadpool_limits(1)
    name = args.profile or f"measured:{args.task}"
    try:
        profile = load_profile(name)
        spec = get_task(args.task)
        tp = profile.task(spec.name)
        reports = [read_report(path) for path in args.reports]
        for path, report in zip(args.reports, reports, strict=True):
            if not isinstance(report, dict) or report.get("task") != spec.name or not isinstance(report.get("rows"),
                                                                                                list):
                raise ValueError(f"{path}: not a tts-sim fidelity report of task {spec.name!r}")
        if args.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {args.folds}")
    except (TtsSimError, OSError, ValueError) as e:
        print(f"fusion_find: {e}", file=sys.stderr)
        sys.exit(2)
    answers, rec, skills = fit_inputs(tp, spec, name)
    shipped, cand = fit(rec, False), fit(rec, True)
    print(f"{name}: {len(rec.output)} fusion records")
    print("candidate: " + ", ".join(f"{n}={v:.2f}" for n, v in zip(EXTRA, cand[NB:], strict=True))
          + f"; tau {cand[0]:.2f}/{cand[F.NP]:.2f}/{cand[2 * F.NP]:.2f} (shipped {shipped[0]:.2f}/"
          f"{shipped[F.NP]:.2f}/{shipped[2 * F.NP]:.2f})")
    fold = np.random.default_rng(0).integers(0, args.folds, len(rec.output))
    for label, candidate in (("shipped", False), ("candidate", True)):
        cv = sum(nll(fit(subset(rec, fold != k), candidate), subset(rec, fold == k)) for k in range(args.folds))
        print(f"{args.folds}-fold cross-validated negative log-likelihood, {label}: {cv:.1f}")
    y, no_correct = rec.output == 0, rec.counts[:, 0] == 0
    own = np.array([row[0] / max(sum(row), 1) for row in (tp.answer_banks[r.model][r.question]
                                                          for r in tp.fusion_records)])
    p_shipped, p_cand = (np.exp(record_log_probs(x, rec)[:, 0]) for x in (shipped, cand))
    print("records without a correct input, by the node's own bank accuracy on the question "
          "(observed / shipped / candidate):")
    for lo, hi in BINS:
        s = no_correct & (own >= lo) & (own < hi)
        if s.any():
            print(f"  [{lo}, {min(hi, 1)}): {s.sum():4d} records  {y[s].mean():.3f} / {p_shipped[s].mean():.3f} / "
                  f"{p_cand[s].mean():.3f}")
    base = QualityModel.from_profile(profile, spec)
    model = CandidateModel(spec, answers, F.FusionParams.from_vector(cand[:NB], skills=skills))
    model.x, model.roles = cand, {}
    for path, report in zip(args.reports, reports, strict=True):
        graphs = [Graph.from_dict(r["graph"]) for r in report["rows"]]
        measured = np.array([r["measured"]["accuracy"] for r in report["rows"]])
        print(f"{path} ({len(graphs)} graphs x {report['summary']['n_questions']} questions):")
        for label, qm in (("shipped", base), ("candidate", model)):
            pred = np.array([qm.expected(g).mean() for g in graphs])
            top3 = set(np.argsort(-measured)[:3].tolist())
            print(f"  {label:<9} Spearman {stats.spearmanr(pred, measured)[0]:+.2f}  MAE "
                  f"{np.abs(pred - measured).mean():.3f}  predicted best in measured top 3: "
                  f"{'yes' if int(np.argmax(pred)) in top3 else 'no'}")


if __name__ == "__main__":
    main()
