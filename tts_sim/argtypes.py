"""argparse value types with one-line messages (one home for the CLI's number checks)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(kind: type = float, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> Callable[[str], float]:
    """A parser of ``kind`` values within [low, high] (``(low, high]`` when ``low_open``)."""
    name = "an integer" if kind is int else "a number"
    bound = ("" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")) + (
        "" if high is None else f"{' and' if low is not None else ''} <= {high:g}")

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}{bound}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high) or not math.isfinite(value):
            finite = "a finite number" if value == value and not math.isfinite(value) else name
            raise argparse.ArgumentTypeError(f"expected {finite}{bound}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__}{bound}".replace(" ", "")
    return parse


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, low_open=True)
non_negative_float = number(float, 0)
probability = number(float, 0, 1, low_open=True)


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. ``16,64,256``."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values
