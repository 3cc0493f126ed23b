"""User-facing errors: one line, naming the problem; the CLI turns them into exit status 2."""

from __future__ import annotations

import json


class TtsSimError(Exception):
    """Base for every error caused by bad input (graph, cluster spec, profile, argument)."""


class GraphError(TtsSimError):
    """A graph is malformed or breaks a role rule."""


class BudgetError(TtsSimError):
    """A budget cannot be met (e.g. below the cheapest valid graph)."""


class ProfileError(TtsSimError):
    """A profile file is corrupted, mismatched or of an unknown schema."""


class ClusterError(TtsSimError):
    """A cluster spec is malformed or a model does not fit on it."""


class ConfigError(TtsSimError):
    """A configuration value or file is invalid."""


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` as one bounded line: line breaks become " / ", other control characters are
    escaped, and anything past ``limit`` characters is cut."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    text = " / ".join(parts)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: object, limit: int = 60) -> str:
    """A bounded one-line rendering of a (JSON) value for error messages: JSON spelling for
    scalars (``null``, ``true``, ``"a\\nb"``), ``repr`` otherwise, cut at ``limit`` characters."""
    if value is None or isinstance(value, (bool, int, float, str)):
        try:
            text = json.dumps(value)
        except ValueError:
            text = repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
