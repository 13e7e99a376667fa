"""Message conversions for the locker node (core dataclasses <-> xiaomanlv interfaces)."""

from __future__ import annotations

import math

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
    name: str, counts: dict[str, int], armed_stop: str, moving: bool, malformed: int
) -> DiagnosticStatus:
    """One status for the locker: WARN with faults, ERROR never (faults are per door)."""
    faults = counts.get("faults", 0)
    level = DiagnosticStatus.WARN if faults else DiagnosticStatus.OK
    message = f"{faults} compartment fault(s)" if faults else "ok"
    values = [KeyValue(key=k, value=str(v)) for k, v in sorted(counts.items())]
    values += [
        KeyValue(key="armed_stop", value=armed_stop),
        KeyValue(key="moving", value=str(moving).lower()),
        KeyValue(key="malformed_messages", value=str(malformed)),
    ]
    return DiagnosticStatus(level=level, name=name, message=message, values=values)
