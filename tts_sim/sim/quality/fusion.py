"""The fusion model of a node with predecessors, and its maximum-likelihood fit.

A node of model ``m`` and role ``r`` sees its predecessors' answer ids (``n_a`` of them gave answer
``a``) in a prompt of ``T`` tokens. It weighs every candidate answer ``a`` of the question by

    logit(a) = tau * log own~(a) + lam * (beta * n_a / d**alpha + rho * [a is correct and some input holds it]
                                          + (find + solve * log own~(a)) * [a is correct and no input holds it])
    P(out = a) = pick * n_a / d + (1 - pick) * softmax(logit)(a)

* ``own~ = lam * own + (1 - lam) * guess`` is the model's own answer distribution degraded by the
  context: with weight ``1 - lam`` it answers as if it had not understood the question (the task's
  chance level ``c`` on the correct answer; the rest spread evenly over the options for multiple
  choice, like its own wrong answers for open answers), so a long context moves a model toward
  chance / its own prior, never below chance (multiple choice: 1/4 on each option).
  ``tau`` is how decisive its own judgement is when it compares answers (> 1: sharper than when it
  answers alone, i.e. checking is easier than solving).
* ``lam = exp(-gamma * max(0, T - A) / 1000)`` is how well it still reads a long context
  (A: question tokens; the predecessors' answers add B tokens each). ``gamma`` is fitted only from
  records with long contexts (at least ``MIN_LONG_RECORDS`` records with ``T - A >=
  LONG_CONTEXT_TOKENS``), never extrapolated from short ones; without them it stays at the
  documented prior ``PRIOR`` (see there).
* ``beta >= 0`` (clipped at 0: agreeing inputs never repel) is how strongly each agreeing input pulls
  it (adopting the inputs' majority: a plurality of ``n`` inputs outweighs a runner-up by
  ``exp(lam * beta * difference)``), ``rho`` how well it recognises
  a correct answer held by a minority. Because the pull multiplies its own belief, a wrong answer it
  finds plausible (a popular wrong answer it would give itself) is kept far more readily than an
  idiosyncratic one: chains of refiners fix rare slips early and then drift to popular wrong answers.
* ``alpha >= 0`` (``dilution``; one coefficient for all roles and models) is how much each input's pull
  weakens when there are ``d`` of them: 0 counts votes (six agreeing inputs of six pull six times as
  hard as one), 1 weighs the agreeing fraction. Measured on both word-arithmetic profiles, 5-fold
  cross-validated, alpha was ~0.5 before the pick term below (with it the fitted alpha is 0 on both:
  the random copy flattens the response instead) (``benchmarks/fusion_calibration.py``): small models follow a
  majority among many inputs less than a vote count says, which matters most for graphs wider than
  the records (in-degree 5-6 from records of 1-4). **Beyond the widest in-degree ``D`` of the fitted
  records** (``FusionParams.widest``) the growth is not extrapolated: ``d > D`` inputs pull each with
  ``D**(1 - alpha) / d``, so unanimous inputs pull as hard as ``D`` of them. Measured node by node on a
  held-out mul-words set (``benchmarks/fidelity_nodes.py``), nodes with 5-6 inputs, most of them
  correct, were right 0.40 of the time where the extrapolated ``d**-alpha`` said 0.67 (0.62 with the
  limit: the records' range bounds the error, it does not remove it).
* ``find + solve * log own~(correct)`` is how a node finds the correct answer *itself* when none of its
  inputs holds it: the more often it solves the question alone, the more often (``solve > 0``). ``tau``
  cannot carry this: it weighs the node's own belief in every answer alike, and small models' own
  distribution over *wrong* answers predicts little of what they write when they do not follow their
  inputs (11-12% of measured fusion outputs are answers no sample of theirs gave), so on the measured
  profiles the fitted ``tau`` sits at its lower bound and flattens the node's knowledge of the correct
  answer with it. Measured (``benchmarks/fusion_find.py``, records without a correct input): add-words
  nodes give the correct answer 0.04 of the time on questions they never solve alone and 0.17 on those
  they solve 60%+ of the time; without the term the model says 0.06-0.08 throughout. Where an input
  holds the correct answer the node's own accuracy makes no such difference, so the term stays off.
  It is scaled by ``lam``: a node that no longer reads its context finds nothing.
* ``pick`` (0..0.95, per role) is the chance that the node copies one of its inputs taken at random,
  whatever the others say, instead of weighing them. The softmax alone responds to the share of correct
  inputs like a vote (steeply: a correct majority nearly always wins); small models respond far more
  linearly. Measured on the held-out set-4 graphs' own nodes (``benchmarks/fusion_nodes_fit.py``: the
  journals' source nodes are the answer bank, every fusing node a record), assistants with 3-4 inputs,
  all correct, are right 0.69 (mul-words) / 0.50 (add-words) of the time where the softmax fitted on
  the profiles says 0.83 / 0.84, and with a correct minority 0.31 / 0.26 where it says 0.27 / 0.20.
  With ``pick`` fitted on the same profile records, the held-out nodes' negative log-likelihood per
  node falls from 1.799 to 1.772 (mul-words) and 1.946 to 1.912 (add-words), and those cells come
  within a few points. ``pick = 0`` is the model without the term.
* For an assistant refining a single input, ``1 - P(out = correct | input correct)`` is the chance
  it overwrites a correct input (so deep chains can hurt); ``FusionParams.table`` shows it per model.

Parameters are functions of the role and of the model's skill ``s`` (logit of its accuracy on the task),
so models without records still get values: ``beta = b0_r + b1_r s``, ``rho = r0_r + r1_r s``, ``gamma =
exp(g0 + g1 s)``, ``tau = t_r``, ``find = f_r``, ``solve = v_r``, ``pick = p_r``. Roles: ``refine`` (assistant with one
predecessor), ``assistant`` (two or more), ``fuser``. The log-likelihood of observed fusion records is
maximised with L-BFGS-B (analytic gradient); the covariance of the fitted coefficients (standard errors, and
the whitening of the likelihood draws of ``tts_sim.sim.quality.posterior``) is the inverse observed information. A
role with fewer than ``MIN_ROLE_RECORDS`` records (or a skill slope seen with one model only;
find/solve: records without a correct input) is not fitted: it keeps ``PRIOR`` and ``fit_plan`` names
what is missing, for a one-line warning. The own distributions are plug-in estimates from the answer
banks: with few samples per question (<= ~16) their noise biases the fit (``tau`` shrinks, ``rho``
grows), so profile with many samples where it matters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize

from tts_sim.cache import cache_root
from tts_sim.core.profile import FusionRecord
from tts_sim.errors import ConfigError, ProfileError, TtsSimError
from tts_sim.jsonio import loads
from tts_sim.sim.quality.answers import AnswerTables
from tts_sim.tasks import TaskSpec

ROLES = ("refine", "assistant", "fuser")
REFINE, ASSISTANT, FUSER = range(3)
PER_ROLE = ("tau", "beta0", "beta1", "rho0", "rho1", "find", "solve", "pick")
FIND, SOLVE, PICK = PER_ROLE.index("find"), PER_ROLE.index("solve"), PER_ROLE.index("pick")
NP = len(PER_ROLE)
COEF_NAMES = tuple(f"{r}.{p}" for r in ROLES for p in PER_ROLE) + ("dilution", "gamma0", "gamma1")
DILUTION = COEF_NAMES.index("dilution")
TOKENS_SCALE = 1000.0
LAM_FLOOR = 1e-9  # the likelihood's lower bound on lam (a model never forgets the question entirely)


def role_index(role: str, in_degree: int) -> int:
    """Parameter role of a node: a fuser, an assistant refining one input, or one fusing several."""
    if role == "fuser":
        return FUSER
    if role == "assistant":
        return REFINE if in_degree == 1 else ASSISTANT
    raise ProfileError(f"unknown role {role!r} in a fusion record (expected assistant or fuser)")


@dataclass(frozen=True)
class FusionParams:
    """Fitted (or true) fusion coefficients, see the module docstring."""

    coef: Mapping[str, float]
    log_likelihood: float | None = None
    n_records: int = 0
    skills: Mapping[str, float] = field(default_factory=dict)  # model -> skill, for the readable table
    stderr: Mapping[str, float] = field(default_factory=dict)  # asymptotic standard errors (fitted coefficients)
    overwrite: Mapping[str, float] = field(default_factory=dict)  # model -> P(refiner drops a correct input)
    #: covariance of the fitted coefficients (those in ``stderr``, in ``COEF_NAMES`` order); () if none
    covariance: tuple[tuple[float, ...], ...] = ()
    #: the widest in-degree among the fitted records: beyond it the pull is not extrapolated (see
    #: ``input_weight``); None: no limit (coefficients set by hand, e.g. a scenario's true fusion)
    widest: int | None = None

    def __post_init__(self) -> None:
        missing = [n for n in COEF_NAMES if n not in self.coef]
        if missing:
            raise ProfileError(f"fusion parameters lack {', '.join(missing)}")

    @classmethod
    def from_vector(cls, x: Sequence[float] | np.ndarray, **kw: object) -> FusionParams:
        return cls(dict(zip(COEF_NAMES, (float(v) for v in x), strict=True)), **kw)  # type: ignore[arg-type]

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.coef[n] for n in COEF_NAMES])

    def _role_coef(self) -> np.ndarray:
        return self.vector[: NP * len(ROLES)].reshape(len(ROLES), NP)

    def tau(self, role: int | np.ndarray) -> np.ndarray:
        return self._role_coef()[role, 0]

    def beta(self, role: int | np.ndarray, skill: float | np.ndarray) -> np.ndarray:
        b = self._role_coef()
        return np.maximum(b[role, 1] + b[role, 2] * skill, 0.0)

    def rho(self, role: int | np.ndarray, skill: float | np.ndarray) -> np.ndarray:
        b = self._role_coef()
        return b[role, 3] + b[role, 4] * skill

    def find(self, role: int | np.ndarray) -> np.ndarray:
        return self._role_coef()[role, FIND]

    def solve(self, role: int | np.ndarray) -> np.ndarray:
        return self._role_coef()[role, SOLVE]

    def pick(self, role: int | np.ndarray) -> np.ndarray:
        return self._role_coef()[role, PICK]

    def gamma(self, skill: float | np.ndarray) -> np.ndarray:
        return np.exp(self.coef["gamma0"] + self.coef["gamma1"] * np.asarray(skill, dtype=float))

    def input_weight(self, in_degree: float | np.ndarray) -> np.ndarray:
        """The weight of each agreeing input's pull at in-degree ``d``: ``d**-alpha`` up to ``widest``
        (``D``), ``D**(1 - alpha) / d`` beyond it: the pull of ``d > D`` unanimous inputs is that of ``D``,
        shared among them (the records say how the pull grows up to ``D``, nothing about beyond)."""
        return input_weight(np.asarray(in_degree, dtype=float), self.coef["dilution"], self.widest)

    def rows(self) -> list[dict[str, float | str]]:
        """One row per (model, role): tau, beta, rho, find, solve, pick, gamma, and for refiners the chance of
        overwriting a correct input (when a ``QualityModel`` computed it from the answer tables)."""
        out: list[dict[str, float | str]] = []
        for model, s in sorted(self.skills.items(), key=lambda kv: kv[1]):
            for r, name in enumerate(ROLES):
                over = self.overwrite.get(model, float("nan")) if r == REFINE else float("nan")
                out.append({"model": model, "role": name, "skill": s, "tau": float(self.tau(r)),
                            "beta": float(self.beta(r, s)), "rho": float(self.rho(r, s)),
                            "find": float(self.find(r)), "solve": float(self.solve(r)), "pick": float(self.pick(r)),
                            "gamma": float(self.gamma(s)), "overwrite_correct": over})
        return out

    def table(self) -> str:
        """A readable table of ``rows``, the raw coefficients (± standard errors) and the log-likelihood."""
        head = (f"{'model':<14} {'role':<9} {'skill':>6} {'tau':>5} {'beta':>6} {'rho':>6} {'find':>6} "
                f"{'solve':>5} {'pick':>5} {'gamma/1k':>8} {'overwrite':>9}")
        lines = [head, "-" * len(head)]
        for r in self.rows():
            ow = "" if np.isnan(r["overwrite_correct"]) else f"{r['overwrite_correct']:.3f}"
            lines.append(f"{r['model']:<14} {r['role']:<9} {r['skill']:>6.2f} {r['tau']:>5.2f} {r['beta']:>6.2f} "
                         f"{r['rho']:>6.2f} {r['find']:>6.2f} {r['solve']:>5.2f} {r['pick']:>5.2f} "
                         f"{r['gamma']:>8.3f} {ow:>9}")
        lines.append(f"dilution: each input's pull x d^-{self.coef['dilution']:.2f} at in-degree d"
                     + ("" if self.widest is None else
                        f" up to {self.widest} (the widest fitted); beyond, the pull of {self.widest} shared by d"))
        lines.append("coefficients: " + ", ".join(
            f"{n}={v:.3f}" + (f"±{self.stderr[n]:.3f}" if n in self.stderr else "") for n, v in self.coef.items()))
        if self.log_likelihood is not None:
            lines.append(f"log-likelihood {self.log_likelihood:.1f} over {self.n_records} fusion records")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def input_weight(d: np.ndarray, alpha: float, widest: int | None) -> np.ndarray:
    """Each agreeing input's weight at in-degree ``d``: ``d**-alpha`` up to ``widest`` (``D``), beyond it
    ``D**(1 - alpha) / d`` = ``min(d, D)**-alpha * min(d, D) / d`` (None: no limit)."""
    if widest is None:
        return d ** -alpha
    capped = np.minimum(d, float(widest))
    return capped ** -alpha * capped / np.maximum(d, 1.0)


def degradation(gamma: np.ndarray, excess_tokens: np.ndarray) -> np.ndarray:
    """lam: the fraction of its reading ability a model keeps with ``excess_tokens`` of extra context."""
    return np.exp(-gamma * np.maximum(excess_tokens, 0.0) / TOKENS_SCALE)


def chance_probs(probs: np.ndarray, valid: np.ndarray, chance: float, uniform: bool) -> np.ndarray:
    """What a model that no longer reads its context answers: ``chance`` on the correct id and the
    rest over the wrong ids, evenly over the question's valid ones if ``uniform`` (multiple choice:
    a random option), else like the model's own wrong answers (open answers: its own prior).
    ``probs`` (..., K) the model's own distribution, ``valid`` (..., K) bool; a row without a wrong
    id to go to keeps everything on the correct one."""
    shape = np.broadcast_shapes(probs.shape, valid.shape)
    wrong = np.broadcast_to((valid if uniform else probs)[..., 1:], (*shape[:-1], shape[-1] - 1)).astype(float)
    total = wrong.sum(axis=-1, keepdims=True)
    c = np.where(total > 0, chance, 1.0)
    return np.concatenate([c, (1 - c) * wrong / np.where(total > 0, total, 1.0)], axis=-1)


def degraded_probs(probs: np.ndarray, lam: float | np.ndarray, base: np.ndarray) -> np.ndarray:
    """own~ = lam * own + (1 - lam) * base (``base`` = ``chance_probs``); ``lam`` a scalar or shaped
    like ``probs[..., 0]``."""
    lam = np.asarray(lam, dtype=float)[..., None]
    return lam * probs + (1 - lam) * base


def degraded_log_own(probs: np.ndarray, lam: float | np.ndarray, base: np.ndarray) -> np.ndarray:
    """log own~ (-inf on ids neither the model nor a guess can give)."""
    with np.errstate(divide="ignore"):
        return np.log(degraded_probs(probs, lam, base))


def fusion_logits(log_own: np.ndarray, counts: np.ndarray, pull: np.ndarray, bonus: np.ndarray,
                  find: np.ndarray | None = None) -> np.ndarray:
    """logit(a) = log_own(a) + pull * n_a + [a == 0] * (bonus if n_0 > 0 else find) (``log_own`` already
    times tau; ``pull`` = lam*beta*d**-alpha, ``bonus`` = lam*rho, ``find`` = lam*(find + solve*log own~(0))
    broadcast over the leading axes of ``counts`` (..., K); no ``find``: 0)."""
    logits = log_own + pull[..., None] * counts
    logits[..., 0] += np.where(counts[..., 0] > 0, bonus, 0.0 if find is None else find)
    return logits


@dataclass(frozen=True)
class RecordArrays:
    """Fusion records as arrays, ready for the likelihood."""

    role: np.ndarray  # (R,) role index
    skill: np.ndarray  # (R,) skill of the record's model
    probs: np.ndarray  # (R, K) the model's own answer distribution on the record's question
    counts: np.ndarray  # (R, K) input answer counts
    output: np.ndarray  # (R,) output answer id
    excess: np.ndarray  # (R,) context tokens beyond the question
    base: np.ndarray  # (R, K) the record's model's guess on its question (``chance_probs``)

    @functools.cached_property
    def degree(self) -> np.ndarray:
        """(R,) in-degree: the number of inputs."""
        return np.maximum(self.counts.sum(axis=1), 1.0)

    @property
    def widest(self) -> int | None:
        """The largest in-degree among the records (None: no records)."""
        return int(self.degree.max()) if len(self.degree) else None

    @functools.cached_property
    def diff(self) -> np.ndarray:
        """own - guess (zero outside the support): own~ = guess + lam * diff."""
        return self.probs - self.base

    @functools.cached_property
    def support(self) -> np.ndarray:
        """(R, K) ids the degraded distribution can give (own > 0 or guess > 0)."""
        return (self.probs > 0) | (self.base > 0)

    @functools.cached_property
    def outside(self) -> np.ndarray:
        """0 on the support, -inf outside: added to logits."""
        return np.where(self.support, 0.0, -np.inf)


def record_logits(x: np.ndarray, rec: RecordArrays, widest: int | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each record's fusion logits (R, K) at the coefficient vector ``x`` (the pull limited beyond
    ``widest`` inputs, see ``input_weight``; a fit's own records never exceed it), and the per-record
    terms the gradient needs."""
    n_roles = len(ROLES)
    b = x[: NP * n_roles].reshape(n_roles, NP)
    s, r = rec.skill, rec.role
    beta_raw = b[r, 1] + b[r, 2] * s
    terms = {"tau": b[r, 0], "beta_raw": beta_raw, "beta": np.maximum(beta_raw, 0.0),  # agreeing never repels
             "rho": b[r, 3] + b[r, 4] * s, "gamma": np.exp(x[-2] + x[-1] * s),
             "xt": np.maximum(rec.excess, 0.0) / TOKENS_SCALE,
             "log_d": np.log(rec.degree if widest is None else np.minimum(rec.degree, float(widest))),
             "has0": (rec.counts[:, 0] > 0).astype(float), "find": b[r, FIND], "solve": b[r, SOLVE]}
    terms["weight"] = input_weight(rec.degree, x[DILUTION], widest)  # d**-alpha (d/d alpha: -log_d * weight)
    terms["pick"] = b[r, PICK]
    raw = degradation(terms["gamma"], rec.excess)
    terms["lam"] = lam = np.maximum(raw, LAM_FLOOR)
    terms["lam_free"] = (raw > LAM_FLOOR).astype(float)  # d lam / d gamma is 0 where the floor holds
    terms["own1"] = own1 = np.where(rec.support, rec.base + lam[:, None] * rec.diff, 1.0)  # own~, 1 outside
    terms["log_own0"] = np.log(own1)  # 0 outside the support
    terms["found"] = terms["find"] + terms["solve"] * terms["log_own0"][:, 0]  # before lam
    logits = fusion_logits(terms["tau"][:, None] * terms["log_own0"] + rec.outside, rec.counts,
                           lam * terms["beta"] * terms["weight"], lam * terms["rho"], lam * terms["found"])
    return logits, terms


