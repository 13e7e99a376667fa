"""Typed access to parsed YAML or JSON whose every error names the file and the field.

A reader walks its parsed document (a map file, the /map/stops JSON) through one
:class:`Fields`, so a bad value comes back as one error naming where it came from, such as
``maps/university/map.yaml: resolution: expected a positive number, got -1``. The error type
is the reader's: :class:`FormatError` by default, a subclass (the mapping package's
``MapFormatError``) where the reader has its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class FormatError(ValueError):
    """A document (file or message) whose content does not have the expected form."""


def shown(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """Typed access to parsed YAML or JSON; every error names the file (label) and the field."""

    def __init__(self, label: str, error: type[FormatError] = FormatError) -> None:
        self.label = label
        self.error = error

    def fail(self, field: str, message: str) -> FormatError:
        """The error (not raised) naming this document, ``field`` and ``message``."""
        return self.error(f"{self.label}: {field or 'top level'}: {message}")

    def mapping(
        self,
        value: Any,
        field: str,
        required: Iterable[str] = (),
        known: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """A mapping with ``required`` keys; only ``known`` ones when given."""
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping, got {shown(value)}")
        prefix = f"{field}." if field else ""
        if known is not None:
            allowed = set(known) | set(required)
            for key in value:
                if key not in allowed:
                    names = ", ".join(sorted(allowed))
                    raise self.fail(f"{prefix}{key}", f"unknown key (known: {names})")
        for key in required:
            if key not in value:
                raise self.fail(f"{prefix}{key}", "missing")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {shown(value)}")
        return value

    def text(self, value: Any, field: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            kind = "a string" if empty else "a non-empty string"
            raise self.fail(field, f"expected {kind}, got {shown(value)}")
        return value

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"expected a number, got {shown(value)}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite number, got {shown(value)}")
        return float(value)

    def positive(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(field, f"expected a positive number, got {shown(value)}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite positive number, got {shown(value)}")
        return float(value)

    def in_range(self, value: Any, field: str, low: float, high: float, unit: str) -> float:
        number = self.number(value, field)
        if not low <= number <= high:
            raise self.fail(field, f"{shown(value)} is out of range [{low:g}, {high:g}] {unit}")
        return number

    def integer(self, value: Any, field: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"expected an integer, got {shown(value)}")
        if low is not None and value < low:
            raise self.fail(field, f"expected an integer >= {low}, got {value}")
        return value

    def xy(self, value: Any, field: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(field, f"expected [x, y], got {shown(value)}")
        return (self.number(value[0], f"{field}[0]"), self.number(value[1], f"{field}[1]"))
