"""Content checks: is a sensor reading usable, not only did it arrive.

A stream can arrive at its rate and still be worthless: a lidar that sends empty clouds, an IMU
whose filter diverged to NaN, a driver that republishes an old message, a second publisher
feeding made-up readings into the same topic. Each function here judges one aspect of one
reading from plain values (numpy arrays and numbers, extracted by the node) and returns a
:class:`Verdict`: OK, or a level with a cause that names the problem.

What counts as valid follows the message definitions and REPs:

- ranges (sensor_msgs/Range, LaserScan), REP 117: ``+inf`` is "nothing within max range" and
  ``-inf`` "closer than min range", both valid; NaN is an invalid reading;
- IMU (sensor_msgs/Imu), REP 145: a covariance whose first element is -1 marks a quantity the
  sensor does not provide, so its values are not judged;
- GNSS (sensor_msgs/NavSatFix): status ``STATUS_NO_FIX`` (-1) is a content state (WARN: no
  position, not a broken receiver) and its latitude/longitude may then be NaN; with a fix they
  must be finite and on the globe; a NaN altitude means "not available" and is valid;
- header stamps are judged against the node's ROS clock (simulated time in simulation): older
  than ``max_age`` or ahead by more than ``max_lead`` is an ERROR; a clock that has not started
  (0, before the first /clock) judges nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Verdict:
    """The judgement of one reading: ``level`` and a ``cause`` naming the problem ("" if OK)."""

    level: Level = Level.OK
    cause: str = ""

    @property
    def ok(self) -> bool:
        return self.level == Level.OK


OK = Verdict()

NAVSAT_NO_FIX = -1  # sensor_msgs/NavSatStatus.STATUS_NO_FIX
NAVSAT_STATUSES = range(-2, 3)  # STATUS_UNKNOWN (-2, Jazzy) .. STATUS_GBAS_FIX (2)


def error(cause: str) -> Verdict:
    return Verdict(Level.ERROR, cause)


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The verdict with the highest level (the first of equals); OK for none."""
    found = OK
    for verdict in verdicts:
        if verdict.level > found.level:
            found = verdict
    return found


def _finite(values: ArrayLike) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def _non_finite(**vectors: ArrayLike) -> Verdict:
    bad = [name for name, values in vectors.items() if not _finite(values)]
    return error(f"non-finite {', '.join(bad)}") if bad else OK


def stamp_verdict(stamp: float, now: float, max_age: float, max_lead: float) -> Verdict:
    """Judge a header ``stamp`` [s] against the ROS clock ``now`` [s].

    Args:
        max_age: [s] a stamp older than this is an ERROR.
        max_lead: [s] a stamp further ahead of ``now`` than this is an ERROR.
    """
    if not np.isfinite(stamp):
        return error("stamp is not a finite time")
    if now <= 0.0:
        return OK  # the ROS clock has not started (no /clock yet): nothing to judge against
    age = now - stamp
    if age > max_age:
        if stamp == 0.0:
            return error("unstamped (header stamp 0)")
        return error(f"stamp {age:.2f} s old (limit {max_age:g} s)")
    if -age > max_lead:
        return error(f"stamp {-age:.2f} s in the future (limit {max_lead:g} s)")
    return OK


def cloud_verdict(points: ArrayLike, count: int) -> Verdict:
    """A point cloud of ``count`` (width x height) points whose x, y, z are ``points`` (N, 3) [m].

    Empty (no points) and all non-finite (every point has a NaN or inf coordinate) are ERRORs;
    some non-finite points are normal (an organised cloud marks "no return" with NaN).
    """
    if count == 0:
        return error("empty cloud (0 points)")
    xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(xyz).all(axis=1).any():
        return error(f"all {count} points non-finite")
    return OK


def scan_verdict(ranges: ArrayLike) -> Verdict:
    """A LaserScan's ``ranges`` [m]: none, or all NaN, is an ERROR (REP 117: inf is valid)."""
    values = np.asarray(ranges, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return error("empty scan (no ranges)")
    if np.isnan(values).all():
        return error(f"all {values.size} ranges NaN")
    return OK


def range_verdict(value: float) -> Verdict:
    """A Range reading [m]: NaN is an ERROR; +inf / -inf are valid (REP 117)."""
    return error("range is NaN") if np.isnan(value) else OK


def imu_verdict(
    orientation: ArrayLike,
    angular_velocity: ArrayLike,
    linear_acceleration: ArrayLike,
    provided: tuple[bool, bool, bool] = (True, True, True),
) -> Verdict:
    """An IMU reading: quaternion (x, y, z, w), rad/s and m/s^2 3-vectors.

    ``provided`` says which of the three the sensor reports (REP 145: covariance[0] == -1
    means not provided); only provided quantities are judged.
    """
    vectors = {
        "orientation": orientation,
        "angular_velocity": angular_velocity,
        "linear_acceleration": linear_acceleration,
    }
    return _non_finite(
        **{name: v for (name, v), given in zip(vectors.items(), provided, strict=True) if given}
    )


def odometry_verdict(
    position: ArrayLike, orientation: ArrayLike, linear: ArrayLike, angular: ArrayLike
) -> Verdict:
    """An odometry reading: pose position [m], quaternion, twist linear [m/s], angular [rad/s]."""
    return _non_finite(
        position=position, orientation=orientation, linear_velocity=linear, angular_velocity=angular
    )


def fix_verdict(status: int, latitude: float, longitude: float) -> Verdict:
    """A NavSatFix: no fix is a WARN; with a fix, latitude [deg] in [-90, 90] and longitude
    [deg] in [-180, 180], finite; a status that is no NavSatStatus value is an ERROR."""
    if status not in NAVSAT_STATUSES:
        return error(f"fix status {status} is not a NavSatStatus value")
    if status == NAVSAT_NO_FIX:
        return Verdict(Level.WARN, "no fix")
    if status < NAVSAT_NO_FIX:
        return Verdict(Level.WARN, "fix status unknown")
    if not _finite([latitude, longitude]):
        return error("non-finite latitude/longitude with a fix")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return error(f"position ({latitude:g}, {longitude:g}) deg is off the globe")
    return OK


def publishers_verdict(count: int, allowed: int, names: Sequence[str] = ()) -> Verdict:
    """More publishers on a topic than the ``allowed`` ones is an ERROR naming them."""
    if count <= allowed:
        return OK
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    who = f" ({shown})" if shown else ""
    return error(f"{count} publishers{who}, {allowed} declared")
