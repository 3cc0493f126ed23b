"""Profiles by name or path: ``scenario`` (the embedded synthetic default), ``measured:TASK`` (a measured
profile shipped in the package, ``tts_sim/data/profiles/measured-TASK.json.gz``), or a profile file.

Every command's ``--profile`` goes through ``load_profile``, so a name works wherever a file does.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from tts_sim.core.profile import Profile
from tts_sim.errors import ProfileError

SCENARIO = "scenario"
MEASURED_PREFIX = "measured:"
_MEASURED_DIR = "data/profiles"


def measured_names() -> list[str]:
    """The shipped measured profiles, as ``measured:TASK`` names."""
    folder = importlib.resources.files("tts_sim").joinpath(_MEASURED_DIR)
    if not folder.is_dir():
        return []
    names = [p.name.removeprefix("measured-").removesuffix(".json.gz") for p in folder.iterdir()
             if p.name.startswith("measured-") and p.name.endswith(".json.gz")]
    return [MEASURED_PREFIX + n for n in sorted(names)]


def profile_names() -> list[str]:
    """Every name ``load_profile`` accepts besides a path."""
    return [SCENARIO, *measured_names()]


@functools.lru_cache(maxsize=8)
def _packaged(name: str) -> Profile:
    if name == SCENARIO:
        from tts_sim.sim.scenario import load_default_profile

        return load_default_profile()
    ref = importlib.resources.files("tts_sim").joinpath(
        f"{_MEASURED_DIR}/measured-{name.removeprefix(MEASURED_PREFIX)}.json.gz")
    with importlib.resources.as_file(ref) as path:
        return Profile.load(path)


def load_profile(spec: str | Path) -> Profile:
    """The profile a user named: ``scenario``, ``measured:TASK`` or a file path (one-line error otherwise)."""
    text = str(spec)
    if text == SCENARIO or text in measured_names():
        return _packaged(text)
    if text.startswith(MEASURED_PREFIX):
        shipped = ", ".join(measured_names()) or "none"
        raise ProfileError(f"no shipped profile {text!r} (shipped: {shipped}; or give a profile file)")
    if not Path(text).exists():
        raise ProfileError(f"cannot read profile {text}: no such file, and not a profile name "
                           f"({', '.join(profile_names())})")
    return Profile.load(text)
