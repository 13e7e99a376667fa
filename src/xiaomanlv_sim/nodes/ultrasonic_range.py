"""ultrasonic_range: Gazebo's ultrasonic gpu_lidar scans -> sensor_msgs/Range (Gazebo path only).

Subscribes ``/ultrasonic/<where>/scan`` (LaserScan, from ros_gz_bridge with config/gz_bridge.yaml)
and publishes ``/ultrasonic/<where>`` (Range, ULTRASOUND) with the scan's header, the cone's
horizontal field of view and its limits; the range is the first echo
(:func:`xiaomanlv_sim.gazebo.range_from_scan`). A malformed scan is counted and reported on
/diagnostics, never fatal. The headless simulator publishes Range directly and does not need it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import LaserScan, Range

from xiaomanlv_nav.config import ConfigError
from xiaomanlv_nav.ros.entry import run_node
from xiaomanlv_nav.ros.params import declare_config
from xiaomanlv_sim.assets import robot_model_file
from xiaomanlv_sim.gazebo import ScanError, UltrasonicRangeConfig, range_from_scan
from xiaomanlv_sim.ros.qos import SENSOR_QOS
from xiaomanlv_sim.sdf import SdfError, load_robot

PREFIX = "ultrasonic_"


def model_rangers() -> tuple[str, ...]:
    """The <where> of every ultrasonic_<where> sensor in the robot model, in file order."""
    try:
        robot = load_robot(robot_model_file())
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
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(
            1.0 / self.config.diagnostics_rate, self._publish_diagnostics, clock=steady
        )

    def _on_scan(self, name: str, scan: LaserScan) -> None:
        try:
            distance = range_from_scan(scan.ranges, scan.range_min, scan.range_max)
        except ScanError as err:
            self.malformed += 1
            self._last_error = f"/ultrasonic/{name}/scan: {err}"
            self.get_logger().warn(self._last_error, throttle_duration_sec=5.0)
            return
        msg = Range(
            header=scan.header,
            radiation_type=Range.ULTRASOUND,
            field_of_view=float(abs(scan.angle_max - scan.angle_min)),
            min_range=float(scan.range_min),
            max_range=float(scan.range_max),
            range=float(distance),
        )
        self._pubs[name].publish(msg)
        self.converted += 1

    def _publish_diagnostics(self) -> None:
        level = DiagnosticStatus.WARN if self.malformed else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name().lstrip('/')}: summary",
            message=self._last_error or "converting",
            hardware_id="xiaomanlv_ultrasonic",
            values=[
                KeyValue(key="converted", value=str(self.converted)),
                KeyValue(key="malformed_messages", value=str(self.malformed)),
                KeyValue(key="rangers", value=", ".join(self._pubs)),
            ],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(array)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(UltrasonicRangeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
