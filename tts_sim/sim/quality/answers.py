"""Per-(model, question) answer distributions estimated from a profile's answer banks.

A bank row counts how often a model gave each answer id to one question (id 0 = correct, ids >= 1 =
that question's distinct wrong answers). Few samples per question make raw frequencies noisy, so
both parts are smoothed by borrowing strength across models:

* **Correct answer.** A Rasch (logistic item-response) model ``pi(m, q) = c + (1 - c) * sigmoid(s_m - d_q)``
  (``c`` = the task's chance level) is fitted by penalised maximum likelihood over all models and
  questions; each cell's probability is the posterior mean under a Beta prior centred on ``pi(m, q)``
  whose strength ``kappa`` maximises the beta-binomial marginal likelihood.
* **Wrong answers.** The wrong mass ``1 - p0`` is split over wrong ids by the model's own wrong
  counts plus ``eta`` pseudo-samples distributed like the question's pooled (all-model) wrong
  counts (posterior mean under a Dirichlet prior); ``eta`` maximises the Dirichlet-multinomial
  marginal likelihood, so a model inherits its peers' popular wrong answers as far as the data say
  models agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from tts_sim.errors import ProfileError

DIFFICULTY_PRIOR_SD = 3.0  # sd of the Gaussian penalty on question difficulty and model skill (logit units)
POOL_FLOOR = 0.05  # pseudo-count given to every known wrong id of a question when pooling


@dataclass(frozen=True)
class AnswerTables:
    """Smoothed answer distributions: ``probs[m, q, k]`` = P(model m answers question q with id k)."""

    models: tuple[str, ...]
    probs: np.ndarray  # (M, Q, K), each (m, q) row sums to 1 over the question's valid ids
    valid: np.ndarray  # (Q, K) bool: ids that exist for the question (seen in a bank or a record)
    samples: np.ndarray  # (M,) total bank samples per model

    @property
    def n_questions(self) -> int:
        return self.probs.shape[1]

    @property
    def accuracy(self) -> np.ndarray:
        """(M,) mean probability of the correct answer over questions."""
        return self.probs[:, :, 0].mean(axis=1)

    @property
    def skill(self) -> np.ndarray:
        """(M,) logit of each model's accuracy: the covariate of the fusion parameters."""
        acc = np.clip(self.accuracy, 1e-3, 1 - 1e-3)
        return np.log(acc / (1 - acc))

    def index(self, model: str) -> int:
        return self.models.index(model)


def bank_counts(banks: Mapping[str, Sequence[Sequence[int]]], n_questions: int, min_ids: int = 2) -> np.ndarray:
    """Dense (M, Q, K) counts from ragged bank rows (models in ``banks`` order)."""
    k = max([min_ids] + [len(row) for rows in banks.values() for row in rows])
    counts = np.zeros((len(banks), n_questions, k))
    for i, rows in enumerate(banks.values()):
        for q, row in enumerate(rows):
            counts[i, q, : len(row)] = row
    return counts


