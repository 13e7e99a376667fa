"""The scenario's faults as the simulator applies them, by sim time.

- SensorDropout: the named sensor (``lidar``, ``imu``, ``gnss``, ``odom``, or ``ultrasonic``
  for all eight rangers) emits nothing while ``start <= t < end``.
- GnssJump: every fix in ``start <= t < end`` is moved by ``offset`` (east, north) [m].
- ImuBiasStep: from ``start`` on, the gyro and accelerometer biases grow by the step (steps add).
- WheelSlipPatch: a wheel whose contact point is inside the disc loses ``slip`` of its travel
  while ``start <= t < end`` (end None: forever); overlapping patches take the largest slip.
- DoorJam: the locker hardware reports compartment ``compartment`` jammed while
  ``start <= t < end`` (:meth:`Faults.door_jammed`); the locker work reads it.

Windows are half-open ``[start, end)``. :meth:`Faults.transitions` lists when each fault starts
and ends, for the ground-truth event stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.scenario import (
    DoorJam,
    Fault,
    GnssJump,
    ImuBiasStep,
    SensorDropout,
    WheelSlipPatch,
)


def _active(t: float, start: float, end: float | None) -> bool:
    return start <= t and (end is None or t < end)


@dataclass(frozen=True)
class FaultTransition:
    time: float  # [s]
    kind: str  # "fault_start" | "fault_end"
    detail: str  # e.g. "SensorDropout lidar"


def describe(fault: Fault) -> str:
    """A short human text for a fault, e.g. ``SensorDropout lidar``."""
    if isinstance(fault, SensorDropout):
        return f"SensorDropout {fault.sensor}"
    if isinstance(fault, GnssJump):
        return f"GnssJump {fault.offset[0]:g},{fault.offset[1]:g} m"
    if isinstance(fault, ImuBiasStep):
        return f"ImuBiasStep gyro={fault.gyro} accel={fault.accel}"
    if isinstance(fault, WheelSlipPatch):
        cx, cy = fault.center
        return f"WheelSlipPatch at {cx:g},{cy:g} r={fault.radius:g} slip={fault.slip:g}"
    return f"DoorJam compartment {fault.compartment}"


class Faults:
    """Look-ups of the active faults at a sim time (see module docstring)."""

    def __init__(self, faults: Sequence[Fault] = ()) -> None:
        self.faults = tuple(faults)
        self.dropouts = [f for f in self.faults if isinstance(f, SensorDropout)]
        self.jumps = [f for f in self.faults if isinstance(f, GnssJump)]
        self.bias_steps = [f for f in self.faults if isinstance(f, ImuBiasStep)]
        self.patches = [f for f in self.faults if isinstance(f, WheelSlipPatch)]
        self.jams = [f for f in self.faults if isinstance(f, DoorJam)]
        self.has_dropouts = bool(self.dropouts)  # checked every reading: skip the calls
        self.has_bias_steps = bool(self.bias_steps)
        # ImuBiasStep sums from each distinct start on (they only ever add up).
        starts = sorted({b.start for b in self.bias_steps})
        self._bias_sums = [
            (
                start,
                np.sum([b.gyro for b in self.bias_steps if b.start <= start], axis=0, dtype=float),
                np.sum([b.accel for b in self.bias_steps if b.start <= start], axis=0, dtype=float),
            )
            for start in starts
        ]
        if self.patches:
            self._centres = np.array([p.center for p in self.patches], float)
            self._radii2 = np.array([p.radius**2 for p in self.patches])

    def dropped(self, sensor: str, t: float) -> bool:
        """True while a SensorDropout of ``sensor`` covers sim time ``t`` [s]."""
        return any(d.sensor == sensor and _active(t, d.start, d.end) for d in self.dropouts)

    def gnss_offset(self, t: float) -> tuple[float, float]:
        """[m] east, north offset the active GnssJump faults add at ``t``."""
        e = n = 0.0
        for j in self.jumps:
            if _active(t, j.start, j.end):
                e += j.offset[0]
                n += j.offset[1]
        return e, n

    def imu_bias(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """(gyro [rad/s], accel [m/s^2]) bias added from the ImuBiasSteps begun by ``t``, or
        None when none has."""
        out = None
        for start, gyro, accel in self._bias_sums:
            if start > t:
                break
            out = gyro, accel
        return None if out is None else (out[0].copy(), out[1].copy())

    def wheel_slip(self, xy: NDArray[np.float64], t: float) -> NDArray[np.float64]:
        """(N,) slip share 0..1 at the (N, 2) world points ``xy`` [m] at time ``t``."""
        out = np.zeros(len(xy))
        if not self.patches:
            return out
        d2 = ((np.asarray(xy, float)[:, None, :] - self._centres[None]) ** 2).sum(axis=2)
        for k, patch in enumerate(self.patches):
            if _active(t, patch.start, patch.end):
                inside = d2[:, k] <= self._radii2[k]
                out = np.where(inside, np.maximum(out, patch.slip), out)
        return out

    def has_slip_patches(self) -> bool:
        return bool(self.patches)

    def door_jammed(self, compartment: int, t: float) -> bool:
        """True while a DoorJam holds compartment ``compartment`` (1..50) shut at ``t`` [s]."""
        return any(j.compartment == compartment and _active(t, j.start, j.end) for j in self.jams)

    def transitions(self) -> list[FaultTransition]:
        """Every fault's start and (if any) end, sorted by time."""
        out: list[FaultTransition] = []
        for f in self.faults:
            text = describe(f)
            out.append(FaultTransition(f.start, "fault_start", text))
            end = getattr(f, "end", None)
            if end is not None and math.isfinite(end):
                out.append(FaultTransition(end, "fault_end", text))
        out.sort(key=lambda tr: (tr.time, tr.kind != "fault_end"))
        return out
