"""The fusion model's find term, ablated: does a node that finds the correct answer itself fit better?

The fusion model (``tts_sim.sim.quality.fusion``) gives a node none of whose inputs holds the correct
answer ``lam * (find_r + solve_r * log own~(correct))`` on the correct answer's logit, one pair per
role. Before that term existed, the node's own knowledge entered only through ``tau * log own~(a)``, on
every answer alike, and the fit set ``tau`` to its lower bound (see the module docstring). This script
fits the model with and without the term (``fit_fusion(..., hold=FIND_OFF)``: find = solve = 0, the
model before), prints the 5-fold cross-validated negative log-likelihood of each, the calibration of
records without a correct input, and re-predicts held-out fidelity reports (``tts-sim fidelity`` JSON
files) with both: Spearman, mean absolute error, predicted best in the measured top 3.

    python benchmarks/fusion_find.py add-words docs/fidelity/seed2/fidelity_add-words.json \\
        docs/fidelity/seed1-all/fidelity_add-words.json docs/fidelity/fidelity_add-words.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_ablation import ablation_inputs, print_cross_validated, print_repredictions  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel  # noqa: E402

BINS = ((0, 0.001), (0.001, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01))
MODELS = {"without find": F.FIND_OFF, "with find": ()}  # label -> coefficients held at the prior


def main() -> None:
    ab = ablation_inputs("fusion_find", __doc__.splitlines()[0])
    rec, tp = ab.rec, ab.task_profile
    fits = {label: F.fit_fusion(rec, ab.skills, hold=hold) for label, hold in MODELS.items()}
    print(f"{ab.profile}: {len(rec.output)} fusion records")
    print("with find: " + ", ".join(f"{r}.{c}={fits['with find'].coef[f'{r}.{c}']:.2f}"
                                    for r in F.ROLES for c in ("find", "solve", "tau")))
    print_cross_validated(rec, ab.skills, MODELS, ab.args.folds)
    y, no_correct = rec.output == 0, rec.counts[:, 0] == 0
    own = np.array([row[0] / max(sum(row), 1) for row in (tp.answer_banks[r.model][r.question]
                                                          for r in tp.fusion_records)])
    p0 = {label: F.p_correct(params, rec) for label, params in fits.items()}
    print("records without a correct input, by the node's own bank accuracy on the question "
          f"(observed / {' / '.join(MODELS)}):")
    for lo, hi in BINS:
        s = no_correct & (own >= lo) & (own < hi)
        if s.any():
            print(f"  [{lo}, {min(hi, 1)}): {s.sum():4d} records  {y[s].mean():.3f} / "
                  + " / ".join(f"{p[s].mean():.3f}" for p in p0.values()))
    models = {label: QualityModel(ab.spec, ab.answers, params) for label, params in fits.items()}
    print_repredictions(ab.args.reports, ab.reports, models)

if __name__ == "__main__":
    main()
