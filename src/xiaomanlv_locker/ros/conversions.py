"""Message conversions for the locker node (core dataclasses <-> xiaomanlv interfaces)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from xiaomanlv.msg import CompartmentStatus, LockerEvent

from xiaomanlv_core.ros.diagnostics import diagnostic_status
from xiaomanlv_core.ros.time import MAX_SEC, stamp_of
from xiaomanlv_locker.audit import AuditEvent
from xiaomanlv_locker.locker import CompartmentView


def wall_to_time(seconds: float) -> Time:
    """Unix seconds -> builtin_interfaces/Time; the zero Time ("not set") for a value that is
    no wall time: non-finite, zero or negative, or beyond what a Time holds (2**31 s)."""
    if not math.isfinite(seconds) or seconds <= 0.0 or seconds >= MAX_SEC + 1:
        return Time()
    return stamp_of(seconds)


def status_to_msg(view: CompartmentView, stamp: Time) -> CompartmentStatus:
    msg = CompartmentStatus()
    msg.header.stamp = stamp
    msg.header.frame_id = "base_link"
    msg.compartment = view.number
    msg.size = view.size
    msg.state = view.state
    msg.parcel_id = view.parcel_id
    msg.stop = view.stop
    msg.door_closed = view.door_closed
    msg.locked = view.locked
    msg.parcel_present = view.parcel_present
    msg.fault = view.fault
    return msg


def event_to_msg(event: AuditEvent) -> LockerEvent:
    """An audit row as a LockerEvent, stamped with the time it was committed."""
    msg = LockerEvent()
    msg.header.stamp = wall_to_time(event.stamp)
    msg.seq = event.seq
    msg.kind = event.kind
    msg.compartment = event.compartment
    msg.parcel_id = event.parcel_id
    msg.stop = event.stop
    msg.detail = event.detail
    return msg


def locker_diagnostics(
    name: str,
    counts: dict[str, int],
    armed_stop: str,
    moving: bool,
    malformed: int,
    *,
    rejections: Mapping[str, int] | None = None,
    internal_errors: int = 0,
    stops: int | None = 0,
    motion: str = "",
) -> DiagnosticStatus:
    """One status for the locker: WARN with faults or while the site's stops are unknown
    (``stops`` None), ERROR never (faults are per door).

    Values: counts per state, faults, ``armed_stop``, ``moving`` and why (``motion``),
    ``malformed_messages`` (every rejected input) with ``rejected_<kind>`` per kind,
    ``internal_errors`` (exceptions the node's safety net caught), ``site_stops``.
    """
    faults = counts.get("faults", 0)
    problems = [f"{faults} compartment fault(s)"] if faults else []
    if stops is None:
        problems.append("site stops unknown (no /map/stops yet)")
    level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    message = "; ".join(problems) if problems else "ok"
    values: dict[str, Any] = dict(sorted(counts.items()))
    values |= {
        "armed_stop": armed_stop,
        "moving": str(moving).lower(),
        "motion": motion or "parked",
        "malformed_messages": malformed,
        "internal_errors": internal_errors,
        "site_stops": "unknown" if stops is None else stops,
    }
    values |= {f"rejected_{kind}": n for kind, n in sorted((rejections or {}).items())}
    return diagnostic_status(name, level, message, values)
