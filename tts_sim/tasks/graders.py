"""The ``Grader`` protocol; ``get_grader`` finds a task's grader through its ``TaskSpec``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question
from tts_sim.tasks.spec import get_task


@runtime_checkable
class Grader(Protocol):
    """Turns a model's free-text reply into a gradeable answer.

    ``instructions``: the answer-format line appended to prompts. ``extract``: the final answer in a
    reply (None if it gives none). ``canonical``: a normalised key; equal answers get equal keys, so
    distinct wrong answers can be told apart. ``is_correct``: whether an extracted answer is right.
    A grader may also declare ``stop: tuple[str, ...]``, stop sequences for every call of its task
    (e.g. ``("\\n",)`` for single-line answers); read it with ``grader_stop`` (default: none).
    """

    task: str
    instructions: str

    def extract(self, text: str) -> str | None: ...

    def canonical(self, extracted: str) -> str: ...

    def is_correct(self, extracted: str | None, question: Question) -> bool: ...


def grader_stop(grader: Grader) -> tuple[str, ...]:
    """The stop sequences ``grader`` declares (its optional ``stop`` attribute; ``()`` without one)."""
    stop = getattr(grader, "stop", ())
    if isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop):
        raise ConfigError(f"grader of task {grader.task!r}: stop must be a tuple of non-empty strings, got {stop!r}")
    return tuple(stop)


_INSTANCES: dict[str, Grader] = {}


def get_grader(task: str) -> Grader:
    """The grader of ``task`` (one shared instance per task; one-line ``ConfigError`` if unknown)."""
    if task not in _INSTANCES:
        _INSTANCES[task] = get_task(task).make_grader()
    return _INSTANCES[task]


def build_prompt(question: Question) -> str:
    """The question as shown to a model, followed by its grader's answer-format line."""
    return f"{question.prompt}\n\n{get_grader(question.task).instructions}"
