"""The one driver every searcher evaluates through.

``SearchContext.evaluate`` repairs the graph to the budget, answers repeated graphs from a cache
(free), counts real evaluations against ``max_evals``, scores them with the objective, records
each as a ``Trial`` with its wall time, and appends it to the checkpoint journal. ``agent_call`` records agent
replies the same way. On resume both are answered from the checkpoint in order.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tts_sim.core.evaluation import Evaluation, Evaluator
from tts_sim.core.graph import Graph
from tts_sim.core.identity import graph_key
from tts_sim.errors import ConfigError
from tts_sim.search.agent_api import AgentReply
from tts_sim.search.checkpoint import Checkpoint, config_mismatch
from tts_sim.search.objectives import Objective
from tts_sim.search.prior import NO_PRIOR, Prior
from tts_sim.search.result import SearchCost, Trial
from tts_sim.search.space import SearchSpace

log = logging.getLogger("tts_sim.search")

#: Score given to an infeasible proposal that is penalised instead of evaluated: below every
#: accuracy, lower the further over budget (``-1 - overshoot``).
PENALTY_FLOOR = -1.0


class SearchExhausted(Exception):
    """Raised by ``evaluate`` once ``max_evals`` evaluations are spent; the driver ends the search."""


def stable_int(*parts: Any) -> int:
    """A 63-bit integer from ``parts`` that is the same in every process (unlike ``hash``)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class SearchContext:
    """State shared by a searcher and the driver during one search."""

    def __init__(self, space: SearchSpace, evaluator: Evaluator, max_evals: int, seed: int,
                 search_questions: Sequence[int], objective: Objective, *, config: dict[str, Any],
                 checkpoint: Checkpoint | None = None, progress: Callable[[Trial], None] | None = None,
                 max_proposals: int | None = None, prior: Prior = NO_PRIOR) -> None:
        self.space = space
        #: The prior knowledge every searcher of this search is given (``tts_sim.search.prior``): the
        #: only place a searcher or agent may read single-model accuracies or the task kind from.
        self.prior = prior
        self.evaluator = evaluator
        self.max_evals = max_evals
        self.seed = seed
        self.search_questions = tuple(search_questions)
        self.objective = objective
        self.config = config
        self.checkpoint = checkpoint
        self.progress = progress
        self.max_proposals = max_proposals if max_proposals is not None else 20 * max_evals + 100
        self.trials: list[Trial] = []
        self.cost = SearchCost(tokens_estimated=False)
        self.agent_log: list[dict[str, Any]] = []
        self.proposals = 0
        self._cache: dict[tuple[str, int], Trial] = {}
        self._agent_records: list[dict[str, Any]] = []
        self._replay_trials: deque[dict[str, Any]] = deque()
        self._replay_agent: deque[dict[str, Any]] = deque()
        self._elapsed_before = 0.0
        self._started = time.perf_counter()
        if checkpoint is not None:
            self._resume(checkpoint)

    # ----- checkpoint -----------------------------------------------------------------------
    def _resume(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.load()
        if state is not None:
            key = config_mismatch(state.config, self.config)
            if key is not None:
                raise ConfigError(f"checkpoint {checkpoint.path} belongs to another search ({key!r} differs); "
                                  f"delete it or pass another path")
        checkpoint.begin(self.config)
        if state is None:
            return
        self._replay_trials.extend(state.trials)
        self._replay_agent.extend(state.agent_calls)
        self._elapsed_before = state.elapsed_s
        log.info("resuming from %s: %d evaluations, %d agent replies", checkpoint.path,
                 len(state.trials), len(state.agent_calls))


    @property
    def elapsed_s(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._started

    # ----- budget ---------------------------------------------------------------------------
    @property
    def evaluations(self) -> int:
        return len(self.trials)

    @property
    def remaining(self) -> int:
        return self.max_evals - len(self.trials)

    @property
    def done(self) -> bool:
        """No evaluation left, or the searcher keeps proposing graphs it already has (stuck)."""
        return self.remaining <= 0 or self.proposals >= self.max_proposals

    def rng(self, *key: Any) -> np.random.Generator:
        """A generator determined by the run seed and ``key`` (same in every process)."""
        words = [zlib.crc32(str(k).encode()) for k in key]
        return np.random.default_rng([self.seed, *words])

    # ----- evaluation -----------------------------------------------------------------------
    def evaluate(self, graph: Graph, *, phase: str = "", n_questions: int | None = None) -> Trial:
        """Score ``graph`` (budget-repaired) on the search split, or on its first ``n_questions``."""
        graph = self.space.repair(graph)
        self.space.check(graph)
        n = len(self.search_questions)
        nq = n if n_questions is None else max(1, min(int(n_questions), n))
        key = (graph_key(graph), nq)
        self.proposals += 1
        cached = self._cache.get(key)
        if cached is not None:
            self.cost.cache_hits += 1
            return cached
        if self.remaining <= 0:
            raise SearchExhausted
        index = len(self.trials)
        if self._replay_trials:
            trial = Trial.from_dict(self._replay_trials.popleft(), self.space.catalog)
            if trial.graph_key != key[0] or trial.n_questions != nq or trial.index != index:
                raise ConfigError(f"checkpoint {self.checkpoint.path if self.checkpoint else ''} does not match "
                                  f"this search at evaluation {index} (the searcher proposed another graph)")
        else:
            t0 = time.perf_counter()
            ev = self.evaluator.evaluate(graph, self.search_questions[:nq], seed=self.eval_seed(graph))
            wall = time.perf_counter() - t0
            trial = self._trial(index, graph, ev, wall, phase, nq == n)
            if self.checkpoint is not None:  # replayed trials are in the journal already
                self.checkpoint.add_trial(trial.to_dict(), self.elapsed_s)
        self.trials.append(trial)
        self._cache[key] = trial
        self.cost.evaluations += 1
        self.cost.questions_scored += trial.n_questions
        self.cost.simulated_flops += trial.flops * trial.n_questions
        self.cost.evaluator_s += trial.wall_s
        if self.progress is not None:
            self.progress(trial)
        return trial

    def _trial(self, index: int, graph: Graph, ev: Evaluation, wall: float, phase: str, full: bool) -> Trial:
        return Trial(index=index, graph=graph, score=float(self.objective.score(ev)), accuracy=float(ev.accuracy),
                     ci_low=float(ev.ci_low), ci_high=float(ev.ci_high), n_questions=int(ev.n_questions),
                     flops=float(ev.flops), units=float(ev.budget_units),
                     latency=ev.latency.to_dict() if ev.latency is not None else None,
                     wall_s=wall, phase=phase, full=full)

    def eval_seed(self, graph: Graph) -> int:
        """The evaluator's noise seed for ``graph``: fixed per (run seed, graph), so every searcher
        with the same seed sees the same noise for the same graph."""
        return stable_int(self.seed, graph_key(graph)) % (2 ** 32)

    def penalise(self, graph: Graph) -> float:
        """Score of an infeasible proposal without evaluating it: ``-1 - overshoot`` where
        overshoot is the relative excess over the budget (a penalty, never a dropped point)."""
        self.proposals += 1
        self.cost.penalised += 1
        overshoot = max(0.0, self.space.units(graph) / self.space.budget - 1.0)
        return PENALTY_FLOOR - overshoot

    def best_trial(self) -> Trial | None:
        """Best search-time score among full-split trials (any trial if none is full); ties go to
        fewer FLOPs, then to the earlier trial."""
        pool = [t for t in self.trials if t.full] or self.trials
        if not pool:
            return None
        return min(pool, key=lambda t: (-t.score, t.flops, t.index))

    # ----- agents ---------------------------------------------------------------------------
    def agent_call(self, kind: str, ask: Callable[[], AgentReply]) -> AgentReply:
        """Ask the agent (or answer from the checkpoint on resume) and account for its tokens."""
        if self._replay_agent:
            data = self._replay_agent.popleft()
            if data.get("kind") != kind:
                raise ConfigError(f"checkpoint does not match this search at agent call {len(self._agent_records)}")
            reply = AgentReply.from_dict(data)
        else:
            reply = ask()
            if reply.kind != kind:
                raise RuntimeError(f"agent answered a {kind!r} request with a {reply.kind!r} reply")
            if self.checkpoint is not None:
                self.checkpoint.add_agent_call(reply.to_dict(), self.elapsed_s)
        self._agent_records.append(reply.to_dict())
        self.cost.agent_calls += 1
        self.cost.agent_prompt_tokens += reply.prompt_tokens
        self.cost.agent_completion_tokens += reply.completion_tokens
        self.cost.tokens_estimated = self.cost.tokens_estimated or reply.tokens_estimated
        self.cost.agent_fallbacks += int(reply.fallback)
        self.agent_log.append({"call": len(self._agent_records) - 1, "kind": kind, "agent": reply.agent,
                               "after_evaluation": len(self.trials), "text": reply.text, "error": reply.error,
                               "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                               "tokens_estimated": reply.tokens_estimated})
        return reply

    # ----- final ----------------------------------------------------------------------------
    def final_evaluation(self, graph: Graph, heldout: Sequence[int]) -> Evaluation:
        """The returned graph on the held-out split: the search's reported result."""
        return self.evaluator.evaluate(graph, tuple(heldout), seed=stable_int(self.seed, "heldout") % (2 ** 32))
