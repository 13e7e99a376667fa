"""What the Gazebo path needs beyond the bridge: ultrasonic scans reduced to ranges.

Gazebo Harmonic has no ultrasonic (sonar) sensor, so models/xiaomanlv/model.sdf models each of
the eight rangers as a narrow ``gpu_lidar`` (docs/robot.md). ros_gz_bridge delivers those as
``sensor_msgs/LaserScan`` on ``/ultrasonic/<where>/scan``; the stack expects a
``sensor_msgs/Range`` on ``/ultrasonic/<where>``, as the headless simulator publishes. A ranger
reports its first echo: the nearest return in its cone, with REP 117's infinities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class ScanError(ValueError):
    """A LaserScan that cannot describe a ranger (the message names the field)."""


def range_from_scan(ranges: Sequence[float], range_min: float, range_max: float) -> float:
    """The first echo of a cone scanned as ``ranges`` [m], as REP 117 reports it.

    Returns the smallest reading within [range_min, range_max]; ``-inf`` when the nearest
    echo is closer than range_min (something touches the sensor); ``+inf`` when no ray
    returned. NaN readings are ignored (invalid measurements).

    Raises:
        ScanError: range_min/range_max are not finite, negative or out of order.
    """
    if not (math.isfinite(range_min) and math.isfinite(range_max)):
        raise ScanError(f"range_min/range_max must be finite, got {range_min}, {range_max}")
    if range_min < 0.0 or range_max <= range_min:
        raise ScanError(f"need 0 <= range_min < range_max, got {range_min}, {range_max}")
    nearest = math.inf
    too_close = False
    for r in ranges:
        if math.isnan(r):
            continue
        if r < range_min:  # -inf (REP 117) or a reading under the minimum
            too_close = True
        elif r <= range_max:
            nearest = min(nearest, r)
    if too_close:
        return -math.inf
    return nearest
