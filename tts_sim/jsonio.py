"""Reading JSON with one-line errors that name the file and what it should have been.

The one home of JSON parsing for anything a user (or an LLM) hands in: ``loads`` also refuses
nesting deeper than ``MAX_DEPTH`` (Python's parser and everything that walks the result recursively
- ``repr``, ``json.dumps``, checksums - would otherwise die with ``RecursionError``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError, TtsSimError

#: Deepest nesting accepted (tts-sim's own files nest at most ~6 levels).
MAX_DEPTH = 64
#: Every byte but brackets and the double quote (deleted before counting brackets).
_NOISE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')


def nesting_depth(text: str | bytes, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of valid JSON ``text``, counted up to ``limit + 1`` (C-speed passes only:
    escapes, then everything but brackets and quotes, then strings are deleted; each round of
    deleting innermost ``[]``/``{}`` pairs is one level)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return min(raw.count(b"[") + raw.count(b"{"), limit)  # an upper bound is enough
    if b"\\" in raw:  # escaped backslashes and quotes: neither opens nor closes a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # adjacent quotes enclose no bracket (an empty string, or the gap between two strings): drop them
    brackets = raw.translate(None, _NOISE).replace(b'""', b"")
    if b'"' in brackets:
        brackets = _STRING.sub(b"", brackets)
    depth = 0
    while brackets and depth <= limit:
        brackets = brackets.replace(b"[]", b"x").replace(b"{}", b"x").replace(b"x", b"")  # one level a round
        depth += 1
    return depth


def loads(text: str | bytes, what: str, error: type[TtsSimError] = ConfigError, *, stored: bool = False) -> Any:
    """Parse ``text``; ``error("WHAT is not valid JSON (...)")`` on any fault, including nesting
    deeper than ``MAX_DEPTH`` and bytes that are not UTF-8 (``stored``: "WHAT is corrupted: not
    valid JSON", for the contents of a file)."""
    bad = f"{what} is {'corrupted: not' if stored else 'not'} valid JSON"
    raw = text
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{bad} ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{bad} (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise error(f"{bad} (nested more than {MAX_DEPTH} levels deep)") from None
    if isinstance(data, (list, dict)) and nesting_depth(raw) > MAX_DEPTH:
        raise error(f"{bad} (nested more than {MAX_DEPTH} levels deep)")
    return data


def read_json(path: str | Path, what: str, error: type[TtsSimError] = ConfigError) -> Any:
    """The parsed content of ``path``; ``error("cannot read WHAT PATH: ...")`` or
    ``error("WHAT PATH is corrupted: not valid JSON (...)")`` otherwise."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return loads(raw, f"{what} {path}", error, stored=True)
