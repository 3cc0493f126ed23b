"""The one stop-string rule every backend applies."""

from __future__ import annotations

from tts_sim.core.backend import stop_at


def test_stop_at_ignores_leading_whitespace():
    assert stop_at("\n5\nUser: hi", ("\n",)) == 2
    assert stop_at("  \n ", ("\n",)) is None  # nothing visible yet: keep generating
    assert stop_at("3 + 2 = 5\n\nThe", ("\n\n", "\n")) == 9
    assert stop_at("no stop here", ("\n",)) is None


def test_a_stop_string_that_opens_the_reply_does_not_end_it():
    assert stop_at("User: 5\nUser:", ("User:",)) == 8
