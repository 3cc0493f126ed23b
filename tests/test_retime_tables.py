"""``Profile.retimed`` / ``tts-sim profile --retime``: a profile's latency tables replaced by the same
tables timed again, its answer banks and fusion records kept."""

from __future__ import annotations

import dataclasses

import pytest

from tts_sim.core.profile import Profile
from tts_sim.errors import ProfileError
from tts_sim.sim.profiles import load_profile


def _slower(profile: Profile, factor: float) -> Profile:
    """A tables-only profile: every row of every table ``factor`` times slower."""
    tables = [dataclasses.replace(t, prefill=[(a, b, s * factor) for a, b, s in t.prefill],
                                  decode=[(a, b, s * factor) for a, b, s in t.decode], switch_s=t.switch_s * factor)
              for t in profile.latency]
    return Profile({"command": "tts-sim profile --no-banks ...", "device": "Other CPU"}, {}, tables)


def test_the_tables_are_replaced_and_the_banks_kept(tmp_path) -> None:
    shipped = load_profile("measured:add-words")
    out = shipped.retimed(_slower(shipped, 1.1))
    assert out.tasks == shipped.tasks and len(out.latency) == len(shipped.latency)
    for old, new in zip(shipped.latency, out.latency, strict=True):
        assert (new.model, new.device) == (old.model, old.device)
        assert new.decode[0][2] == pytest.approx(old.decode[0][2] * 1.1)
    info = out.metadata["tables_retimed"]
    assert info["device"] == "Other CPU" and info["command"].startswith("tts-sim profile --no-banks")
    assert all(r[k] == pytest.approx(1.1) for r in info["median_ratio_new_over_old"].values()
               for k in ("prefill", "decode", "switch"))
    assert out.label.endswith("latency tables retimed on Other CPU")
    path = tmp_path / "retimed.json.gz"
    out.save(path)
    assert Profile.load(path).latency == out.latency


def test_other_tables_are_refused_naming_both_sets() -> None:
    shipped = load_profile("measured:add-words")
    with pytest.raises(ProfileError, match="not this profile's") as err:
        shipped.retimed(Profile({}, {}, shipped.latency[:1]))
    assert "\n" not in str(err.value) and "gemma-3-270m on cpu" in str(err.value)


@pytest.mark.parametrize("extra, message", [
    (("--retime", "measured:add-words", "--no-latency"), "drop --no-latency"),
    (("--retime", "no-such-profile.json"), "no-such-profile.json"),
])
def test_cli_retime_usage_errors_are_one_line(capsys, extra, message) -> None:
    from tts_sim.cli import main

    assert main(["profile", "--task", "add-words", "-m", "smollm2-135m", "-o", "x.json", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