def fit_rasch(correct: np.ndarray, total: np.ndarray, chance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Penalised MLE of skills (M,) and difficulties (Q,) from correct/total count matrices (M, Q)."""
    m, q = correct.shape
    wrong = total - correct
    c = chance

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s, d = theta[:m], theta[m:]
        z = s[:, None] - d[None, :]
        sig = special.expit(z)
        pi = np.clip(c + (1 - c) * sig, 1e-12, 1 - 1e-12)
        ll = correct * np.log(pi) + wrong * np.log1p(-pi)
        dpi = (1 - c) * sig * (1 - sig)
        g = (correct / pi - wrong / (1 - pi)) * dpi  # d ll / d z
        pen = (theta**2).sum() / (2 * DIFFICULTY_PRIOR_SD**2)
        grad = -np.concatenate([g.sum(axis=1), -g.sum(axis=0)]) + theta / DIFFICULTY_PRIOR_SD**2
        return float(-ll.sum() + pen), grad

    res = optimize.minimize(nll, np.zeros(m + q), jac=True, method="L-BFGS-B")
    return res.x[:m], res.x[m:]


def _beta_strength(correct: np.ndarray, total: np.ndarray, prior_mean: np.ndarray) -> float:
    """Prior strength kappa maximising the beta-binomial marginal likelihood (cells with samples only)."""
    has = total > 0
    k, n, mu = correct[has], total[has], np.clip(prior_mean[has], 1e-6, 1 - 1e-6)

    def nll(log_kappa: float) -> float:
        kappa = np.exp(log_kappa)
        a, b = kappa * mu, kappa * (1 - mu)
        return -float((special.betaln(k + a, n - k + b) - special.betaln(a, b)).sum())

    res = optimize.minimize_scalar(nll, bounds=(np.log(0.3), np.log(1e4)), method="bounded")
    return float(np.exp(res.x))


def _dirichlet_strength(counts: np.ndarray, pool: np.ndarray) -> float:
    """Strength eta of a Dirichlet(eta * pool) prior maximising the Dirichlet-multinomial marginal
    likelihood of the wrong-answer counts (M, Q, K-1); ``pool`` (Q, K-1) sums to 1 per question."""
    n = counts.sum(axis=2)
    has = n > 0
    if not has.any():
        return 1.0
    c, pi = counts[has], np.broadcast_to(pool[None], counts.shape)[has]
    pos = pi > 0

    def nll(log_eta: float) -> float:
        eta = np.exp(log_eta)
        a = eta * pi
        term = np.where(pos, special.gammaln(c + a) - special.gammaln(np.where(pos, a, 1.0)), 0.0).sum(axis=1)
        return -float((special.gammaln(eta) - special.gammaln(eta + n[has]) + term).sum())

    res = optimize.minimize_scalar(nll, bounds=(np.log(0.1), np.log(1e4)), method="bounded")
    return float(np.exp(res.x))


def smooth_answer_banks(banks: Mapping[str, Sequence[Sequence[int]]], n_questions: int, *,
                        chance: float = 0.0, extra_ids: np.ndarray | None = None, origin: str = "profile"
                        ) -> AnswerTables:
    """Smoothed per-(model, question) answer distributions (see the module docstring).

    ``extra_ids`` (Q, K') bool marks answer ids seen elsewhere (fusion records) that must exist.
    """
    if not banks:
        raise ProfileError(f"{origin}: no answer banks")
    counts = bank_counts(banks, n_questions)
    if extra_ids is not None and extra_ids.shape[1] > counts.shape[2]:
        counts = np.concatenate([counts, np.zeros((*counts.shape[:2], extra_ids.shape[1] - counts.shape[2]))], axis=2)
    n_models, _, k = counts.shape
    total = counts.sum(axis=2)
    if not (total > 0).any(axis=1).all():
        empty = [name for name, t in zip(banks, total, strict=True) if not (t > 0).any()]
        raise ProfileError(f"{origin}: model(s) {', '.join(empty)} have empty answer banks")
    correct = counts[:, :, 0]

    skill, difficulty = fit_rasch(correct, total, chance)
    prior = chance + (1 - chance) * special.expit(skill[:, None] - difficulty[None, :])
    kappa = _beta_strength(correct, total, prior)
    p0 = (correct + kappa * prior) / (total + kappa)

    valid = counts.sum(axis=0) > 0
    if extra_ids is not None:
        valid[:, : extra_ids.shape[1]] |= extra_ids
    valid[:, 0] = True
    no_wrong = ~valid[:, 1:].any(axis=1)
    valid[no_wrong, 1] = True  # a question nobody got wrong still has one (unseen) wrong answer
    wrong_counts = counts[:, :, 1:]
    pool = wrong_counts.sum(axis=0) + POOL_FLOOR * valid[:, 1:]
    pool = pool / pool.sum(axis=1, keepdims=True)
    eta = _dirichlet_strength(wrong_counts, pool)
    own = wrong_counts + eta * pool[None]
    own = own / own.sum(axis=2, keepdims=True)
    probs = np.concatenate([p0[:, :, None], (1 - p0)[:, :, None] * own], axis=2)
    return AnswerTables(tuple(banks), probs, valid, total.sum(axis=1))
