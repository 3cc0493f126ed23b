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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_ablation import ablation_inputs, print_cross_validated, print_repredictions  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel  # noqa: E402

MODELS = {"without pick": F.PICK_OFF, "with pick": ()}  # label -> coefficients held at the prior


def main() -> None:
    ab = ablation_inputs("fusion_pick", __doc__.splitlines()[0])
    fits = {label: F.fit_fusion(ab.rec, ab.skills, hold=hold) for label, hold in MODELS.items()}
    print(f"{ab.profile}: {len(ab.rec.output)} fusion records; with pick: "
          + ", ".join(f"{r}.pick={fits['with pick'].coef[f'{r}.pick']:.3f}" for r in F.ROLES))
    print_cross_validated(ab.rec, ab.skills, MODELS, ab.args.folds)
    print_repredictions(ab.args.reports, ab.reports, {label: QualityModel(ab.spec, ab.answers, params)
                                                      for label, params in fits.items()})


if __name__ == "__main__":
    main()
