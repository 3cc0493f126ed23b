"""MMLU: the final answer is a choice letter ('Answer: B', 'The answer is (B)', '(B)', 'B.', 'B')."""

from __future__ import annotations

import re

from tts_sim.tasks.questions import Question

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