def p_correct(params: FusionParams, rec: RecordArrays) -> np.ndarray:
    """The model's probability that each record's output is the correct answer (id 0)."""
    logits, t = record_logits(params.vector, rec, params.widest)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return t["pick"] * rec.counts[:, 0] / rec.degree + (1 - t["pick"]) * (e / e.sum(axis=1, keepdims=True))[:, 0]


def negative_log_likelihood(x: np.ndarray, rec: RecordArrays, widest: int | None = None
                            ) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the records and its gradient in the coefficient vector ``x``."""
    n_roles = len(ROLES)
    logits, t = record_logits(x, rec, widest)
    s, r, lam, w = rec.skill, rec.role, t["lam"], t["weight"]
    top = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - top)
    z = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(r))
    log_soft = logits[rows, rec.output] - (top + np.log(z))[:, 0]  # log softmax(logit)(y)
    # the pick mixture, in log space: P(y) = pick * n_y / d + (1 - pick) * softmax(y)
    pick = t["pick"]
    share = rec.counts[rows, rec.output] / rec.degree
    with np.errstate(divide="ignore"):
        ll = np.logaddexp(np.log(pick * share), np.log1p(-pick) + log_soft)
    soft_part = np.exp(np.log1p(-pick) + log_soft - ll)  # the softmax's share of P(y): scales its gradient
    d_pick = share * np.exp(np.minimum(-ll, 700.0)) - np.exp(log_soft - ll)
    # gradient: d ll / d logit_k = soft_part * ([k == y] - softmax_k)
    resid = -e / z
    resid[rows, rec.output] += 1
    resid *= soft_part[:, None]
    pulled = (resid * rec.counts).sum(axis=1)  # d ll / d (pull per agreeing input)
    d_tau = (resid * t["log_own0"]).sum(axis=1)
    d_beta = lam * w * pulled * (t["beta_raw"] > 0)
    d_rho = lam * t["has0"] * resid[:, 0]
    d_find = lam * (1 - t["has0"]) * resid[:, 0]
    d_dilution = -lam * t["beta"] * w * t["log_d"] * pulled
    dlog_own = rec.diff / t["own1"]  # d log own~ / d lam (diff is 0 outside the support)
    d_lam = ((resid * t["tau"][:, None] * dlog_own).sum(axis=1) + t["beta"] * w * pulled
             + resid[:, 0] * t["rho"] * t["has0"]
             + (1 - t["has0"]) * resid[:, 0] * (t["found"] + lam * t["solve"] * dlog_own[:, 0]))
    d_gamma_lin = d_lam * (-lam * t["gamma"] * t["xt"]) * t["lam_free"]  # d ll / d (g0 + g1 s)
    grad = np.zeros_like(x)
    for k in range(n_roles):
        m = r == k
        grad[NP * k: NP * (k + 1)] = [d_tau[m].sum(), d_beta[m].sum(), (d_beta[m] * s[m]).sum(), d_rho[m].sum(),
                                     (d_rho[m] * s[m]).sum(), d_find[m].sum(),
                                     (d_find[m] * t["log_own0"][m, 0]).sum(), d_pick[m].sum()]
    grad[DILUTION] = d_dilution.sum()
    grad[-2] = d_gamma_lin.sum()
    grad[-1] = (d_gamma_lin * s).sum()
    return -float(ll.sum()), -grad


#: The documented prior: where the optimiser starts, and what every coefficient the records cannot
#: inform keeps (a role with too few records, a skill slope seen with one model, the degradation
#: without long-context records). Assumptions, not measurements: a mild pull towards agreeing inputs
#: (beta 1: two agreeing inputs outweigh a lone dissenter by e^1), some recognition of a correct input
#: (rho 0.5), the model's own judgement unchanged (tau 1), no finding of the correct answer beyond that
#: judgement (find 0, solve 0: the model before the term existed), every node weighing its inputs (pick 0:
#: the model before that term existed); and reading: a model of accuracy 0.5 keeps
#: half of its ability after 8,000 extra context tokens (gamma = ln 2 / 8 per 1,000 tokens), a model
#: one logit weaker degrades e^0.5 times faster; every input pulls alike however many there are
#: (dilution 0).
PRIOR = FusionParams({**{f"{r}.{p}": v for r in ROLES for p, v in
                         (("tau", 1.0), ("beta0", 1.0), ("beta1", 0.0), ("rho0", 0.5), ("rho1", 0.0),
                          ("find", 0.0), ("solve", 0.0), ("pick", 0.0))},
                      "dilution": 0.0, "gamma0": float(np.log(np.log(2) / 8)), "gamma1": -0.5})
START = PRIOR  # the name the optimiser's starting point had before the prior was documented
ROLE_BOUNDS = [(0.05, 10.0), (-5.0, 10.0), (-5.0, 5.0), (-5.0, 10.0), (-5.0, 5.0), (-10.0, 10.0), (-5.0, 10.0),
               (0.0, 0.95)]
BOUNDS = ROLE_BOUNDS * len(ROLES) + [(0.0, 3.0), (-8.0, 3.0), (-4.0, 4.0)]
#: The find term switched off in every role (``PRIOR``'s values): what a coefficient table written before
#: the term existed (the synthetic scenario's true fusion) means.
FIND_OFF = {n: PRIOR.coef[n] for n in COEF_NAMES if n.endswith((".find", ".solve"))}
#: The pick term switched off in every role (``PRIOR``'s 0: a node always weighs its inputs).
PICK_OFF = {n: PRIOR.coef[n] for n in COEF_NAMES if n.endswith(".pick")}
INFORMATION_FLOOR = 1e-6  # relative eigenvalue below which a direction counts as uninformed (``_covariance``)
PICK_START = 0.2  # where the fit's second stage starts pick (inside its range: at 0 its gradient can vanish)
MIN_ROLE_RECORDS = 30  # records a role needs before its coefficients are fitted
LONG_CONTEXT_TOKENS = 4000  # context tokens beyond the question that count as a long context
MIN_LONG_RECORDS = 50  # long-context records the degradation needs before it is fitted
ROLE_LABELS = {"refine": "assistant with 1 input", "assistant": "assistant with 2+ inputs", "fuser": "fuser"}


def fit_plan(rec: RecordArrays) -> tuple[np.ndarray, list[str]]:
    """Which coefficients the records can inform (bool mask over ``COEF_NAMES``) and, for the
    others, what is missing (short phrases for a one-line warning)."""
    free = np.ones(len(COEF_NAMES), dtype=bool)
    gaps: list[str] = []
    for k, name in enumerate(ROLES):
        m = rec.role == k
        if m.sum() < MIN_ROLE_RECORDS:
            free[NP * k: NP * (k + 1)] = False
            gaps.append(f"{ROLE_LABELS[name]}: {int(m.sum())} fusion records (need {MIN_ROLE_RECORDS})")
            continue
        if np.ptp(rec.skill[m]) < 1e-6:
            free[NP * k + 2] = free[NP * k + 4] = False
            gaps.append(f"{ROLE_LABELS[name]}: records of one model only (no skill slope)")
        lost = m & (rec.counts[:, 0] == 0)
        if lost.sum() < MIN_ROLE_RECORDS:
            free[NP * k + FIND] = free[NP * k + SOLVE] = False
            gaps.append(f"{ROLE_LABELS[name]}: {int(lost.sum())} fusion records without a correct input "
                        f"(need {MIN_ROLE_RECORDS} to fit find/solve)")
    multi = rec.degree >= 2
    if multi.sum() < MIN_ROLE_RECORDS or len(np.unique(rec.degree[multi])) < 2:
        free[DILUTION] = False
        gaps.append(f"dilution: {int(multi.sum())} records with 2+ inputs over "
                    f"{len(np.unique(rec.degree[multi]))} in-degree(s) (need {MIN_ROLE_RECORDS} over 2+)")
    long = rec.excess >= LONG_CONTEXT_TOKENS
    if long.sum() < MIN_LONG_RECORDS:
        free[-2:] = False
        longest = int(rec.excess.max()) if len(rec.excess) else 0
        gaps.append(f"long contexts: {int(long.sum())} records with >= {LONG_CONTEXT_TOKENS} extra context tokens "
                    f"(need {MIN_LONG_RECORDS}; longest {longest})")
    elif np.ptp(rec.skill[long]) < 1e-6:
        free[-1] = False
        gaps.append("long contexts: records of one model only (no skill slope of the degradation)")
    return free, gaps


def fit_fusion(rec: RecordArrays, skills: Mapping[str, float] | None = None, *,
               hold: Collection[str] = ()) -> FusionParams:
    """Maximum-likelihood coefficients with their covariance. Coefficients no record informs (see
    ``fit_plan``) stay at ``PRIOR``: they are fixed, not fitted, and carry no covariance; so do those
    named in ``hold`` (an ablation: ``hold=FIND_OFF`` fits the model without the find term) and those
    the fit leaves on a bound."""
    unknown = sorted(set(hold) - set(COEF_NAMES))
    if unknown:
        raise ConfigError(f"no fusion coefficient(s) {', '.join(unknown)} to hold (they are: {', '.join(COEF_NAMES)})")
    x0 = PRIOR.vector.copy()
    free, _ = fit_plan(rec)
    free &= ~np.isin(np.array(COEF_NAMES), list(hold))
    if len(rec.role) == 0 or not free.any():
        return FusionParams.from_vector(x0, log_likelihood=0.0, n_records=len(rec.role), skills=dict(skills or {}),
                                        widest=rec.widest)

    def objective(z: np.ndarray, free: np.ndarray = free) -> tuple[float, np.ndarray]:
        x = x0.copy()
        x[free] = z
        f, g = negative_log_likelihood(x, rec)
        return f, g[free]

    # two stages: the model without pick (every node weighs its inputs) first, then pick freed from
    # PICK_START: started at the prior, the pick and the pull trade off into a worse optimum (measured on
    # both word-arithmetic profiles: the pull's dilution and beta end on their bound 0). Where no pick
    # would raise the likelihood at the first stage's optimum (the gradient points out of [0, 0.95]),
    # that optimum already satisfies the full problem's optimality conditions: the picks stay at 0.
    picks = np.array([n.endswith(".pick") for n in COEF_NAMES])
    if (free & picks).any() and (free & ~picks).any():
        first = free & ~picks
        res = optimize.minimize(lambda z: objective(z, first), x0[first], jac=True, method="L-BFGS-B",
                                bounds=[bd for bd, f in zip(BOUNDS, first, strict=True) if f])
        x0[first] = res.x
        if (negative_log_likelihood(x0, rec)[1][free & picks] >= 0).all():
            free &= ~picks
        else:
            x0[free & picks] = PICK_START
    bounds = [bd for bd, f in zip(BOUNDS, free, strict=True) if f]
    res = optimize.minimize(objective, x0[free], jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-10, "maxiter": 5000})
    x = x0.copy()
    x[free] = res.x
    # a coefficient the fit leaves on a bound (e.g. pick = 0: no node copies at random) is known only as
    # that bound: it carries no standard error, and the others' covariance is conditional on it
    lo, hi = np.array(bounds).T
    inner = (res.x > lo + 1e-6) & (res.x < hi - 1e-6)
    free[free] = inner

    def inner_grad(z: np.ndarray) -> np.ndarray:
        y = x0.copy()
        y[free] = z
        return negative_log_likelihood(y, rec)[1][free]

    names = [n for n, f in zip(COEF_NAMES, free, strict=True) if f]
    cov = _covariance(inner_grad, x[free])
    diag = np.diag(cov)
    se = np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)
    return FusionParams.from_vector(x, log_likelihood=-float(res.fun), n_records=len(rec.role),
                                    skills=dict(skills or {}), stderr=dict(zip(names, se.tolist(), strict=True)),
                                    covariance=tuple(tuple(row) for row in cov.tolist()), widest=rec.widest)


def _covariance(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The inverse observed information (forward differences of the analytic gradient, symmetrised).
    Where the records do not inform a direction of the coefficients (an eigenvalue below
    ``INFORMATION_FLOOR`` x the largest: e.g. a role's ``beta`` clipped at 0 for one of its models, whose
    ``beta0`` and ``beta1`` then move the likelihood only through the other model) that direction gets
    no variance: the pseudo-inverse. All nan where the information has no positive curvature at all."""
    n = len(x)
    if n == 0:  # every fitted coefficient ended on a bound
        return np.zeros((0, 0))
    hess = np.empty((n, n))
    g0 = grad(x)
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        hess[i] = (grad(x + e) - g0) / h
    hess = (hess + hess.T) / 2
    vals, vecs = np.linalg.eigh(hess)
    if not np.isfinite(vals).all() or vals.max() <= 0:
        return np.full((n, n), np.nan)
    keep = vals > INFORMATION_FLOOR * vals.max()
    return (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T


def record_arrays(records: Sequence[FusionRecord], answers: AnswerTables, task: TaskSpec) -> RecordArrays:
    """Fusion records as arrays; the context length is the record's prompt tokens, or A + d*B if unknown."""
    k = answers.probs.shape[2]
    n = len(records)
    model = np.array([answers.index(r.model) for r in records], dtype=np.intp)
    question = np.array([r.question for r in records], dtype=np.intp)
    degree = np.array([len(r.inputs) for r in records])
    if n and degree.min() < 1:
        raise ProfileError("a fusion record has no inputs")
    counts = np.zeros((n, k))
    for i, r in enumerate(records):
        np.add.at(counts[i], list(r.inputs), 1)
    tokens = np.array([r.prompt_tokens if r.prompt_tokens > 0 else task.prompt_tokens + len(r.inputs)
                       * task.answer_tokens for r in records], dtype=float)
    probs = answers.probs[model, question] if n else np.zeros((0, k))
    return RecordArrays(
        role=np.array([role_index(r.role, len(r.inputs)) for r in records], dtype=np.intp),
        skill=answers.skill[model] if n else np.zeros(0),
        probs=probs,
        counts=counts,
        output=np.array([r.output for r in records], dtype=np.intp),
        excess=tokens - task.prompt_tokens,
        base=chance_probs(probs, answers.valid[question], task.chance, task.kind == "multiple-choice") if n
        else np.zeros((0, k)),
    )


def cached_fit(profile_checksum: str, task: str, fit: Callable[[], FusionParams]) -> FusionParams:
    """``fit()``, memoised on disk by (profile checksum, task, this module's code): the maximum-
    likelihood fit takes seconds and depends on nothing else. No caching without a checksum; an
    unreadable or unwritable cache just means fitting again."""
    if not profile_checksum:
        return fit()
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = cache_root() / "fits" / f"{profile_checksum.removeprefix('sha256:')[:24]}-{task}-{code}.json"
    try:
        data = loads(path.read_bytes(), "cached fit")
        return FusionParams(data["coef"], data["log_likelihood"], data["n_records"], data["skills"], data["stderr"],
                            covariance=tuple(tuple(float(v) for v in row) for row in data["covariance"]),
                            widest=None if data["widest"] is None else int(data["widest"]))
    except (OSError, ValueError, KeyError, TypeError, TtsSimError):
        pass
    params = fit()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"coef": dict(params.coef), "log_likelihood": params.log_likelihood,
                                   "n_records": params.n_records, "skills": dict(params.skills),
                                   "stderr": dict(params.stderr),
                                   "covariance": [list(row) for row in params.covariance],
                                   "widest": params.widest}))
        tmp.replace(path)
    except OSError:
        pass
    return params
