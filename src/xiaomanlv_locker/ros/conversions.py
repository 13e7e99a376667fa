"""Message conversions for the locker node (core dataclasses <-> xiaomanlv interfaces)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from xiaomanlv.msg import CompartmentStatus, LockerEvent

from xiaomanlv_locker.audit import AuditEvent
from xiaomanlv_locker.locker import CompartmentView


def wall_to_time(seconds: float) -> Time:
    """Unix seconds -> builtin_interfaces/Time (0 for a non-finite or negative value)."""
    if not math.isfinite(seconds) or seconds <= 0.0:
        return Time()
    whole = math.floor(seconds)
    return Time(sec=int(whole), nanosec=int((seconds - whole) * 1e9))


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
    values = [KeyValue(key=k, value=str(v)) for k, v in sorted(counts.items())]
    values += [
        KeyValue(key="armed_stop", value=armed_stop),
        KeyValue(key="moving", value=str(moving).lower()),
        KeyValue(key="motion", value=motion or "parked"),
        KeyValue(key="malformed_messages", value=str(malformed)),
        KeyValue(key="internal_errors", value=str(internal_errors)),
        KeyValue(key="site_stops", value="unknown" if stops is None else str(stops)),
    ]
    values += [
        KeyValue(key=f"rejected_{kind}", value=str(n))
        for kind, n in sorted((rejections or {}).items())
    ]
    return DiagnosticStatus(level=level, name=name, message=message, values=values)
