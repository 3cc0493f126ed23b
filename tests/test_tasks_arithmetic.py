"""The generated arithmetic tasks: distinct questions without replacement, correct references, one-line answers."""

from __future__ import annotations

import pytest

from tts_sim.errors import ConfigError
from tts_sim.tasks import get_task, load_questions
from tts_sim.tasks.graders import get_grader, grader_stop


@pytest.mark.parametrize("task, size", [("add-words", 405), ("mul-words", 392)])
def test_every_question_is_distinct_and_a_later_slice_never_repeats_a_profiled_one(task, size):
    pool = load_questions(task)
    assert len(pool) == size and len({q.prompt for q in pool}) == size
    assert load_questions(task)[:10] == pool[:10]  # the same seed, the same order
    from tts_sim.tasks.arithmetic import ADD_WORDS, MUL_WORDS

    spec = ADD_WORDS if task == "add-words" else MUL_WORDS
    other = spec.questions(seed=1)
    assert [q.prompt for q in other] != [q.prompt for q in pool] and {q.prompt for q in other} == {
        q.prompt for q in pool}


@pytest.mark.parametrize("task, op", [("add-words", lambda a, b: a + b), ("mul-words", lambda a, b: a * b)])
def test_references_and_grading(task, op):
    grader = get_grader(task)
    for q in load_questions(task, limit=50):
        a, b = q.metadata["a"], q.metadata["b"]
        assert q.reference == str(op(a, b))
        assert str(a) in q.prompt and str(b) in q.prompt
        assert grader.is_correct(grader.extract(f"{a} and {b} give {op(a, b)}"), q)
        assert not grader.is_correct(grader.extract(f"{op(a, b) + 1}"), q)
    assert grader_stop(grader) == ("\n",)
    assert get_task(task).chance > 0


def test_a_data_file_is_refused():
    from pathlib import Path

    from tts_sim.tasks.arithmetic import ADD_WORDS

    with pytest.raises(ConfigError, match="generated from a seed"):
        list(ADD_WORDS.load(Path("x.jsonl")))
