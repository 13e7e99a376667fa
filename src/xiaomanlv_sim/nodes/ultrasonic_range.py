"""ultrasonic_range: Gazebo's ultrasonic gpu_lidar scans -> sensor_msgs/Range (Gazebo path only).

Subscribes ``/ultrasonic/<where>/scan`` (LaserScan, from ros_gz_bridge with config/gz_bridge.yaml)
and publishes ``/ultrasonic/<where>`` (Range, ULTRASOUND) with the scan's header, the cone's
horizontal field of view and its limits; the range is the first echo
(:func:`xiaomanlv_sim.gazebo.range_from_scan`). A malformed scan (limits not finite or out of
order, a cone that is not finite or wider than a full turn: a float32 Range cannot hold
3e38 - -3e38) is counted and reported on /diagnostics, never fatal; so is anything else a
callback raises (:mod:`xiaomanlv_core.ros.guard`). ``sensors`` cannot change at run time (a
change is refused with the reason); ``diagnostics_rate`` can. The headless simulator
publishes Range directly and does not need it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import LaserScan, Range

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_core.ros.qos import SENSOR_QOS
from xiaomanlv_core.sdformat import SdfError
from xiaomanlv_sim.config import UltrasonicRangeConfig
from xiaomanlv_sim.gazebo import ScanError, range_from_scan

PREFIX = "ultrasonic_"


def model_rangers() -> tuple[str, ...]:
    """The <where> of every ultrasonic_<where> sensor in the robot model, in file order."""
    try:
        robot = load_robot(model_file())
    except (SdfError, OSError) as err:
        raise ConfigError(f"sensors: cannot read the robot model: {err}") from None
    return tuple(s.name.removeprefix(PREFIX) for s in robot.ultrasonic)


class UltrasonicRangeNode(Node):
    def __init__(self) -> None:
        super().__init__("ultrasonic_range")
        self.config = declare_config(self, UltrasonicRangeConfig)
        names = self.config.sensors or model_rangers()
        bad = [n for n in names if not n or "/" in n]
        if bad:
            raise ConfigError(f"sensors: {bad!r} are not ranger names like 'front_left'")
        self.converted = 0
        self.malformed = 0
        self._last_error = ""
        self._pubs = {
            n: self.create_publisher(Range, f"/ultrasonic/{n}", SENSOR_QOS) for n in names
        }
        for name in names:
            self.create_subscription(
                LaserScan,
                f"/ultrasonic/{name}/scan",
                functools.partial(self._on_scan, name),
                SENSOR_QOS,
            )
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady clock: diagnostics keep coming when simulated time stalls.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._diag_timer = self.create_timer(
            1.0 / self.config.diagnostics_rate, self._publish_diagnostics, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        self._guard = guard_node(self)

    def _on_scan(self, name: str, scan: LaserScan) -> None:
        try:
            distance = range_from_scan(scan.ranges, scan.range_min, scan.range_max)
            field_of_view = float(scan.angle_max) - float(scan.angle_min)
            if not 0.0 <= abs(field_of_view) <= 2.0 * math.pi:  # NaN fails too
                raise ScanError(
                    f"angle_min={scan.angle_min:g}, angle_max={scan.angle_max:g}: the cone "
                    "must be finite and at most a full turn"
                )
        except ScanError as err:
            self.malformed += 1
            self._last_error = f"/ultrasonic/{name}/scan: {err}"
            self.get_logger().warn(self._last_error, throttle_duration_sec=5.0)
            return
        msg = Range(
            header=scan.header,
            radiation_type=Range.ULTRASOUND,
            field_of_view=abs(field_of_view),
            min_range=float(scan.range_min),
            max_range=float(scan.range_max),
            range=float(distance),
        )
        self._pubs[name].publish(msg)
        self.converted += 1

    def _publish_diagnostics(self) -> None:
        level = DiagnosticStatus.WARN if self.malformed else DiagnosticStatus.OK
        values = {
            "converted": self.converted,
            "malformed_messages": self.malformed,
            "rangers": ", ".join(self._pubs),
            **self._guard.diagnostics_values(),
        }
        status = diagnostic_status(
            f"{self.get_fully_qualified_name().lstrip('/')}: summary",
            level,
            self._last_error or "converting",
            values,
            hardware_id="xiaomanlv_ultrasonic",
        )
        self._pub_diag.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    def _reconfigure(self, config: UltrasonicRangeConfig) -> None:
        if config.sensors != self.config.sensors:
            raise ConfigError("sensors cannot change at run time; restart the node")
        self.config = config
        self._diag_timer = self._guard.replace_timer(
            self._diag_timer, 1.0 / config.diagnostics_rate, self._publish_diagnostics,
            clock=self._steady,
        )  # fmt: skip


def main(args: Sequence[str] | None = None) -> int:
    return run_node(UltrasonicRangeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
