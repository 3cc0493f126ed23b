"""Token counts behind the simulator's service times (FLOPs and budget units keep the paper's A + d*B).

The paper's count gives a node with ``d`` predecessors an ``A + d*B`` token prompt and ``B`` reply
tokens. Measured runs differ in two ways that matter for latency:

- a prompt with predecessors also carries its template's words (``Here are 2 response(s)...``,
  ``Response 1:``): ``overhead[kind] + overhead_per_input * d`` extra tokens, per prompt kind
  (refine, fuse, synthesise; see ``tts_sim.core.prompts``);
- replies vary in length, and a static batch runs until its longest reply is done, so a batch of
  ``b`` requests decodes for the *maximum* of ``b`` reply lengths, not their mean.

``TokenModel`` holds both: per prompt kind, a reply-length distribution (``LengthDistribution``,
e.g. a profile's completion-length histogram) and a template overhead. With ``sampled=True`` every
request draws its reply length; otherwise each request gets its kind's mean (deterministic). A
node's prompt counts its predecessors' replies at their kinds' means. ``TokenModel()`` (nothing
measured) is exactly the paper's count: prompt ``round(A + d*B)``, ``round(B)`` reply tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_sim.core.prompts import DIRECT, KINDS
from tts_sim.errors import ConfigError, ProfileError
from tts_sim.tasks import TaskSpec

#: ``TokenModel.answers`` key for "any prompt kind without a distribution of its own".
ANY_KIND = "*"


@dataclass(frozen=True)
class LengthDistribution:
    """A discrete distribution of reply lengths in tokens: ``values`` (ascending) with ``probs``."""

    values: tuple[int, ...]
    probs: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values or len(self.values) != len(self.probs):
            raise ConfigError("a length distribution needs as many probabilities as values (at least one)")
        if any(not isinstance(v, (int, np.integer)) or v < 0 for v in self.values):
            raise ConfigError(f"reply lengths must be integers >= 0, got {list(self.values)!r}")
        if list(self.values) != sorted(set(self.values)):
            raise ConfigError("length distribution values must be distinct and ascending")
        if any(not (math.isfinite(p) and p > 0) for p in self.probs) or abs(sum(self.probs) - 1.0) > 1e-9:
            raise ConfigError("length distribution probabilities must be positive and sum to 1")

    @classmethod
    def from_histogram(cls, histogram: Mapping[Any, float]) -> LengthDistribution:
        """From ``{length: count}`` (keys may be strings, as in a profile's JSON)."""
        counts: dict[int, float] = {}
        for key, count in histogram.items():
            length = _token_count(key)
            if not (isinstance(count, (int, float)) and math.isfinite(count) and count >= 0):
                raise ConfigError(f"histogram count for {key!r} must be a number >= 0, got {count!r}")
            if count > 0:
                counts[length] = counts.get(length, 0.0) + float(count)
        total = sum(counts.values())
        if not total > 0:
            raise ConfigError("a length histogram needs at least one positive count")
        values = tuple(sorted(counts))
        return cls(values, _normalised([counts[v] for v in values]))

    @classmethod
    def from_samples(cls, lengths: Iterable[int]) -> LengthDistribution:
        """The empirical distribution of measured reply lengths."""
        counts: dict[int, int] = {}
        for n in lengths:
            counts[n] = counts.get(n, 0) + 1
        return cls.from_histogram(counts)

    @classmethod
    def fixed(cls, length: int) -> LengthDistribution:
        """Every reply has ``length`` tokens."""
        return cls((length,), (1.0,))

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.probs))

    @property
    def max(self) -> int:
        return int(self.values[-1])

    def sample(self, rng: np.random.Generator, size: int) -> list[int]:
        """``size`` independent draws."""
        if len(self.values) == 1:
            return [int(self.values[0])] * size
        return rng.choice(np.asarray(self.values), size=size, p=np.asarray(self.probs)).tolist()


def _token_count(key: Any) -> int:
    """A histogram key as a token count: an integer >= 0 or its decimal string (JSON keys)."""
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    raise ConfigError(f"histogram key {key!r} is not a token count >= 0")


