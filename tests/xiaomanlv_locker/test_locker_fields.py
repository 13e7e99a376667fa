"""Field checks for hostile input: text, integers, numbers, JSON."""

from __future__ import annotations

import math
from typing import Any

import pytest

from xiaomanlv_locker.fields import (
    FieldError,
    finite_in,
    int_in,
    json_object,
    nesting_depth,
    text_problem,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("P-1\x00evil", "contains a NUL"),
        ("P-1\ufffd", "not valid UTF-8"),
        ("line\nforged", "control characters"),
        ("bell\x07", "control characters"),
        ("\ud800", "control characters"),  # a lone surrogate: no UTF-8 encoding exists
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * 129, "129 characters long, at most 128"),
        (12, "must be text, not int"),
    ],
)
def test_text_problems_name_the_field(value: Any, expected: str) -> None:
    problem = text_problem("parcel_id", value)
    assert problem is not None and "'parcel_id'" in problem and expected in problem


def test_usable_text_and_optional_empty() -> None:
    assert text_problem("parcel_id", "P-0001 für Zoë") is None
    assert text_problem("reason", "", allow_empty=True) is None
    assert text_problem("reason", "  ", allow_empty=True) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**400, "an integer of 1329 bits not in 1..50"),  # str() of it would raise
        (256, "= 256 not in 1..50"),
        (0, "= 0 not in 1..50"),
        (3.0, "must be an integer, not float"),
        (True, "must be an integer, not bool"),
        ("3", "must be an integer, not str"),
        (None, "must be an integer, not NoneType"),
    ],
)
def test_int_in_refuses_without_converting(value: Any, expected: str) -> None:
    with pytest.raises(FieldError, match="field 'compartment'") as caught:
        int_in("compartment", value, 1, 50)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.nan, "not finite"),
        (math.inf, "not finite"),
        (10**400, "an integer of 1329 bits"),  # float(10**400) raises OverflowError
        (-1.0, "not in [0, 86400]"),
        ("5", "must be a number"),
    ],
)
def test_finite_in_refuses_nan_inf_and_overflow(value: Any, expected: str) -> None:
    with pytest.raises(FieldError, match="field 'duration'") as caught:
        finite_in("duration", value, 0.0, 86400.0)
    assert expected in str(caught.value)
    assert finite_in("duration", 5, 0.0, 86400.0) == 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 5000 + "]" * 5000, "characters long"),
        ("[" * 2000 + "]" * 2000, "nests 2000 levels deep"),  # json.loads: RecursionError
        ('{"a": {"b": 1}}', "nests 2 levels deep, at most 1"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"action"', "must be a JSON object, not str"),
        ("{not json", "not valid JSON"),
        ('{"duration": NaN}', "contains NaN"),
        ('{"duration": -Infinity}', "contains -Infinity"),
        (b"{}", "must be JSON text, not bytes"),
    ],
)
def test_json_object_refuses_every_other_shape(text: Any, expected: str) -> None:
    with pytest.raises(FieldError, match="/locker/sim/command") as caught:
        json_object(text, "/locker/sim/command")
    assert expected in str(caught.value)


def test_json_nesting_ignores_brackets_in_strings() -> None:
    assert nesting_depth('{"tag": "[[[{{{\\"]]]"}') == 1
    assert json_object('{"tag": "[[[{{{"}', "cmd") == {"tag": "[[[{{{"}
