"""``benchmarks/retime_tables.py``: a profile's latency tables replaced by the same tables timed again."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.retime_tables import retimed
from tts_sim.core.profile import Profile
from tts_sim.sim.profiles import load_profile

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "retime_tables.py"


def _slower(profile: Profile, factor: float) -> Profile:
    """A tables-only profile: every row of every table ``factor`` times slower."""
    tables = [dataclasses.replace(t, prefill=[(a, b, s * factor) for a, b, s in t.prefill],
                                  decode=[(a, b, s * factor) for a, b, s in t.decode], switch_s=t.switch_s * factor)
              for t in profile.latency]
    return Profile({"command": "tts-sim profile --no-banks ..."}, {}, tables)


def test_the_tables_are_replaced_and_the_banks_kept(tmp_path) -> None:
    shipped = load_profile("measured:add-words")
    out = retimed(shipped, _slower(shipped, 1.1), profile_name="measured:add-words", tables_name="t.json")
    assert out.tasks == shipped.tasks and len(out.latency) == len(shipped.latency)
    for old, new in zip(shipped.latency, out.latency, strict=True):
        assert (new.model, new.device) == (old.model, old.device)
        assert new.decode[0][2] == pytest.approx(old.decode[0][2] * 1.1)
    moved = out.metadata["tables_retimed"]["median_ratio_new_over_old"]
    assert all(r["prefill"] == pytest.approx(1.1) and r["decode"] == pytest.approx(1.1) for r in moved.values())
    path = tmp_path / "retimed.json.gz"
    out.save(path)
    assert Profile.load(path).latency == out.latency


def test_other_tables_are_refused_with_one_line(tmp_path) -> None:
    shipped = load_profile("measured:add-words")
    one = Profile({}, {}, shipped.latency[:1])
    with pytest.raises(ValueError, match="not the same tables"):
        retimed(shipped, one, profile_name="p", tables_name="t")
    path = tmp_path / "one.json"
    one.save(path)
    done = subprocess.run([sys.executable, str(SCRIPT), "measured:add-words", str(path), "-o", str(tmp_path / "x")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not the same tables" in done.stderr
