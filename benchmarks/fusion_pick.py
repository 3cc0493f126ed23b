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

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_ablation import cross_validated_nll, print_repredictions, read_reports  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
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
        reports = read_reports(args.reports, spec.name)
    except (TtsSimError, OSError, ValueError) as e:
        print(f"fusion_pick: {e}", file=sys.stderr)
        sys.exit(2)
    answers, rec, skills = fit_inputs(profile.task(spec.name), spec, name)
    fits = {label: F.fit_fusion(rec, skills, hold=hold) for label, hold in MODELS.items()}
    print(f"{name}: {len(rec.output)} fusion records; with pick: "
          + ", ".join(f"{r}.pick={fits['with pick'].coef[f'{r}.pick']:.3f}" for r in F.ROLES))
    for label, hold in MODELS.items():
        print(f"{args.folds}-fold cross-validated negative log-likelihood, {label}: "
              f"{cross_validated_nll(rec, skills, hold, args.folds):.1f}")
    print_repredictions(args.reports, reports, {label: QualityModel(spec, answers, params)
                                                for label, params in fits.items()})


if __name__ == "__main__":
    main()
