"""Profiles by name: ``scenario``, ``measured:TASK`` (shipped), or a file; clear errors otherwise."""

from __future__ import annotations

import pytest

from tts_sim.errors import ProfileError
from tts_sim.sim import profiles
from tts_sim.sim.scenario import load_default_profile


def test_scenario_name_is_the_embedded_default():
    assert profiles.load_profile("scenario").checksum == load_default_profile().checksum


def test_every_shipped_measured_profile_loads_and_is_labelled_measured():
    for name in profiles.measured_names():
        profile = profiles.load_profile(name)
        task = name.removeprefix("measured:")
        assert profile.metadata.get("measured") is True
        assert task in profile.tasks
        assert profile.metadata.get("command", "").startswith("tts-sim profile")


def test_a_file_path_still_works(tmp_path):
    path = tmp_path / "p.json.gz"
    load_default_profile().save(path)
    assert profiles.load_profile(str(path)).checksum == load_default_profile().checksum


@pytest.mark.parametrize("spec, words", [("measured:nope", "no shipped profile 'measured:nope'"),
                                         ("no-such-file.json", "no such file, and not a profile name")])
def test_unknown_names_fail_in_one_line(spec, words):
    with pytest.raises(ProfileError, match=words) as info:
        profiles.load_profile(spec)
    assert "\n" not in str(info.value)


def test_simulate_takes_a_shipped_measured_profile_by_name(tmp_path, capsys):
    import json

    from tts_sim.cli import main

    if "measured:add-words" not in profiles.measured_names():
        pytest.skip("no measured add-words profile shipped")
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"nodes": [{"id": "out", "role": "assistant", "model": "smollm2-135m"}], "edges": [],
                             "output": "out"}))
    assert main(["simulate", str(g), "--task", "add-words", "--profile", "measured:add-words", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    measured = profiles.load_profile("measured:add-words").metadata["models"]["smollm2-135m"]["bank_accuracy"]
    assert abs(data["expected_accuracy"] - measured) < 0.02  # a lone model replays its own bank
    assert data["meta"]["scenario"] is False
