"""The ``Grader`` protocol; ``get_grader`` finds a task's grader through its ``TaskSpec``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tts_sim.tasks.question import Question
from tts_sim.tasks.spec import get_task


@runtime_checkable
class Grader(Protocol):
    """Turns a model's free-text reply into a gradeable answer.

    ``instructions``: the answer-format line appended to prompts. ``extract``: the final answer in a
    reply (None if it gives none). ``canonical``: a normalised key; equal answers get equal keys, so
    distinct wrong answers can be told apart. ``is_correct``: whether an extracted answer is right.
    A grader may also declare ``stop`` (strings that end a reply, e.g. ``("\\n",)`` for one-line
    answers); every real call of the task then stops there (``stop_sequences``).
    """

    task: str
    instructions: str

    def extract(self, text: str) -> str | None: ...

    def canonical(self, extracted: str) -> str: ...

    def is_correct(self, extracted: str | None, question: Question) -> bool: ...


_INSTANCES: dict[str, Grader] = {}


def stop_sequences(grader: Grader) -> tuple[str, ...]:
    """The strings that end a reply of ``grader``'s task (none unless the grader declares ``stop``)."""
    return tuple(getattr(grader, "stop", ()))


def get_grader(task: str) -> Grader:
    """The grader of ``task`` (one shared instance per task; one-line ``ConfigError`` if unknown)."""
    if task not in _INSTANCES:
        _INSTANCES[task] = get_task(task).make_grader()
    return _INSTANCES[task]


def build_prompt(question: Question) -> str:
    """The question as shown to a model, followed by its grader's answer-format line."""
    return f"{question.prompt}\n\n{get_grader(question.task).instructions}"
