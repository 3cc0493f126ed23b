"""What the fusion-term scripts share: fidelity reports to re-predict, cross-validated likelihoods of fits
with some coefficients held, and the report's summary figures (``fusion_find.py``, ``fusion_pick.py``,
``fusion_lapse.py``)."""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.jsonio import read_json  # noqa: E402
from tts_sim.real.fidelity import FidelityReport  # noqa: E402
from tts_sim.real.fidelity.report import best_in_top  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.model import QualityModel  # noqa: E402
from tts_sim.stats import spearman  # noqa: E402


def read_reports(paths: Sequence[Path], task: str) -> list[FidelityReport]:
    """The fidelity reports at ``paths``; ValueError (or a TtsSimError, OSError) naming a bad one."""
    reports = [FidelityReport.from_dict(read_json(path, "fidelity report"), f"fidelity report {path}")
               for path in paths]
    for path, report in zip(paths, reports, strict=True):
        if report.task != task:
            raise ValueError(f"{path}: a fidelity report of task {report.task!r}, not {task!r}")
    return reports


def summary(predicted: np.ndarray, measured: np.ndarray) -> str:
    """Spearman, MAE, mean error and best-in-top-3 as the fidelity report computes them."""
    return (f"Spearman {spearman(predicted.tolist(), measured.tolist()):+.2f}, "
            f"MAE {np.abs(predicted - measured).mean():.3f}, mean error {np.mean(predicted - measured):+.3f}, "
            f"best in top 3 {'yes' if best_in_top(predicted.tolist(), measured.tolist()) else 'no'}")


def fold_of(n_records: int, folds: int) -> np.ndarray:
    """Each record's fold (fixed: every script and model compared sees the same folds)."""
    return np.random.default_rng(0).integers(0, folds, n_records)


def cross_validated_nll(rec: F.RecordArrays, skills: Mapping[str, float], hold: Collection[str],
                        folds: int) -> float:
    """``folds``-fold cross-validated negative log-likelihood of ``fit_fusion(..., hold=hold)`` (fixed folds)."""
    fold = fold_of(len(rec.output), folds)
    return sum(F.negative_log_likelihood(F.fit_fusion(subset(rec, fold != k), skills, hold=hold).vector,
                                         subset(rec, fold == k))[0] for k in range(folds))


def print_repredictions(paths: Sequence[Path], reports: Sequence[FidelityReport],
                        models: Mapping[str, QualityModel]) -> None:
    """Each report's graphs predicted by each model (expected accuracy on the profile's questions)."""
    for path, report in zip(paths, reports, strict=True):
        measured = np.array([r.measured for r in report.rows])
        print(f"{path} ({len(report.rows)} graphs x {report.rows[0].n_questions} questions):")
        for label, qm in models.items():
            pred = np.array([qm.expected(r.graph).mean() for r in report.rows])
            print(f"  {label:<13} {summary(pred, measured)}")
