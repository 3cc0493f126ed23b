"""``load_questions``: the questions of a registered task, through its spec's loader."""

from __future__ import annotations

from pathlib import Path

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question
from tts_sim.tasks.spec import get_task


def load_questions(task: str, path: str | Path | None = None, limit: int | None = None) -> list[Question]:
    """The questions of ``task`` from ``path`` (or the data a package ships), in file order.

    ``limit`` keeps the first ``limit`` questions. Raises ``ConfigError`` (one line) for an unknown
    task, a missing or malformed file, or a missing optional package.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of questions, got {limit!r}")
    loader = get_task(task).loader_function()
    file = Path(path) if path is not None else None
    if file is not None and not file.is_file():
        raise ConfigError(f"{task}: data file not found: {file}")
    out: list[Question] = []
    for question in loader(file):
        out.append(question)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ConfigError(f"{task}: no questions in {file if file is not None else 'the packaged data'}")
    return out
