"""Regenerate the likelihood draws shipped for the packaged profiles (``tts_sim/data/draws``).

    python -m tts_sim.sim.quality.ship_draws [FOLDER]

Run after a change to the fusion model or a packaged profile: a shipped file whose fit is no longer
the current fit is ignored (the draws are then sampled at first use), and the test suite says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tts_sim.sim.profiles import load_profile, profile_names
from tts_sim.sim.quality.model import QualityModel
from tts_sim.sim.quality.posterior import SHIPPED_DIR, draws_key, draws_payload, likelihood_draws
from tts_sim.tasks import get_task


def ship_draws(folder: Path) -> list[Path]:
    """Sample and write the draws of every packaged profile's tasks into ``folder``."""
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for name in profile_names():
        profile = load_profile(name)
        for task in sorted(profile.tasks):
            qm = QualityModel.from_profile(profile, get_task(task))
            rec = qm.records
            draws = None if rec is None else likelihood_draws(qm.params, rec)
            if rec is None or draws is None:
                continue
            path = folder / draws_key(profile.checksum, task)
            path.write_text(draws_payload(qm.params, rec, draws))
            written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / SHIPPED_DIR
    for written_path in ship_draws(target):
        print(written_path)
