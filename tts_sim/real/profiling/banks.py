"""Answer banks: ``k`` sampled direct answers per (model, question), as answer-id counts.

Answer ids per question: 0 is any answer the grader marks correct; wrong answers get ids 1, 2, ...
in the order first seen, keyed by the grader's ``canonical`` form and **shared across models**, so
two models giving the same wrong answer share its id (the quality model needs that agreement). A
reply with no extractable answer is one more wrong answer (``NO_ANSWER``). The samples keep their
texts, so fusion calibration can feed real replies to fusion nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tts_sim.core.backend import Backend, Generation, GenerationRequest
from tts_sim.core.prompts import DIRECT, PromptTemplates, node_messages, templates_for
from tts_sim.errors import ConfigError
from tts_sim.real.executor import request_seed
from tts_sim.real.profiling.journal import CallJournal, PlannedCall, ProgressBar, run_calls
from tts_sim.tasks.graders import Grader, grader_stop
from tts_sim.tasks.question import Question

NO_ANSWER = "<no answer>"


class AnswerIndex:
    """Answer ids per question (0 = correct; wrong answers numbered in first-seen order)."""

    def __init__(self, grader: Grader, questions: Sequence[Question]) -> None:
        self.grader = grader
        self.questions = list(questions)
        self._wrong: list[dict[str, int]] = [{} for _ in self.questions]

    def id_of(self, q: int, extracted: str | None) -> int:
        """The id of an extracted answer (None: no answer) to question ``q``."""
        if extracted is not None and self.grader.is_correct(extracted, self.questions[q]):
            return 0
        key = NO_ANSWER if extracted is None else self.grader.canonical(extracted)
        ids = self._wrong[q]
        if key not in ids:
            ids[key] = len(ids) + 1
        return ids[key]

    def id_of_text(self, q: int, text: str) -> int:
        return self.id_of(q, self.grader.extract(text))

    def wrong_answers(self, q: int) -> dict[str, int]:
        """Canonical wrong answer -> id for question ``q``."""
        return dict(self._wrong[q])

    def n_ids(self, q: int) -> int:
        return len(self._wrong[q]) + 1


@dataclass(frozen=True)
class BankSample:
    """One sampled direct answer."""

    model: str  # catalog name
    question: int  # index into the profiled questions
    text: str
    answer: str | None
    answer_id: int
    prompt_tokens: int
    completion_tokens: int
    prefill_s: float
    decode_s: float
    finish_reason: str


@dataclass
class AnswerBanks:
    """The samples of every profiled model, with the shared answer index."""

    questions: list[Question]
    index: AnswerIndex
    samples: list[BankSample] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({s.model for s in self.samples})

    def counts(self) -> dict[str, list[list[int]]]:
        """model -> [question][answer id] -> count (rows trimmed of trailing zeros, at least one entry)."""
        out: dict[str, list[list[int]]] = {}
        for model in self.models:
            rows = [[0] * self.index.n_ids(q) for q in range(len(self.questions))]
            for s in self.samples:
                if s.model == model:
                    rows[s.question][s.answer_id] += 1
            for row in rows:
                while len(row) > 1 and row[-1] == 0:
                    row.pop()
            out[model] = rows
        return out

    def accuracy(self, model: str) -> float:
        ids = [s.answer_id for s in self.samples if s.model == model]
        if not ids:
            raise ConfigError(f"no bank samples for model {model!r}")
        return float(np.mean([i == 0 for i in ids]))

    def by_question(self, q: int) -> list[BankSample]:
        return [s for s in self.samples if s.question == q]

    def token_stats(self) -> dict[str, float]:
        """Mean prompt and completion tokens of the direct answers (the simulator's A and B)."""
        if not self.samples:
            return {}
        return {"prompt_tokens": float(np.mean([s.prompt_tokens for s in self.samples])),
                "answer_tokens": float(np.mean([s.completion_tokens for s in self.samples])),
                "truncated_fraction": float(np.mean([s.finish_reason == "length" for s in self.samples])),
                "samples": len(self.samples)}


def plan_bank_calls(models: Mapping[str, str], questions: Sequence[Question], grader: Grader, samples: int, *,
                    templates: PromptTemplates | None = None, max_new_tokens: int = 256, temperature: float = 0.7,
                    top_p: float = 1.0, seed: int = 0) -> list[PlannedCall]:
    """The bank's calls in plan order (model, question, sample), each with its own seed."""
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    if samples > 1 and temperature == 0:
        raise ConfigError("several samples per question need temperature > 0 (greedy decoding repeats itself)")
    if not questions:
        raise ConfigError("no questions to profile")
    templates = templates if templates is not None else templates_for(grader.task)
    stop = grader_stop(grader)
    return [PlannedCall(f"bank/{model}/{q}/{j}", model, backend_model, GenerationRequest(
                node_messages(templates, DIRECT, questions[q].prompt, grader.instructions), max_new_tokens,
                temperature, top_p, stop, request_seed(seed, questions[q].id, f"bank/{model}/{j}")))
            for model, backend_model in models.items() for q in range(len(questions)) for j in range(samples)]


def banks_from_results(plan: Sequence[PlannedCall], results: Mapping[str, Generation], questions: Sequence[Question],
                       grader: Grader, index: AnswerIndex | None = None) -> AnswerBanks:
    """The banks ``plan``'s generations make; answer ids are given in plan order (so a replay rebuilds them)."""
    index = index if index is not None else AnswerIndex(grader, questions)
    banks = AnswerBanks(list(questions), index)
    for call in plan:
        q = int(call.key.rsplit("/", 2)[1])
        gen = results[call.key]
        answer = grader.extract(gen.text)
        banks.samples.append(BankSample(call.model, q, gen.text, answer, index.id_of(q, answer),
                                        gen.prompt_tokens, gen.completion_tokens, gen.prefill_s, gen.decode_s,
                                        gen.finish_reason))
    return banks


def collect_answer_banks(backend: Backend, models: Mapping[str, str], questions: Sequence[Question],
                         grader: Grader, samples: int, *, templates: PromptTemplates | None = None,
                         max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 1.0, seed: int = 0,
                         batch: int = 8, index: AnswerIndex | None = None, journal: CallJournal | None = None,
                         bar: ProgressBar | None = None) -> AnswerBanks:
    """Sample ``samples`` direct answers per question from each model (``models``: catalog name ->
    backend name), ``batch`` requests per ``generate`` call; finished calls in ``journal`` are not sent again."""
    plan = plan_bank_calls(models, questions, grader, samples, templates=templates, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, seed=seed)
    results = run_calls(backend, plan, journal if journal is not None else CallJournal(None, {}), batch=batch,
                        bar=bar)
    return banks_from_results(plan, results, questions, grader, index)
