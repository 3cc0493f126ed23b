"""``add``: a generated task the small real models do clearly better than chance on.

"What is 7 + 5?" with both numbers drawn from 1..9 (answers 2..18). Questions are generated from a
seed (no data file): the same (seed, n) always gives the same questions. SmolLM2-135M-Instruct
answered 30 of 50 correctly (greedy, CPU; ``benchmarks/easy_task_accuracy.py``), far above chance (a
uniform guess among the 17 possible sums: 1/17) and below 100%, so graphs have room to improve it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question

DEFAULT_QUESTIONS = 500
DEFAULT_SEED = 0
LOW, HIGH = 1, 9


def addition_questions(n: int = DEFAULT_QUESTIONS, seed: int = DEFAULT_SEED) -> list[Question]:
    """``n`` addition questions drawn with ``random.Random(seed)``."""
    if n < 1:
        raise ConfigError(f"add: number of questions must be positive, got {n}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
        out.append(Question(f"add/{seed}/{i}", "add", f"What is {a} + {b}?", str(a + b),
                            metadata={"a": a, "b": b, "seed": seed}))
    return out


def load_add(path: Path | None) -> Iterator[Question]:
    if path is not None:
        raise ConfigError("add: questions are generated from a seed; it takes no --data file")
    yield from addition_questions()


_INT = r"-?\d+"


def extract_final_integer(text: str) -> str | None:
    """The reply's final integer: after "answer is" / "Answer:", in ``\\boxed{}``, after the last "=",
    else the last integer in the text."""
    for pattern in (r"(?i:answer)\s*(?:is|:)?\s*:?\s*\**\s*(" + _INT + ")", r"\\boxed\{\s*(" + _INT + r")\s*\}",
                    r"=\s*(" + _INT + ")"):
        found = re.findall(pattern, text)
        if found:
            return found[-1]
    numbers = re.findall(_INT, text)
    return numbers[-1] if numbers else None


class AdditionGrader:
    """``add``: the final integer must equal the sum."""

    task = "add"
    instructions = "Answer with the number only."

    def extract(self, text: str) -> str | None:
        return extract_final_integer(text)

    def canonical(self, extracted: str) -> str:
        s = extracted.strip()
        return str(int(s)) if re.fullmatch(_INT, s) else s.lower()

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        return extracted is not None and self.canonical(extracted) == question.reference
