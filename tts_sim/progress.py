"""The progress bar of long real runs (``profile``, ``fidelity``): backend calls on stderr with the count,
calls/s and ETA; redrawn every second on a terminal, every 30 s into a log file (a run of hours keeps a
short log)."""

from __future__ import annotations

import sys
from typing import Any


def call_bar(total: int, done: int = 0, *, desc: str, disable: bool = False) -> Any:
    """A ``tqdm`` bar over ``total`` calls, ``done`` of them already made (replayed from a journal)."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=done, desc=desc, unit="call", disable=disable, file=sys.stderr,
                mininterval=1.0 if tty else 30.0, smoothing=0.05, dynamic_ncols=tty)
