"""Agent-REINFORCE vs random and informed-random under both prior settings (issue 8, must-haves 1, 2, 7).

Runs ``tts-sim bench`` with the arguments given (defaults below), after registering searchers that
this checkout declares in pyproject.toml but the installed entry points may not have yet
(informed-random), so it works before the package is reinstalled. Writes OUT/report.md.

    PYTHONPATH=$PWD python benchmarks/bench_prior.py [extra tts-sim bench flags]
"""

from __future__ import annotations

import sys

from tts_sim.cli import main

DEFAULT = ["bench", "--tasks", "math", "mmlu", "--budgets", "18", "42", "--seeds", "5",
           "--searchers", "agent-reinforce", "random", "informed-random", "--regret-budgets", "none",
           "--priors", "none", "published", "--out", "runs/bench-prior"]


def register_unreleased() -> None:
    from tts_sim.baselines.informed_random import InformedRandom
    from tts_sim.search.searcher import SEARCHERS

    if "informed-random" not in SEARCHERS:
        SEARCHERS.register("informed-random", InformedRandom)


if __name__ == "__main__":
    register_unreleased()
    sys.exit(main(DEFAULT + sys.argv[1:]))
