"""Locker messages to the kiosk's plain dataclasses."""

from __future__ import annotations

from typing import Any

from xiaomanlv_locker.kiosk.client import CodeResult, CompartmentView, LoadResult

MAX_COMPARTMENT = 50


def stamp_seconds(stamp: Any) -> float | None:
    """builtin_interfaces/Time -> [s] since the epoch of its clock; None for the zero time."""
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def compartment_view(msg: Any, age: float = 0.0) -> CompartmentView:
    """xiaomanlv/CompartmentStatus -> CompartmentView (drops parcel id and stop).

    Raises:
        ValueError: the compartment number is outside 1..50.
    """
    number = int(msg.compartment)
    if not 1 <= number <= MAX_COMPARTMENT:
        raise ValueError(f"compartment {number} is outside 1..{MAX_COMPARTMENT}")
    return CompartmentView(
        compartment=number,
        size=str(msg.size),
        state=str(msg.state),
        door_closed=bool(msg.door_closed),
        fault=str(msg.fault),
        age=age,
    )


def code_result(response: Any) -> CodeResult:
    """xiaomanlv/SubmitCode response -> CodeResult."""
    return CodeResult(
        success=bool(response.success),
        compartment=int(response.compartment),
        message=str(response.message),
        retry_after=float(response.retry_after),
    )


def load_result(response: Any) -> LoadResult:
    """xiaomanlv/LoadParcel response -> LoadResult."""
    return LoadResult(
        success=bool(response.success),
        message=str(response.message),
        compartment=int(response.compartment),
        expires=stamp_seconds(response.expires) if response.success else None,
    )
