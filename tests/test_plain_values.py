"""The plain-value codec between a candidate and its checker: exact round trips, nothing else gets through."""

from __future__ import annotations

import math
import os

import pytest

from tts_sim.tasks.plain_values import MAX_DEPTH, NotPlain, decode, encode, receive, send

VALUES = [
    None, True, False, 0, -7, 2**200, -(2**64), 1.5, -0.0, float("inf"), float("-inf"), 1e-310, 3 + 4j, "",
    "héllo\n\x00", b"\x00\xff", [], [1, [2, [3]]], (), (1,), ("a", 2.0, None), {}, {"a": 1, 2: [3], (4, 5): {6}},
    set(), {1, 2}, frozenset({"x"}), {frozenset({1}): (True, 1)}, [True, 1, 1.0],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_is_exact(value: object) -> None:
    back = decode(encode(value))
    assert back == value and repr(back) == repr(value)
    assert type(back) is type(value)


def test_nan_and_bool_int_distinction_survive() -> None:
    assert math.isnan(decode(encode(float("nan"))))  # type: ignore[arg-type]
    assert [type(x) for x in decode(encode([True, 1, 1.0]))] == [bool, int, float]  # type: ignore[union-attr]


class Anything:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class Number(int):
    pass


@pytest.mark.parametrize("value", [Anything(), [1, Anything()], {"k": Anything()}, Number(3), [Number(1)],
                                   (x for x in []), print, type, object(), bytearray(b"x"), range(3),
                                   {Anything(): 1}], ids=repr)
def test_anything_not_plain_is_refused(value: object) -> None:
    with pytest.raises(NotPlain):
        encode(value)


def test_nesting_is_bounded() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(NotPlain):
        encode(deep)
    with pytest.raises(NotPlain):
        decode("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("text", ['{"q": 1}', '{"i": 5}', '{"f": "zz"}', '1.5', 'NaN', '{"t": 1}', '{"d": [[[1], 2]]}',
                                  '{"s": [[1]]}', '{"a": 1, "b": 2}', "not json", '{"c": ["0x1p0"]}', "\udcff"])
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(NotPlain):
        decode(text)


def test_framing_round_trip_and_end_of_file() -> None:
    read, write = os.pipe()
    try:
        send(write, encode([1, "two"]))
        send(write, "")
        os.close(write)
        assert decode(receive(read) or b"") == [1, "two"]
        assert receive(read) == b""
        assert receive(read) is None
    finally:
        os.close(read)


def test_truncated_frame_is_refused() -> None:
    read, write = os.pipe()
    try:
        os.write(write, (10).to_bytes(8, "big") + b"abc")
        os.close(write)
        with pytest.raises(NotPlain):
            receive(read)
    finally:
        os.close(read)
