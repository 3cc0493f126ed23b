"""GSM8K: the final answer is a number (after ``####``, in ``\\boxed{}``, after "answer is", else the last one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question, json_rows, require_file, required_field

_NUMBER = r"-?\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|-?\$?\.\d+"


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number written like ``1,234``, ``$18.90``, ``-3``, ``.5`` or ``7/2`` (else None)."""
    s = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    s = re.sub(r"\\!|\\,|\\\$", "", s)
    if not re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?", s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def extract_number(text: str) -> str | None:
    """The model's final number in free text."""
    from tts_sim.tasks.math_answers import last_boxed

    marked = re.findall(r"####\s*(" + _NUMBER + ")", text)
    if marked:
        return marked[-1]
    boxed = last_boxed(text)
    if boxed is not None:
        inner = re.findall(_NUMBER, boxed.replace("\\!", "").replace("{,}", ","))
        if inner:
            return inner[-1]
    stated = re.findall(r"answer(?: is|:)\s*(?:\*\*)?\s*(" + _NUMBER + ")", text, flags=re.IGNORECASE)
    if stated:
        return stated[-1]
    numbers = re.findall(_NUMBER, text)
    return numbers[-1] if numbers else None


def _key(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


class Gsm8kGrader:
    """GSM8K: exact numeric equality with the number after ``####`` in the reference solution."""

    task = "gsm8k"
    instructions = "Solve step by step, then write the final answer as a number after '####'."

    def extract(self, text: str) -> str | None:
        return extract_number(text)

    def canonical(self, extracted: str) -> str:
        value = parse_number(extracted)
        return _key(value) if value is not None else extracted.strip().lower()

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        if extracted is None:
            return False
        value, gold = parse_number(extracted), parse_number(question.reference)
        return value is not None and value == gold


def load_gsm8k(path: Path | None) -> Iterator[Question]:
    """GSM8K JSON lines: ``question`` and ``answer`` (a worked solution ending in ``#### <number>``)."""
    file = require_file(path, "gsm8k", "gsm8k_test.jsonl with fields question, answer")
    for n, row in json_rows(file):
        question = str(required_field(row, file, n, "question"))
        solution = str(required_field(row, file, n, "answer"))
        final = solution.rsplit("####", 1)[-1].strip()
        if parse_number(final) is None:
            raise ConfigError(f"{file}:{n}: answer does not end in '#### <number>'")
        yield Question(f"gsm8k/{n}", "gsm8k", question, final, metadata={"solution": solution})
