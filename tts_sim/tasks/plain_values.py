"""Plain built-in values to and from text, exactly: the only thing that crosses from a candidate to its checker.

``encode`` accepts only values whose type *is* (not subclasses) one of None, bool, int, float, complex,
str, bytes, list, tuple, dict, set, frozenset, recursively; anything else (an object whose ``__eq__``
always says True, an ``int`` subclass, a list holding a function) raises ``NotPlain``. ``decode``
rebuilds the value from the text with fresh built-in objects, so whatever the sender did, the receiver
only ever compares built-ins. Floats travel as ``float.hex`` (exact; NaN and infinities included).

This module's source is also run inside the sandbox (``humaneval_check`` ships it there), so it uses
only the standard library and defines nothing but the codec and the framing helpers. It writes and reads
the JSON text with the C helpers of ``_json`` directly: importing ``json`` (and with it ``re``) would cost
each sandboxed process more start-up time than a whole check of a typical problem takes.
"""

from __future__ import annotations

import os

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # an interpreter without the C accelerator
    from json.encoder import py_encode_basestring_ascii as _quote
    from json.scanner import py_make_scanner as _make_scanner  # type: ignore[attr-defined, no-redef]  # not in typeshed

MAX_DEPTH = 200  # nesting deeper than this is refused (both ways)
MAX_MESSAGE_BYTES = 64 * 2**20  # one framed message


class NotPlain(ValueError):  # noqa: N818 - the name says what it means to a reader of a failed check
    """A value is not made of plain built-in types, or a text is not a well-formed encoding."""


def encode(value: object) -> str:
    """The JSON text of a plain built-in value (``NotPlain`` if any part of it is not one)."""
    out: list[str] = []
    _dump(_tag(value, 0), out)
    return "".join(out)


def decode(text: str | bytes) -> object:
    """The value encoded in ``text``, built from fresh built-in objects (``NotPlain`` if malformed)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        raw, end = _SCANNER(text, 0)
        if end != len(text):
            raise NotPlain("trailing text after the value")
        return _untag(raw, 0)
    except NotPlain:
        raise
    except (StopIteration, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise NotPlain(f"malformed value: {type(exc).__name__}") from None


def _no_float(text: str) -> object:
    raise NotPlain(f"bare JSON number {text!r} (floats travel as hex)")


class _ScannerContext:
    """What ``_json.make_scanner`` reads: strict strings, no hooks, no bare floats or NaN/Infinity."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    memo: dict[str, str] = {}
    parse_float = staticmethod(_no_float)
    parse_int = int
    parse_constant = staticmethod(_no_float)


# typeshed types the context as a ``make_scanner`` itself (its own TODO: it is a duck type)
_SCANNER = _make_scanner(_ScannerContext())  # type: ignore[arg-type]


def _dump(raw: object, out: list[str]) -> None:
    """JSON text of a tagged value (only None, bool, int, str, list and one-key dicts occur)."""
    if raw is None:
        out.append("null")
    elif raw is True:
        out.append("true")
    elif raw is False:
        out.append("false")
    elif type(raw) is int:
        out.append(int.__repr__(raw))
    elif type(raw) is str:
        out.append(_quote(raw))
    elif type(raw) is list:
        out.append("[")
        for i, item in enumerate(raw):
            if i:
                out.append(",")
            _dump(item, out)
        out.append("]")
    else:
        ((key, body),) = raw.items()  # type: ignore[attr-defined]
        out.append("{" + _quote(key) + ":")
        _dump(body, out)
        out.append("}")


_SEQUENCES: dict[type, str] = {tuple: "t", set: "s", frozenset: "z"}


def _tag(value: object, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -(2**53) < value < 2**53 else {"i": hex(value)}  # type: ignore[operator, arg-type]
    if kind is float:
        return {"f": value.hex()}  # type: ignore[attr-defined]
    if kind is complex:
        return {"c": [value.real.hex(), value.imag.hex()]}  # type: ignore[attr-defined]
    if kind is bytes:
        return {"b": value.hex()}  # type: ignore[attr-defined]
    if kind is list:
        return [_tag(item, depth + 1) for item in value]  # type: ignore[attr-defined]
    if kind in _SEQUENCES:
        return {_SEQUENCES[kind]: [_tag(item, depth + 1) for item in value]}  # type: ignore[attr-defined]
    if kind is dict:
        return {"d": [[_tag(k, depth + 1), _tag(v, depth + 1)] for k, v in value.items()]}  # type: ignore[attr-defined]
    raise NotPlain(f"{kind.__qualname__} is not a plain built-in type")


def _untag(raw: object, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    kind = type(raw)
    if raw is None or kind is bool or kind is str or kind is int:
        return raw
    if kind is list:
        return [_untag(item, depth + 1) for item in raw]  # type: ignore[attr-defined]
    if kind is not dict or len(raw) != 1:  # type: ignore[arg-type]
        raise NotPlain("malformed value")
    ((tag, body),) = raw.items()  # type: ignore[attr-defined]
    if tag in ("i", "f", "b") and type(body) is not str:
        raise NotPlain("malformed value")
    if tag == "i":
        return int(body, 16)
    if tag == "f":
        return float.fromhex(body)
    if tag == "b":
        return bytes.fromhex(body)
    if type(body) is not list:
        raise NotPlain("malformed value")
    if tag == "c" and len(body) == 2 and all(type(x) is str for x in body):
        return complex(float.fromhex(body[0]), float.fromhex(body[1]))
    items = [_untag(item, depth + 1) for item in body]
    if tag == "t":
        return tuple(items)
    if tag == "s":
        return set(items)
    if tag == "z":
        return frozenset(items)
    if tag == "d" and all(type(pair) is list and len(pair) == 2 for pair in items):
        return dict(items)  # type: ignore[arg-type]
    raise NotPlain("malformed value")


def send(fd: int, text: str) -> None:
    """Write one framed message (8-byte big-endian length, then UTF-8 text) to ``fd``."""
    data = text.encode("utf-8")
    data = len(data).to_bytes(8, "big") + data
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> bytes | None:
    """Read one framed message from ``fd``; None at end of file (``NotPlain`` if truncated or too big)."""
    header = _read_exactly(fd, 8)
    if header is None:
        return None
    size = int.from_bytes(header, "big")
    if size > MAX_MESSAGE_BYTES:
        raise NotPlain(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    body = _read_exactly(fd, size)
    if body is None:
        raise NotPlain("truncated message")
    return body


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            if left == size:
                return None
            raise NotPlain("truncated message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
