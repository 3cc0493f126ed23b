"""What the fusion-term scripts share: their command line and inputs (a task's measured profile and
fidelity reports to re-predict), cross-validated likelihoods of fits with some coefficients held, and the
report's summary figures (``fusion_find.py``, ``fusion_pick.py``, ``fusion_lapse.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fusion_calibration import subset  # noqa: E402
from tts_sim.core.profile import TaskProfile  # noqa: E402
from tts_sim.errors import TtsSimError  # noqa: E402
from tts_sim.jsonio import read_json  # noqa: E402
from tts_sim.real.fidelity import FidelityReport  # noqa: E402
from tts_sim.real.fidelity.report import best_in_top  # noqa: E402
from tts_sim.sim.profiles import load_profile  # noqa: E402
from tts_sim.sim.quality import fusion as F  # noqa: E402
from tts_sim.sim.quality.answers import AnswerTables  # noqa: E402
from tts_sim.sim.quality.model import QualityModel, fit_inputs  # noqa: E402
from tts_sim.stats import spearman  # noqa: E402
from tts_sim.tasks import TaskSpec, get_task  # noqa: E402


@dataclass(frozen=True)
class Ablation:
    """An ablation script's arguments and inputs: the profile's name, the task, its profile data, the
    fusion fit's inputs (answer banks, records, skills) and the reports to re-predict."""

    args: argparse.Namespace
    profile: str
    spec: TaskSpec
    task_profile: TaskProfile
    answers: AnswerTables
    rec: F.RecordArrays
    skills: dict[str, float]
    reports: list[FidelityReport]


def ablation_inputs(prog: str, description: str, *, profile_option: bool = True,
                    extra: Callable[[argparse.ArgumentParser], object] | None = None) -> Ablation:
    """Parse the shared command line (``task``, ``reports``, ``--folds``, ``--profile`` unless
    ``profile_option`` is off, and what ``extra`` adds) and read the inputs; bad input exits 2 with a
    one-line error naming ``prog``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("task", help="a task with a packaged measured profile (add-words, mul-words)")
    ap.add_argument("reports", nargs="*", type=Path, help="fidelity JSON reports of that task to re-predict")
    if profile_option:
        ap.add_argument("--profile", help="default: measured:TASK")
    ap.add_argument("--folds", type=int, default=5)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    threadpool_limits(1)
    name = getattr(args, "profile", None) or f"measured:{args.task}"
    try:
        if args.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {args.folds}")
        profile = load_profile(name)
        spec = get_task(args.task)
        task_profile = profile.task(spec.name)
        reports = read_reports(args.reports, spec.name)
    except (TtsSimError, OSError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(2)
    answers, rec, skills = fit_inputs(task_profile, spec, name)
    return Ablation(args, name, spec, task_profile, answers, rec, skills, reports)


def print_cross_validated(rec: F.RecordArrays, skills: Mapping[str, float], models: Mapping[str, Collection[str]],
                          folds: int) -> None:
    """Each model's (label -> coefficients held) ``folds``-fold cross-validated negative log-likelihood."""
    for label, hold in models.items():
        print(f"{folds}-fold cross-validated negative log-likelihood, {label}: "
              f"{cross_validated_nll(rec, skills, hold, folds):.1f}")


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
