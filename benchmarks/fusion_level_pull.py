"""Would a pull that weakens (or grows) with a node's level describe deep fusion records better?

(``--term own``: the same for the node's own judgement, ``tau`` scaled by ``exp(kappa * (level - 1))``.)

On a profile whose records carry their levels (``tts-sim profile --deep-records``), each input's pull
is scaled by ``exp(-kappa * (level - 1))`` for ``kappa`` on a grid (every other coefficient refitted;
the gradient stays exact because the factor only rescales the pull's weight). Prints the 5-fold
cross-validated negative log-likelihood per ``kappa`` and the level-3 records' mean predicted
P(correct) against the observed rate. An experiment, not part of the model (kappa 0 is the model).

    python benchmarks/fusion_level_pull.py docs/fidelity/deep/measured-add-words.json.gz add-words
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import fit_inputs  # noqa: E402
from tts_sim.tasks import get_task  # noqa: E402

_record_logits = F.record_logits


TERM = {"name": "pull"}  # which term the level factor scales: the inputs' pull, or the node's own judgement


def _scaled_logits(x: np.ndarray, rec: F.RecordArrays) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    logits, t = _record_logits(x, rec)
    factor = getattr(rec, "level_factor", None)
    if factor is None:
        return logits, t
    if TERM["name"] == "own":  # tau * factor on log own~ (exact gradients while gamma is not fitted)
        t["log_own0"] = t["log_own0"] * factor[:, None]
    else:
        t["weight"] = t["weight"] * factor
    logits = F.fusion_logits(t["tau"][:, None] * t["log_own0"] + rec.outside, rec.counts,
                             t["lam"] * t["beta"] * t["weight"], t["lam"] * t["rho"], t["lam"] * t["found"])
    return logits, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="a profile whose fusion records carry levels")
    ap.add_argument("task")
    ap.add_argument("--kappas", default="-0.3,-0.15,0,0.15,0.3,0.5,0.8")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--term", choices=("pull", "own"), default="pull",
                    help="scale the inputs' pull by exp(-kappa (level - 1)), or the node's own judgement (tau) "
                         "by exp(kappa (level - 1))")
    args = ap.parse_args()
    TERM["name"] = args.term
    threadpool_limits(1)
    tp = load_profile(args.profile).task(args.task)
    recs = tp.fusion_records
    levels = np.array([r.level for r in recs], dtype=float)
    if not len(recs) or levels.min() < 1:
        print(f"error: {args.profile}: its {args.task} fusion records do not carry levels "
              "(profile with --deep-records)", file=sys.stderr)
        raise SystemExit(2)
    _, rec, skills = fit_inputs(tp, get_task(args.task), args.profile)
    F.record_logits = _scaled_logits  # the experiment's one change

    def part(kappa: float, mask: np.ndarray) -> F.RecordArrays:
        sub = subset(rec, mask)
        sign = 1.0 if args.term == "own" else -1.0
        object.__setattr__(sub, "level_factor", np.exp(sign * kappa * (levels[mask] - 1)))
        return sub

    fold = np.random.default_rng(0).integers(0, args.folds, len(recs))
    top = levels == levels.max()
    for kappa in (float(k) for k in args.kappas.split(",")):
        cv = sum(F.negative_log_likelihood(F.fit_fusion(part(kappa, fold != k), skills).vector,
                                           part(kappa, fold == k))[0] for k in range(args.folds))
        fitted = F.fit_fusion(part(kappa, np.ones(len(recs), dtype=bool)), skills)
        print(f"kappa {kappa:+.2f}: {args.folds}-fold CV negative log-likelihood {cv:8.1f}; level "
              f"{int(levels.max())}: P(correct) {F.p_correct(fitted, part(kappa, top)).mean():.3f} "
              f"(observed {(rec.output[top] == 0).mean():.3f})")


if __name__ == "__main__":
    main()
