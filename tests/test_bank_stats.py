"""Bank statistics: hand-made banks with known answers."""

from __future__ import annotations

import pytest

from tts_sim.real.profiling.bank_stats import bank_stats, markdown_table, model_stats


def test_model_stats_on_a_hand_made_bank():
    # 4 questions x 4 samples: always right, never right (two wrong answers), half, 1 of 4
    counts = [[4], [0, 3, 1], [2, 2], [1, 3]]
    s = model_stats("m", counts)
    assert s.questions == 4 and s.samples == 16
    assert s.accuracy == pytest.approx(7 / 16)
    assert (s.never, s.always, s.in_between) == (0.25, 0.25, 0.5)
    assert s.majority == 0.25  # only the first question: a 2-2 tie does not count as correct
    assert 0 <= s.ci95[0] <= s.accuracy <= s.ci95[1] <= 1


def test_bootstrap_resamples_questions_not_samples():
    # every question all right or all wrong: the interval is as wide as 4 coin flips, far wider than 64 samples'
    s = model_stats("m", [[16], [0, 16], [16], [0, 16]])
    assert s.ci95[1] - s.ci95[0] >= 0.5


def test_cross_model_structure():
    a = [[4], [0, 4], [0, 0, 4], [2, 2]]
    b = [[4], [0, 4], [0, 4], [2, 2]]
    stats = bank_stats("t", {"a": a, "b": b})
    assert stats.correlation == pytest.approx(1.0)
    # both modal answers wrong on questions 2 and 3: the same wrong id on q2 only (q4 ties go to id 0)
    assert stats.same_wrong == pytest.approx(0.5)
    assert "| t | a |" in markdown_table([stats])

