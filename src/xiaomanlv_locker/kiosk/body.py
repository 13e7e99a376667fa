"""Total parsing of the kiosk's JSON request bodies: anything but a small flat object is refused.

:func:`parse_object` turns the raw bytes of a ``POST`` body into a ``dict`` or raises
:class:`BodyError` naming what is wrong, for every input: bytes that are not UTF-8 (RFC 8259
section 8.1 requires it), text that is not JSON, a top level that is not an object, nesting
deeper than ``max_depth`` (checked before the decoder recurses, so no ``RecursionError``),
``NaN``/``Infinity`` (not JSON at all, though Python's decoder takes them), integers longer
than ``MAX_INT_DIGITS`` and floats that overflow, and keys that appear twice (two parsers could
read different values). :func:`text_problem` says why a string field cannot go to the locker
(control characters including NUL, unpaired surrogates that no ROS string can carry, length).

The JSON grammar: RFC 8259, https://www.rfc-editor.org/rfc/rfc8259
"""

from __future__ import annotations

import json
import math
from typing import Any

from xiaomanlv_locker.fields import nesting_depth

MAX_DEPTH = 4  # the kiosk's bodies are flat objects; a little room for future fields
MAX_INT_DIGITS = 32  # a longer integer literal is refused before int() parses it


class BodyError(ValueError):
    """A request body the kiosk cannot use; the message says why, for the client."""


def parse_object(raw: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Decode ``raw`` as one JSON object.

    Raises:
        BodyError: naming the problem (encoding, syntax, depth, a number, a duplicate key,
            or a top level that is not an object).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(
            f"the body is not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})"
        ) from None
    if not text.strip():
        raise BodyError("the body is empty; send a JSON object")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise BodyError(f"the JSON is nested deeper than {max_depth} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=_int,
            parse_float=_float,
            object_pairs_hook=_unique_keys,
        )
    except BodyError:
        raise
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise BodyError(f"the body is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise BodyError(f"send a JSON object, not {_json_kind(value)}")
    return value


def text_problem(value: str, max_length: int) -> str | None:
    """Why string ``value`` cannot be sent on (None if it can): too long, or a character
    that is not printable (control characters such as NUL or newline, format characters,
    unpaired surrogates, unassigned code points) - the locker refuses the same."""
    if len(value) > max_length:
        return f"is too long ({len(value)} characters, at most {max_length})"
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        return f"contains a control or unprintable character (U+{ord(bad):04X})"
    return None


def _no_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number")


def _int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise BodyError(f"an integer of {digits} digits is too long (at most {MAX_INT_DIGITS})")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > 64:
        raise BodyError(f"a number of {len(literal)} characters is too long (at most 64)")
    value = float(literal)
    if not math.isfinite(value):
        raise BodyError(f"the number {literal[:24]} overflows")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BodyError(f"the key {key[:40]!r} appears twice")
        out[key] = value
    return out


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
