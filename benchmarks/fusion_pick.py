"""The fusion model's pick term, ablated: the model with it (shipped) against the model without it.

With probability ``pick_r`` a fusing node copies one of its inputs taken at random instead of weighing
them (``tts_sim.sim.quality.fusion``). This script fits the profile's records with and without the term
(``fit_fusion(..., hold=PICK_OFF)``: the model of stop 22), prints each fit's 5-fold cross-validated
negative log-likelihood and re-predicts fidelity reports (``tts-sim fidelity`` JSON) with both:
Spearman, mean absolute error, mean error and whether the predicted best graph is in the measured top 3
(as the report computes them; the report's interval coverage needs the full ``--repredict``).

    python benchmarks/fusion_pick.py mul-words docs/fidelity/seed5/fidelity_mul-words.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_calibration import subset  # noqa: E402
from benchmarks.fusion_lapse import summary  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.jsonio import read_json  # noqa: E402
from tts_sim.real.fidelity import FidelityReport  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel, fit_inputs  # noqa: E402
from tts_sim.tasks import get_task  # noqa: E402

MODELS = {"without pick": F.PICK_OFF, "with pick": ()}  # label -> coefficients held at the prior


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
        if args.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {args.folds}")
        profile = load_profile(name)
        spec = get_task(args.task)
        reports = [FidelityReport.from_dict(read_json(path, "fidelity report"), f"fidelity report {path}")
                   for path in args.reports]
        for path, report in zip(args.reports, reports, strict=True):
            if report.task != spec.name:
                raise ValueError(f"{path}: a fidelity report of task {report.task!r}, not {spec.name!r}")
    except (TtsSimError, OSError, ValueError) as e:
        print(f"fusion_pick: {e}", file=sys.stderr)
        sys.exit(2)
    answers, rec, skills = fit_inputs(profile.task(spec.name), spec, name)
    fits = {label: F.fit_fusion(rec, skills, hold=hold) for label, hold in MODELS.items()}
    print(f"{name}: {len(rec.output)} fusion records; with pick: "
          + ", ".join(f"{r}.pick={fits['with pick'].coef[f'{r}.pick']:.3f}" for r in F.ROLES))
    fold = np.random.default_rng(0).integers(0, args.folds, len(rec.output))
    for label, hold in MODELS.items():
        cv = sum(F.negative_log_likelihood(F.fit_fusion(subset(rec, fold != k), skills, hold=hold).vector,
                                           subset(rec, fold == k))[0] for k in range(args.folds))
        print(f"{args.folds}-fold cross-validated negative log-likelihood, {label}: {cv:.1f}")
    models = {label: QualityModel(spec, answers, params) for label, params in fits.items()}
    for path, report in zip(args.reports, reports, strict=True):
        measured = np.array([r.measured for r in report.rows])
        print(f"{path} ({len(report.rows)} graphs x {report.rows[0].n_questions} questions):")
        for label, qm in models.items():
            pred = np.array([qm.expected(r.graph).mean() for r in report.rows])
            print(f"  {label:<13} {summary(pred, measured)}")


if __name__ == "__main__":
    main()
