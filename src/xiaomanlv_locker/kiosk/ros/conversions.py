"""Locker messages to the kiosk's plain dataclasses, refusing what the locker never sends.

Anything on the graph can publish a compartment status or answer as the locker, so every
field is checked: compartment numbers within 1..50, sizes and states from the locker's own
vocabulary, a fault that is a short identifier, a finite non-negative ``retry_after`` (infinite:
only an operator clears the lockout), a door number on success. An unusable message raises
``ValueError`` naming the field; the client counts it. Free text the kiosk only shows (a
message) is kept, with unprintable characters replaced and its length capped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from xiaomanlv_core.ros.time import is_zero, seconds_of
from xiaomanlv_locker.kiosk.client import CodeResult, CompartmentView, LoadResult

MAX_COMPARTMENT = 50
MAX_MESSAGE = 500  # [characters] of a locker message the kiosk shows
SIZES = frozenset({"small", "medium", "large"})
STATES = frozenset({"empty", "loaded", "available", "open", "delivered", "returned", "fault"})
_FAULT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def stamp_seconds(stamp: Any) -> float | None:
    """builtin_interfaces/Time -> [s] since the epoch of its clock; None for the zero time."""
    return None if is_zero(stamp) else seconds_of(stamp)


def shown_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` safe to show: unprintable characters as U+FFFD, at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else "\ufffd" for c in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "\u2026"


def compartment_view(msg: Any, age: float = 0.0) -> CompartmentView:
    """xiaomanlv/CompartmentStatus -> CompartmentView (drops parcel id and stop).

    Raises:
        ValueError: the compartment number is outside 1..50, or the size, state or fault is
            not one the locker publishes (naming the field).
    """
    number = int(msg.compartment)
    if not 1 <= number <= MAX_COMPARTMENT:
        raise ValueError(f"compartment {number} is outside 1..{MAX_COMPARTMENT}")
    size, state, fault = str(msg.size), str(msg.state), str(msg.fault)
    if size not in SIZES:
        raise ValueError(f"field 'size' = {size[:40]!r} is not one of {', '.join(sorted(SIZES))}")
    if state not in STATES:
        raise ValueError(f"field 'state' = {state[:40]!r} is not a compartment state")
    if fault and not _FAULT.match(fault):
        raise ValueError(f"field 'fault' = {fault[:40]!r} is not a fault name")
    return CompartmentView(
        compartment=number,
        size=size,
        state=state,
        door_closed=bool(msg.door_closed),
        fault=fault,
        age=age,
    )


def code_result(response: Any) -> CodeResult:
    """xiaomanlv/SubmitCode response -> CodeResult.

    Raises:
        ValueError: ``retry_after`` NaN or negative, or a success without a door 1..50.
    """
    retry_after = float(response.retry_after)
    if math.isnan(retry_after) or retry_after < 0.0:
        raise ValueError(f"field 'retry_after' = {retry_after} must be >= 0")
    success = bool(response.success)
    compartment = _door(response.compartment, success)
    return CodeResult(
        success=success,
        compartment=compartment,
        message=shown_text(str(response.message)),
        retry_after=retry_after,
    )


def load_result(response: Any) -> LoadResult:
    """xiaomanlv/LoadParcel response -> LoadResult.

    Raises:
        ValueError: a success without a compartment 1..50.
    """
    success = bool(response.success)
    return LoadResult(
        success=success,
        message=shown_text(str(response.message)),
        compartment=_door(response.compartment, success),
        expires=stamp_seconds(response.expires) if success else None,
    )


def _door(value: Any, success: bool) -> int:
    number = int(value)
    if success and not 1 <= number <= MAX_COMPARTMENT:
        raise ValueError(f"field 'compartment' = {number} is outside 1..{MAX_COMPARTMENT}")
    return number if success else 0
