"""The ``tts-sim`` command line (``tts_sim.cli.app``); one module per command."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tts-sim`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from tts_sim.cli.app import main as run

    return run(argv)


__all__ = ["main"]