def _shrunk(counts: Mapping[Any, float], prior: LengthDistribution | None, prior_samples: float
            ) -> LengthDistribution:
    """The histogram ``counts`` plus ``prior_samples`` pseudo-counts spread as ``prior``."""
    merged: dict[int, float] = {}
    for key, count in counts.items():
        merged[_token_count(key)] = merged.get(_token_count(key), 0.0) + count
    if prior is not None and prior_samples > 0:
        for value, p in zip(prior.values, prior.probs, strict=True):
            merged[value] = merged.get(value, 0.0) + prior_samples * p
    return LengthDistribution.from_histogram(merged)


def _normalised(weights: Sequence[float]) -> tuple[float, ...]:
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


@dataclass(frozen=True)
class TokenModel:
    """Prompt and reply lengths the simulator charges each request for (service times only).

    ``answers``: reply-length distribution per prompt kind (``direct``, ``refine``, ``fuse``,
    ``synthesise``; ``"*"`` for the others); kinds without one reply ``B`` tokens (the task's).
    ``by_model``: per model, its own distribution per kind where measured (models differ: SmolLM2-135M
    ran into the 16-token cap on 44% of its direct answers, Gemma-3-270M on 5%), else the kind's.
    ``overhead``: extra prompt tokens per kind of prompt with predecessors, plus
    ``overhead_per_input`` per predecessor. ``sampled``: one draw per request (from the
    simulation's seeded generator) instead of every request getting its kind's mean.
    """

    answers: Mapping[str, LengthDistribution] = field(default_factory=dict)
    overhead: Mapping[str, float] = field(default_factory=dict)
    overhead_per_input: float = 0.0
    sampled: bool = False
    by_model: Mapping[str, Mapping[str, LengthDistribution]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, dist in self.answers.items():
            if kind not in KINDS and kind != ANY_KIND:
                raise ConfigError(f"token model: unknown prompt kind {kind!r} (expected one of "
                                  f"{', '.join(KINDS)} or {ANY_KIND!r})")
            if not isinstance(dist, LengthDistribution):
                raise ConfigError(f"token model: the reply lengths of {kind!r} must be a LengthDistribution")
        for model, dists in self.by_model.items():
            for kind, dist in dists.items():
                if kind not in KINDS or not isinstance(dist, LengthDistribution):
                    raise ConfigError(f"token model: the reply lengths of {model!r} must be LengthDistributions "
                                      f"by prompt kind, got {kind!r}")
        for kind, extra in self.overhead.items():
            if kind not in KINDS or kind == DIRECT:
                raise ConfigError(f"token model: overhead for {kind!r}; only prompts with predecessors "
                                  f"({', '.join(k for k in KINDS if k != DIRECT)}) carry one")
            if not (isinstance(extra, (int, float)) and math.isfinite(extra)):
                raise ConfigError(f"token model: overhead of {kind!r} must be a finite number, got {extra!r}")
        if not (isinstance(self.overhead_per_input, (int, float)) and math.isfinite(self.overhead_per_input)):
            raise ConfigError(f"token model: overhead_per_input must be a finite number, "
                              f"got {self.overhead_per_input!r}")

    @property
    def is_paper(self) -> bool:
        """True when it charges exactly the paper's ``A + d*B`` / ``B`` tokens."""
        return (not self.answers and not self.by_model and not any(self.overhead.values())
                and not self.overhead_per_input)

    def answer(self, kind: str, model: str | None = None) -> LengthDistribution | None:
        """The reply-length distribution of a ``kind`` prompt to ``model`` (its own where measured, else
        the kind's; None: the task's B)."""
        own = self.by_model.get(model, {}).get(kind) if model is not None else None
        if own is not None:
            return own
        dist = self.answers.get(kind)
        return dist if dist is not None else self.answers.get(ANY_KIND)

    def mean_answer(self, task: TaskSpec, kind: str, model: str | None = None) -> float:
        dist = self.answer(kind, model)
        return dist.mean if dist is not None else float(task.answer_tokens)

    def prompt_tokens(self, task: TaskSpec, kind: str, predecessor_kinds: Sequence[str],
                      predecessor_models: Sequence[str | None] | None = None) -> int:
        """Prompt of a ``kind`` node whose predecessors have ``predecessor_kinds`` (and models): A +
        their replies (each at its kind's and model's mean) + the template overhead (nodes with
        predecessors only)."""
        d = len(predecessor_kinds)
        if self.is_paper:
            return max(1, round(task.prompt_tokens + d * task.answer_tokens))
        models = list(predecessor_models) if predecessor_models is not None else [None] * d
        tokens = task.prompt_tokens + sum(self.mean_answer(task, k, m)
                                          for k, m in zip(predecessor_kinds, models, strict=True))
        if d:
            tokens += self.overhead.get(kind, 0.0) + self.overhead_per_input * d
        return max(1, round(tokens))

    def decode_tokens(self, task: TaskSpec, kind: str, model: str | None = None) -> int:
        """Deterministic reply length of a ``kind`` request: its mean, rounded (at least 1)."""
        return max(1, round(self.mean_answer(task, kind, model)))

    def longest_decode(self, task: TaskSpec, kind: str, model: str | None = None) -> int:
        """The longest reply a ``kind`` request can get (for memory placement)."""
        dist = self.answer(kind, model)
        if self.sampled and dist is not None:
            return max(1, dist.max)
        return self.decode_tokens(task, kind, model)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any], sampled: bool = True, prior_samples: float = 10.0) -> TokenModel:
        """From one task's ``token_stats`` of a measured profile (see ``tts_sim.real.profiling.run``):
        ``answer_tokens_histogram`` (direct replies), ``answer_tokens_histogram_by_kind`` (replies of
        prompts with predecessors), ``fusion_overhead_tokens`` (mean, any kind) or
        ``fusion_overhead_tokens_by_kind`` with ``fusion_overhead_tokens_per_input``.

        A profile holds a few dozen fusion calls split over three kinds, and reply lengths are
        heavy-tailed, so each kind's histogram is shrunk towards the pooled replies of all prompts
        with predecessors, and those towards the direct replies: ``prior_samples`` pseudo-replies
        drawn from the next level up are added to each (0: every kind's own histogram as measured).
        ``answer_tokens_histogram_by_model`` (model -> kind -> histogram) gives each model its own,
        shrunk the same way towards its kind's."""
        if not (isinstance(prior_samples, (int, float)) and math.isfinite(prior_samples) and prior_samples >= 0):
            raise ConfigError(f"prior_samples must be a number >= 0, got {prior_samples!r}")
        try:
            answers: dict[str, LengthDistribution] = {}
            direct = None
            if stats.get("answer_tokens_histogram"):
                direct = answers[DIRECT] = answers[ANY_KIND] = LengthDistribution.from_histogram(
                    stats["answer_tokens_histogram"])
            by_kind = dict(stats.get("answer_tokens_histogram_by_kind") or {})
            for kind in by_kind:
                if kind == DIRECT or kind not in KINDS:
                    raise ConfigError(f"reply histogram of unknown kind {kind!r}")
            if by_kind:
                pooled: dict[int, float] = {}
                for hist in by_kind.values():
                    for length, count in hist.items():
                        pooled[_token_count(length)] = pooled.get(_token_count(length), 0.0) + count
                fused = answers[ANY_KIND] = _shrunk(pooled, direct, prior_samples)
                for kind, hist in by_kind.items():
                    answers[kind] = _shrunk(hist, fused, prior_samples)
            by_model: dict[str, dict[str, LengthDistribution]] = {}
            for model, hists in dict(stats.get("answer_tokens_histogram_by_model") or {}).items():
                for kind, hist in dict(hists).items():
                    if kind not in KINDS:
                        raise ConfigError(f"reply histogram of {model!r} of unknown kind {kind!r}")
                    by_model.setdefault(str(model), {})[kind] = _shrunk(hist, answers.get(kind) or answers.get(
                        ANY_KIND), prior_samples)
            by_kind_overhead = stats.get("fusion_overhead_tokens_by_kind")
            if by_kind_overhead:
                overhead = {k: float(v) for k, v in by_kind_overhead.items()}
                per_input = float(stats.get("fusion_overhead_tokens_per_input", 0.0))
            elif stats.get("fusion_overhead_tokens") is not None:
                overhead = {k: float(stats["fusion_overhead_tokens"]) for k in KINDS if k != DIRECT}
                per_input = 0.0
            else:
                overhead, per_input = {}, 0.0
            return cls(answers, overhead, per_input, sampled, by_model)
        except (ConfigError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"bad token statistics: {exc}") from None


def token_model_from_profile(profile: Any, task: str, sampled: bool = True,
                             prior_samples: float = 10.0) -> TokenModel | None:
    """The ``TokenModel`` a profile measured for ``task`` (None when it has no token statistics)."""
    stats = (profile.metadata.get("token_stats") or {}).get(task)
    if not stats:
        return None
    model = TokenModel.from_stats(stats, sampled, prior_samples)
    return None if model.is_paper else model
