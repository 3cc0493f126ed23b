"""``QualityModel``: a graph's per-question correctness, replayed from a profile.

Source nodes (no predecessors) draw an answer id from their model's smoothed answer distribution on
the question (``answers``); nodes with predecessors draw from the fusion model (``fusion``) given
their inputs' ids. Everything is vectorised over questions x replicates: each node holds an int
array of answer ids, input agreement is counted with one-hot sums.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special
from threadpoolctl import threadpool_limits

from tts_sim.core.graph import Graph, Role
from tts_sim.core.identity import canonical_order, graph_key
from tts_sim.core.models import DEFAULT_CATALOG, ModelCatalog
from tts_sim.core.profile import Profile, TaskProfile
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.sim.quality.answers import AnswerTables, smooth_answer_banks
from tts_sim.sim.quality.fusion import (
    FusionParams,
    RecordArrays,
    cached_fit,
    chance_probs,
    degradation,
    degraded_log_own,
    fit_fusion,
    fit_plan,
    fusion_logits,
    record_arrays,
    role_index,
)
from tts_sim.sim.quality.interval import PredictionInterval, prediction_interval
from tts_sim.sim.quality.posterior import cached_likelihood_draws
from tts_sim.stats import wilson_interval
from tts_sim.tasks import TaskSpec, get_task

EXPECTED_REPLICATES = 256
EXPECTED_SEED = 20251100  # fixed: ``expected`` is deterministic and uses common random numbers across graphs
_CHUNK_CELLS = 2_000_000  # questions x replicates x answer ids per vectorised step (bounds memory)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccuracyEstimate:
    """Mean correctness over questions with its 95% Wilson interval."""

    accuracy: float
    ci_low: float
    ci_high: float
    n_questions: int


@dataclass(frozen=True)
class _NodePlan:
    id: str
    preds: tuple[int, ...]  # positions in the plan
    model: int
    log_own: np.ndarray | None  # (Q, K) degraded own log-probabilities (fusion nodes)
    pull: float  # lam * beta * d**-alpha: per agreeing input
    bonus: float  # lam * rho
    find: np.ndarray | None = None  # (Q,) lam * (find + solve * log own~(correct)): no input correct
    pick: float = 0.0  # the chance it copies an input taken at random instead of weighing them


#: Graphs whose execution plans a QualityModel keeps (least recently used dropped first).
PLAN_CACHE_SIZE = 256


def fit_inputs(tp: TaskProfile, spec: TaskSpec, origin: str = "profile"
               ) -> tuple[AnswerTables, RecordArrays, dict[str, float]]:
    """What the fusion fit reads from one task of a profile: the smoothed answer banks (every answer id a
    fusion record names exists), the records as arrays, and each model's skill."""
    recs = tp.fusion_records
    k_rec = max([0] + [max((*r.inputs, r.output)) + 1 for r in recs])
    extra = np.zeros((tp.n_questions, k_rec), dtype=bool)
    for r in recs:
        extra[r.question, [*r.inputs, r.output]] = True
    answers = smooth_answer_banks(tp.answer_banks, tp.n_questions, chance=spec.chance, extra_ids=extra,
                                  origin=origin)
    unknown = sorted({r.model for r in recs} - set(answers.models))
    if unknown:
        raise ProfileError(f"{origin}: fusion records of model(s) {', '.join(unknown)} without an answer bank")
    skills = dict(zip(answers.models, answers.skill.tolist(), strict=True))
    return answers, record_arrays(recs, answers, spec), skills


