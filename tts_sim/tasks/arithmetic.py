"""Generated arithmetic tasks on which the two real small models are mid-range (neither near 0 nor near 1).

``add-words`` (a + b, operands 1..9, 5 wordings: 405 questions) and ``mul-words`` (a x b, operands
1..7, 8 wordings: 392 questions; 1..9 put the 270M Gemma below 0.2), each pair asked in one of several
wordings. The pool is every distinct (operands, wording) question, shuffled by the seed and drawn
*without replacement*, so a profile's questions and a later held-out slice of the pool (``--offset``)
never repeat a question. Answers are one line: the grader stops generation at the first newline
(``stop``), which also keeps profiling cheap. Accuracies of the real models: ``docs/tasks.md``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question
from tts_sim.tasks.simple import AdditionGrader

DEFAULT_SEED = 0


@dataclass(frozen=True)
class ArithmeticTask:
    """A binary operation asked in several wordings (``{a}``, ``{b}`` placeholders)."""

    name: str
    apply: Callable[[int, int], int]
    wordings: tuple[str, ...]
    operands: range = range(1, 10)

    def questions(self, seed: int = DEFAULT_SEED) -> list[Question]:
        """Every distinct question, in the seed's order."""
        combos = list(itertools.product(self.operands, self.operands, range(len(self.wordings))))
        random.Random(f"{self.name}/{seed}").shuffle(combos)
        return [Question(f"{self.name}/{seed}/{i}", self.name, self.wordings[w].format(a=a, b=b),
                         str(self.apply(a, b)), metadata={"a": a, "b": b, "wording": w, "seed": seed})
                for i, (a, b, w) in enumerate(combos)]

    def load(self, path: Path | None) -> Iterator[Question]:
        if path is not None:
            raise ConfigError(f"{self.name}: questions are generated from a seed; it takes no --data file")
        yield from self.questions()


ADD_WORDS = ArithmeticTask("add-words", lambda a, b: a + b, (
    "What is {a} + {b}?", "Add {a} and {b}.", "What is the sum of {a} and {b}?", "Compute {a} plus {b}.",
    "{a} + {b} = ?"))
MUL_WORDS = ArithmeticTask("mul-words", lambda a, b: a * b, (
    "What is {a} * {b}?", "Multiply {a} by {b}.", "What is the product of {a} and {b}?", "Compute {a} times {b}.",
    "{a} * {b} = ?", "What is {a} times {b}?", "What do you get when you multiply {a} by {b}?", "{a} x {b} = ?"),
    operands=range(1, 8))


def load_add_words(path: Path | None) -> Iterator[Question]:
    return ADD_WORDS.load(path)


def load_mul_words(path: Path | None) -> Iterator[Question]:
    return MUL_WORDS.load(path)


class OneLineIntegerGrader(AdditionGrader):
    """The final integer of a one-line reply must equal the result; generation stops at the first newline."""

    stop = ("\n",)


class AddWordsGrader(OneLineIntegerGrader):
    task = "add-words"


class MulWordsGrader(OneLineIntegerGrader):
    task = "mul-words"
