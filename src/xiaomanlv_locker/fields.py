"""Checks for everything that reaches the locker from outside: ROS fields, JSON, numbers.

Each check returns (or raises with) a message naming the field, so a node can answer
``success=false`` and count the rejection instead of dying or silently using a changed value.

Why text needs more than a length check: rclpy converts a ROS ``string`` with C string
functions. A NUL ends the string on both sides of DDS (``"P-1\\x00x"`` is published as
``"P-1"``, and a received string is cut at its first NUL), and bytes that are not UTF-8 arrive
as U+FFFD replacement characters. A NUL therefore has to be refused *before* a message is
built (the kiosk does so for HTTP input with :func:`text_problem`), and a received U+FFFD means
the sender's bytes were not UTF-8. Control characters would also let a caller forge lines in
logs and in the audit log. JSON is parsed only after its length and bracket nesting are checked
(:func:`json_object`): Python's decoder recurses once per level and raises ``RecursionError``
about 1000 levels deep, which is not a ``ValueError``.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_FIELD = 128  # [characters] an id, a recipient, a stop name
MAX_JSON = 4096  # [characters] a JSON command on a topic
REPLACEMENT = "\ufffd"  # what rclpy puts in place of bytes that are not UTF-8


class FieldError(ValueError):
    """A field of a request or message is unusable; the message names the field."""


def text_problem(
    name: str, value: object, *, max_chars: int = MAX_FIELD, allow_empty: bool = False
) -> str | None:
    """None if ``value`` is usable text, else why not (naming field ``name``).

    Refused: not a str, empty or blank (unless ``allow_empty``), longer than ``max_chars``,
    NUL or any other control or unprintable character (``str.isprintable``: also lone
    surrogates, line and paragraph separators), U+FFFD (not UTF-8 on the wire).
    """
    if not isinstance(value, str):
        return f"field '{name}' must be text, not {type(value).__name__}"
    if not value.strip():
        return None if allow_empty and not value else f"field '{name}' is empty"
    if len(value) > max_chars:
        return f"field '{name}' is {len(value)} characters long, at most {max_chars}"
    if "\x00" in value:
        return f"field '{name}' contains a NUL character"
    if REPLACEMENT in value:
        return f"field '{name}' was not valid UTF-8 (it contains U+FFFD)"
    if not value.isprintable():
        return f"field '{name}' = {value!r} contains control characters"
    return None


def check_text(name: str, value: object, **limits: Any) -> str:
    """``value`` if :func:`text_problem` finds nothing; raises :class:`FieldError` otherwise."""
    problem = text_problem(name, value, **limits)
    if problem:
        raise FieldError(problem)
    assert isinstance(value, str)
    return value


def _shown(value: int) -> str:
    """An int for a message: its digits, or its size when huge (str() of it can raise)."""
    return str(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"


def int_in(name: str, value: object, low: int, high: int) -> int:
    """An integer field in ``[low, high]``; never converts (so never overflows).

    Raises:
        FieldError: a bool, a float (also 3.0), a string, or an int out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"field '{name}' must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise FieldError(f"field '{name}' = {_shown(value)} not in {low}..{high}")
    return value


def finite_in(name: str, value: object, low: float, high: float) -> float:
    """A finite number in ``[low, high]`` (an int too large for a float is refused, not raised).

    Raises:
        FieldError: not a number, NaN or infinite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"field '{name}' must be a number, not {type(value).__name__}")
    if isinstance(value, int) and not low <= value <= high:
        raise FieldError(f"field '{name}' = {_shown(value)} not in [{low:g}, {high:g}]")
    number = float(value)
    if not math.isfinite(number):
        raise FieldError(f"field '{name}' = {number} is not finite")
    if not low <= number <= high:
        raise FieldError(f"field '{name}' = {number:g} not in [{low:g}, {high:g}]")
    return number


def nesting_depth(text: str) -> int:
    """Deepest nesting of JSON ``[`` / ``{`` in ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: object, name: str, *, max_chars: int = MAX_JSON, max_depth: int = 2) -> Any:
    """Parse JSON text of at most ``max_chars`` characters and ``max_depth`` levels.

    NaN and Infinity (which Python's decoder accepts) are refused, as are numbers whose
    conversion overflows.

    Raises:
        FieldError: naming ``name`` and what is wrong.
    """
    if not isinstance(text, str):
        raise FieldError(f"{name} must be JSON text, not {type(text).__name__}")
    if len(text) > max_chars:
        raise FieldError(f"{name} is {len(text)} characters long, at most {max_chars}")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise FieldError(f"{name} nests {depth} levels deep, at most {max_depth}")

    def constant(word: str) -> Any:
        raise FieldError(f"{name} contains {word}, which is not JSON")

    try:
        return json.loads(text, parse_constant=constant)
    except FieldError:
        raise
    except (ValueError, RecursionError, OverflowError) as err:  # JSONDecodeError is a ValueError
        raise FieldError(f"{name} is not valid JSON: {err}") from None


def json_object(
    text: object, name: str, *, max_chars: int = MAX_JSON, max_depth: int = 1
) -> dict[str, Any]:
    """Like :func:`parse_json`, and the value must be an object (a dict).

    Raises:
        FieldError: naming ``name``.
    """
    value = parse_json(text, name, max_chars=max_chars, max_depth=max_depth)
    if not isinstance(value, dict):
        raise FieldError(f"{name} must be a JSON object, not {type(value).__name__}")
    return value