class QualityModel:
    """Predicts a graph's correctness per question on one task (see the package docstring)."""

    def __init__(self, task: TaskSpec, answers: AnswerTables, params: FusionParams, *,
                 label: str = "profile", catalog: ModelCatalog = DEFAULT_CATALOG,
                 records: RecordArrays | None = None, checksum: str = "") -> None:
        """``records``: the fusion records ``params`` were fitted to (the prediction intervals draw the
        coefficients from their likelihood; without them an interval has the run's noise only);
        ``checksum``: the profile's, the key of those draws' cache."""
        self.task = task
        self.records = records
        self.checksum = checksum
        self._draws: dict[int, np.ndarray | None] = {}  # coefficient draws by count (sampled once)
        self.answers = answers
        # (M, Q, K) what each model answers when it no longer reads its context
        self._base = chance_probs(answers.probs, answers.valid[None], task.chance, task.kind == "multiple-choice")
        self.params = replace(params, overwrite=self._overwrite_chances(params))
        self.label = label
        self.catalog = catalog
        self._cdf = np.cumsum(answers.probs, axis=2).astype(np.float32)
        self._cdf[:, :, -1] = 1.0
        self._plans: OrderedDict[str, list[_NodePlan]] = OrderedDict()  # LRU by canonical graph key

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile: Profile, task: str | TaskSpec,
                     catalog: ModelCatalog = DEFAULT_CATALOG) -> QualityModel:
        """Smooth the task's answer banks and fit the fusion parameters to its fusion records."""
        spec = get_task(task) if isinstance(task, str) else task
        origin = f"profile {profile.label!r}, task {spec.name!r}"
        with threadpool_limits(1):  # small L-BFGS problems: BLAS threads only add overhead (10x here)
            answers, rec, skills = fit_inputs(profile.task(spec.name), spec, origin)
            _, gaps = fit_plan(rec)
            if gaps:
                log.warning("%s: too little data to fit %s; using the documented priors "
                            "(tts_sim.sim.quality.fusion.PRIOR) there", origin, "; ".join(gaps))
            params = cached_fit(profile.checksum, spec.name, lambda: fit_fusion(rec, skills))
        return cls(spec, answers, params, label=profile.label, catalog=catalog, records=rec,
                   checksum=profile.checksum)

    # ----- queries ------------------------------------------------------------------------
    @property
    def n_questions(self) -> int:
        return self.answers.n_questions

    @property
    def models(self) -> tuple[str, ...]:
        return self.answers.models

    @property
    def log_likelihood(self) -> float | None:
        """Log-likelihood of the fusion records at the fitted parameters."""
        return self.params.log_likelihood

    def predict(self, graph: Graph, questions: Sequence[int] | None = None, *, seed: int | None = None,
                replicates: int = 1) -> np.ndarray:
        """Per-question correctness of one simulated run (0/1), or its mean over ``replicates`` runs."""
        qs = self._questions(questions)
        if replicates < 1:
            raise ConfigError(f"replicates must be >= 1, got {replicates}")
        rng = np.random.default_rng(seed)
        ids = self.simulate(graph, qs, rng, replicates)[graph.output]
        return (ids == 0).mean(axis=1) if replicates > 1 else (ids[:, 0] == 0).astype(float)

    def expected(self, graph: Graph, questions: Sequence[int] | None = None, *,
                 replicates: int = EXPECTED_REPLICATES) -> np.ndarray:
        """Per-question probability that the graph answers correctly (deterministic).

        Exact for a lone node; otherwise the output node's exact conditional probability of the
        correct answer (``pick`` x the share of correct inputs + the rest x the softmax's), averaged
        over ``replicates`` fixed-seed draws of its inputs."""
        qs = self._questions(questions)
        if replicates < 1:
            raise ConfigError(f"replicates must be >= 1, got {replicates}")
        plan = self._plan(graph)
        out = plan[-1]
        if out.log_own is None:
            return self.answers.probs[out.model, qs, 0].copy()
        rng = np.random.default_rng(EXPECTED_SEED)
        total = np.zeros(len(qs))
        step = max(1, _CHUNK_CELLS // max(1, len(qs) * self.answers.probs.shape[2]))
        done = 0
        while done < replicates:
            r = min(step, replicates - done)
            ids = self._run(plan[:-1], qs, rng, r)
            logits = self._fusion_logits(out, ids, qs)
            weighed = special.softmax(logits.astype(np.float64), axis=2)[:, :, 0]
            share = np.mean([ids[j] == 0 for j in out.preds], axis=0)
            total += (out.pick * share + (1 - out.pick) * weighed).sum(axis=1)
            done += r
        return total / replicates

    def ceiling(self, graph: Graph, questions: Sequence[int] | None = None) -> float:
        """The documented ceiling of ``expected(graph)``: the mean over questions of ``pick + (1 - pick)
        x`` the output node's weighed probability of the correct answer when every one of its inputs is
        correct (or, if larger, when no input is correct and none pulls: with ``beta >= 0`` an input on a
        wrong answer only lowers it, and without a correct input only the find term raises it; a copied
        input is correct at most always).
        A lone node's ceiling is its own accuracy. Long contexts lower it towards chance."""
        qs = self._questions(questions)
        out = self._plan(graph)[-1]
        if out.log_own is None:
            return float(self.answers.probs[out.model, qs, 0].mean())
        logits = out.log_own[qs].astype(np.float64)
        alone = logits.copy()
        alone[:, 0] += out.find[qs]  # type: ignore[index]
        free = special.softmax(alone, axis=1)[:, 0]
        logits[:, 0] += out.pull * len(out.preds) + out.bonus
        weighed = np.maximum(free, special.softmax(logits, axis=1)[:, 0])
        return float((out.pick + (1 - out.pick) * weighed).mean())

    def coefficient_draws(self, n: int) -> np.ndarray | None:
        """``n`` fusion-coefficient vectors drawn from the fitted records' likelihood (cached, see
        ``tts_sim.sim.quality.posterior``; kept by the model too, so a profile without a checksum samples
        once); None without records or without a fitted coefficient."""
        if self.records is None:
            return None
        if n not in self._draws:
            self._draws[n] = cached_likelihood_draws(self.checksum, self.task.name, self.params, self.records, n)
        return self._draws[n]

    def prediction_interval(self, graph: Graph, questions: Sequence[int] | None = None, *, level: float = 0.95,
                            seed: int = 0, heldout: int | None = None) -> PredictionInterval:
        """Where one evaluation's accuracy is predicted to fall - on ``questions``, or on ``heldout`` new
        questions - the fusion fit's uncertainty included (``tts_sim.sim.quality.interval``)."""
        return prediction_interval(self, graph, questions, level=level, seed=seed, heldout=heldout)

    def accuracy(self, graph: Graph, questions: Sequence[int] | None = None, *, seed: int | None = None
                 ) -> AccuracyEstimate:
        """One simulated evaluation: mean correctness, 95% Wilson interval, number of questions."""
        correct = self.predict(graph, questions, seed=seed)
        low, high = wilson_interval(float(correct.sum()), correct.size)
        return AccuracyEstimate(float(correct.mean()), low, high, int(correct.size))

    def simulate(self, graph: Graph, questions: Sequence[int] | np.ndarray, rng: np.random.Generator,
                 replicates: int = 1) -> dict[str, np.ndarray]:
        """Answer ids (len(questions), replicates) of every executed node, by node id."""
        qs = self._questions(questions)
        plan = self._plan(graph)
        ids = self._run(plan, qs, rng, replicates)  # the plan may come from an isomorphic graph: use its order
        return dict(zip(canonical_order(graph), ids, strict=True))

    # ----- internals ----------------------------------------------------------------------
    def _overwrite_chances(self, params: FusionParams) -> dict[str, float]:
        """Per model: mean over questions of P(a refiner drops a correct single input)."""
        out = {}
        role = role_index("assistant", 1)
        for m, (model, s) in enumerate(zip(self.answers.models, self.answers.skill, strict=True)):
            lam = float(degradation(params.gamma(s), np.asarray(self.task.answer_tokens)))
            own = float(params.tau(role)) * degraded_log_own(self.answers.probs[m], lam, self._base[m])
            logits = np.where(self.answers.valid, own, -np.inf)
            logits[:, 0] += lam * float(params.beta(role, s) + params.rho(role, s))
            kept = float(params.pick(role)) + (1 - float(params.pick(role))) * special.softmax(logits, axis=1)[:, 0]
            out[model] = float(1 - kept.mean())
        return out

    def _questions(self, questions: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if questions is None:
            return np.arange(self.n_questions)
        qs = np.asarray(questions, dtype=np.intp).reshape(-1)
        if qs.size and (qs.min() < 0 or qs.max() >= self.n_questions):
            bad = qs[(qs < 0) | (qs >= self.n_questions)][0]
            raise ConfigError(f"question {bad} outside 0..{self.n_questions - 1} of task {self.task.name!r} "
                              f"in profile {self.label!r}")
        return qs

    def _model_index(self, model: str) -> int:
        try:
            return self.answers.index(model)
        except ValueError:
            raise ProfileError(f"model {model!r} has no answer bank for task {self.task.name!r} in profile "
                               f"{self.label!r} (it has: {', '.join(self.models)})") from None

    def _plan(self, graph: Graph) -> list[_NodePlan]:
        """Nodes in canonical order (output last), so isomorphic graphs share one plan and one result."""
        key = graph_key(graph)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        order = canonical_order(graph)
        pos = {n: i for i, n in enumerate(order)}
        skills = self.answers.skill
        plan = []
        for n in order:
            node = graph.node(n)
            m = self._model_index(node.model)
            preds = tuple(sorted(pos[p] for p in graph.predecessors(n)))
            if not preds:
                plan.append(_NodePlan(n, (), m, None, 0.0, 0.0))
                continue
            role = role_index(Role(node.role).value, len(preds))
            s = skills[m]
            excess = len(preds) * self.task.answer_tokens
            lam = float(degradation(self.params.gamma(s), np.asarray(excess)))
            log_own = degraded_log_own(self.answers.probs[m], lam, self._base[m])
            own0 = np.where(np.isfinite(log_own[:, 0]), log_own[:, 0], 0.0)  # as in the fit (0 outside the support)
            find = (lam * (float(self.params.find(role)) + float(self.params.solve(role)) * own0)).astype(np.float32)
            log_own = np.where(self.answers.valid, float(self.params.tau(role)) * log_own, -np.inf).astype(np.float32)
            pull = lam * float(self.params.beta(role, s) * self.params.input_weight(len(preds)))
            plan.append(_NodePlan(n, preds, m, log_own, pull, lam * float(self.params.rho(role, s)), find,
                                  float(self.params.pick(role))))
        self._plans[key] = plan
        if len(self._plans) > PLAN_CACHE_SIZE:  # a plan is ~0.2 MB on 500 questions: keep memory bounded
            self._plans.popitem(last=False)
        return plan

    def _run(self, plan: list[_NodePlan], qs: np.ndarray, rng: np.random.Generator, r: int) -> list[np.ndarray]:
        ids: list[np.ndarray] = []
        for p in plan:
            u = rng.random((len(qs), r, 1), dtype=np.float32)
            if p.log_own is None:
                cdf = self._cdf[p.model, qs][:, None, :]
            else:  # numerically stable: the largest logit becomes 0 before exp, in float64
                logits = self._fusion_logits(p, ids, qs).astype(np.float64)
                logits -= logits.max(axis=2, keepdims=True)
                cdf = np.cumsum(np.exp(logits), axis=2)
                u = u * cdf[:, :, -1:]
            out = np.minimum((cdf <= u).sum(axis=2), cdf.shape[2] - 1)
            if p.pick > 0:  # copies an input taken at random (no draws without the term: same streams)
                copy = rng.random(out.shape) < p.pick
                which = rng.integers(len(p.preds), size=out.shape)
                inputs = np.stack([ids[j] for j in p.preds])
                out = np.where(copy, np.take_along_axis(inputs, which[None], axis=0)[0], out)
            ids.append(out)
        return ids

    def _fusion_logits(self, p: _NodePlan, ids: list[np.ndarray], qs: np.ndarray) -> np.ndarray:
        """Unnormalised log-probabilities (len(qs), replicates, K) of the node's answer (float32)."""
        log_own = p.log_own[qs][:, None, :]  # type: ignore[index]
        find = p.find[qs][:, None]  # type: ignore[index]
        first = ids[p.preds[0]]
        if len(p.preds) == 1:  # one input: add the pull (and bonus) at its id only, the find term without it
            logits = np.repeat(log_own, first.shape[1], axis=1)
            extra = np.where(first == 0, np.float32(p.pull + p.bonus), np.float32(p.pull))
            flat = logits.reshape(-1, logits.shape[2])
            flat[np.arange(flat.shape[0]), first.reshape(-1)] += extra.reshape(-1)
            logits[:, :, 0] += np.where(first == 0, np.float32(0), find)
            return logits
        grid = np.arange(log_own.shape[2], dtype=first.dtype)
        counts = np.zeros((*first.shape, log_own.shape[2]), dtype=np.float32)
        for j in p.preds:
            counts += ids[j][:, :, None] == grid
        return fusion_logits(log_own, counts, np.array(p.pull, dtype=np.float32), np.array(p.bonus, dtype=np.float32),
                             find)
