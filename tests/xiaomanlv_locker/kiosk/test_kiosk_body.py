"""parse_object and text_problem: every body the kiosk cannot use is a BodyError naming why."""

from __future__ import annotations

import re

import pytest

from xiaomanlv_locker.kiosk.body import BodyError, nesting_depth, parse_object, text_problem


def test_a_flat_object_parses() -> None:
    assert parse_object(b'{"code": "12345678", "n": 1, "x": 1.5}') == {
        "code": "12345678",
        "n": 1,
        "x": 1.5,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "the body is empty"),
        (b"   ", "the body is empty"),
        (b'{"code": "1\xff"}', r"not UTF-8 \(byte 0xff at offset 11\)"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # a byte-order mark
        (b"{code: 1}", "not valid JSON"),
        (b'{"code": "1"', "not valid JSON"),
        (b"[1, 2]", "not an array"),
        (b'"12345678"', "not a string"),
        (b"null", "not null"),
        (b"true", "not a boolean"),
        (b"12345678", "not a number"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1e999}', "overflows"),
        (b'{"a": ' + b"9" * 5000 + b"}", "integer of 5000 digits is too long"),
        (b'{"a": 1, "a": 2}', "the key 'a' appears twice"),
        (b'{"a": ' + b"[" * 5 + b"]" * 5 + b"}", "nested deeper than 4 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 4 levels"),
        (b'{"a": "' + b"[" * 50 + b'"}', None),  # brackets inside a string are text
    ],
)
def test_every_unusable_body_is_named(raw: bytes, expected: str | None) -> None:
    if expected is None:
        assert parse_object(raw) == {"a": "[" * 50}
        return
    with pytest.raises(BodyError, match=expected):
        parse_object(raw)


def test_nesting_depth_skips_strings_and_escapes() -> None:
    assert nesting_depth('{"a": [{"b": "]]]\\"[[["}]}') == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("P-100", None),
        ("+86 555 0100", None),
        ("名字", None),
        ("P-1\x00", r"U\+0000"),
        ("P-1\nX", r"U\+000A"),
        ("\u202eP-1", r"U\+202E"),  # right-to-left override: format character
        ("P\ud800", r"U\+D800"),  # an unpaired surrogate no ROS string can carry
        ("x" * 129, r"too long \(129 characters, at most 128\)"),
    ],
)
def test_text_problem_names_control_characters_and_length(value: str, expected: str | None) -> None:
    problem = text_problem(value, 128)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert re.search(expected, problem)
