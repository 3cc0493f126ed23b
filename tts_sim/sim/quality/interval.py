"""Prediction intervals for a graph's accuracy that carry the fusion fit's uncertainty.

A measured accuracy on ``n`` questions differs from the prediction for two reasons: the run's own
noise (each question is right with probability ``p_q``: variance ``sum p_q (1 - p_q) / n^2``) and the
fit's (the fusion coefficients are estimates). The second is propagated by coefficient vectors drawn
from the fitted records' likelihood (``tts_sim.sim.quality.posterior``: Hamiltonian Monte Carlo, not
the asymptotic normal, which overstated it where coefficients trade off), the graph's expected
accuracy recomputed under each with common random numbers, the spread of those values added to the
run's noise. For a run on ``heldout`` new questions (not the profile's: a fidelity check), the run's
noise is that of ``heldout`` questions drawn from the population the profile's questions sample:
binomial at the mean accuracy, ``p(1 - p) / heldout``, plus the spread of the per-question probabilities
over the profile's ``Q`` questions, ``var(p_q) / Q`` (how well the profile pins the population mean).
Not included: the answer banks' own sampling noise (the smoothed per-question distributions are taken
as known) and any misfit of the model's form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tts_sim.core.graph import Graph
from tts_sim.errors import ConfigError
from tts_sim.sim.quality.fusion import FusionParams
from tts_sim.sim.quality.posterior import DRAWS

if TYPE_CHECKING:
    from tts_sim.sim.quality.model import QualityModel

DRAW_REPLICATES = 32  # replicates of ``expected`` per draw (common random numbers across draws)


@dataclass(frozen=True)
class PredictionInterval:
    """Where one evaluation's accuracy on ``n_questions`` is predicted to fall, with probability ``level``."""

    accuracy: float  # expected accuracy at the fitted coefficients
    low: float
    high: float
    level: float
    fit_sd: float  # sd of the expected accuracy over coefficient draws (nan: no coefficients to draw)
    sampling_sd: float  # sd of one run's accuracy given the per-question probabilities
    n_questions: int
    draws: int
    includes: str  # what the interval accounts for, in words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prediction_interval(qm: QualityModel, graph: Graph, questions: Sequence[int] | None = None, *,
                        level: float = 0.95, draws: int = DRAWS, replicates: int = DRAW_REPLICATES,
                        seed: int = 0, heldout: int | None = None) -> PredictionInterval:
    """The ``level`` prediction interval of one evaluation of ``graph`` on ``questions`` - or, with
    ``heldout``, on that many new questions (see the module docstring). Deterministic in ``seed``."""
    if heldout is not None and heldout < 1:
        raise ConfigError(f"heldout must be >= 1 questions, got {heldout}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    if draws < 2:
        raise ConfigError(f"draws must be >= 2, got {draws}")
    p = qm.expected(graph, questions)
    n = p.size
    centre = float(p.mean()) if n else 0.0
    if heldout is None:
        sampling_sd = float(np.sqrt((p * (1 - p)).sum()) / n) if n else 0.0
    else:
        spread = float(p.var(ddof=1)) / n if n > 1 else 0.0
        sampling_sd = float(np.sqrt(centre * (1 - centre) / heldout + spread))
    rng = np.random.default_rng(seed)
    fused = any(graph.predecessors(node) for node in graph.executed)
    x = qm.coefficient_draws(draws) if fused else None
    if not fused:
        deltas, fit_sd, includes = np.zeros(1), 0.0, "run noise only (no fusion node: the fit does not enter)"
    elif x is None:
        deltas, fit_sd = np.zeros(1), float("nan")
        includes = ("run noise only (no fitted fusion coefficients to draw: too few records, see the fit's "
                    "warning, or a model built without its records)")
    else:
        base = qm.expected(graph, questions, replicates=replicates).mean()
        drawn = [FusionParams.from_vector(v, skills=qm.params.skills, widest=qm.params.widest) for v in x]
        values = np.array([type(qm)(qm.task, qm.answers, params, label=qm.label, catalog=qm.catalog)
                           .expected(graph, questions, replicates=replicates).mean() for params in drawn])
        deltas = values - base  # common random numbers: the Monte Carlo noise of ``expected`` cancels
        fit_sd = float(values.std(ddof=1))
        includes = (f"fusion-fit coefficient uncertainty ({len(x)} draws from the records' likelihood) "
                    f"+ run noise of {n if heldout is None else f'{heldout} held-out'} questions")
    noise = rng.standard_normal((len(deltas), 512)) * sampling_sd
    sample = np.clip(centre + deltas[:, None] + noise, 0.0, 1.0).ravel()
    low, high = np.quantile(sample, [(1 - level) / 2, (1 + level) / 2])
    if heldout is not None and not fused:
        includes = f"run noise of {heldout} held-out questions only (no fusion node: the fit does not enter)"
    return PredictionInterval(centre, float(low), float(high), level, fit_sd, sampling_sd,
                              n if heldout is None else heldout, len(deltas), includes)
