"""sim: the headless simulator as a ROS node, the graph's /clock source.

Runs :class:`xiaomanlv_sim.simulator.Simulator` at ``real_time_factor`` sim seconds per wall
second (0: as fast as it can) and publishes every reading the moment its tick is simulated,
stamped with sim time, plus /clock. It paces itself on the STEADY clock (its timer and its
rate measurement), never on ROS time: it is the /clock source, and the graph's sim profile sets
use_sim_time=true for every node, so a timer on ROS time would wait for a clock only it
advances.

Publishes (all RELIABLE, VOLATILE, KEEP_LAST 10 unless said: the QoS ros_gz_bridge uses by
default; a reliable publisher also serves best-effort subscribers such as the health monitor
and Nav2's SensorDataQoS ones, while a best-effort one would leave reliable subscribers
unmatched): /clock (KEEP_LAST 1), /lidar/points (stamped with the sweep's first column, each
point's time after it in its ``t`` field: docs/simulator.md), /imu/data, /wheel/odom, /gnss/fix,
/gnss/vel (geometry_msgs/TwistWithCovarianceStamped: ENU velocity, only with a fix),
/ultrasonic/<where>, /sim/ground_truth/pose, /sim/ground_truth/odom,
/sim/ground_truth/agents, /sim/ground_truth/events (TRANSIENT_LOCAL, KEEP_LAST 100),
/diagnostics, and the robot's transforms (docs/frames.md): /tf_static base_link -> every sensor
frame of the robot description, latched, sent once at start (again when ``base_frame``
changes); /tf odom -> base_link from the wheel odometry, the pose and stamp of each /wheel/odom
message, as Gazebo's DiffDrive system publishes it (TF_QOS: RELIABLE, VOLATILE, KEEP_LAST 100).
Subscribes /cmd_vel (geometry_msgs/Twist, RELIABLE 10): a command with a non-finite linear.x or
angular.z, or one beyond ``COMMAND_LIMIT_FACTOR`` times the drive's limits in
models/xiaomanlv/model.sdf (no controller means 1e300 m/s), never reaches the dynamics: it is
counted (``malformed_commands`` and ``last_rejection`` in /diagnostics) and the robot is told to
stop, as if its commander had fallen silent. Without a new command for ``cmd_timeout`` sim
seconds the robot is told to stop too.

Parameters that cannot change at run time (world, scenario, seed, crowd, physics, sensors)
and frame names that are empty or hold whitespace or control characters are refused with a
reason. Every callback is guarded (:mod:`xiaomanlv_core.ros.guard`): what the validation did
not foresee is counted (``callback_errors``), never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, Twist, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2, Range
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.frames import sensor_extrinsics
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_core.ros.qos import CLOCK_QOS, SENSOR_QOS, events_qos
from xiaomanlv_core.ros.tf import (
    Broadcaster,
    StaticBroadcaster,
    planar_transform_msg,
    transform_msg,
)
from xiaomanlv_core.ros.time import stamp_of
from xiaomanlv_core.site import SiteError
from xiaomanlv_sim.assets import AssetNotFoundError
from xiaomanlv_sim.config import SimNodeConfig
from xiaomanlv_sim.ros.conversions import (
    agents_to_markers,
    clock_msg,
    event_to_msg,
    gnss_to_msg,
    gnss_velocity_to_msg,
    imu_to_msg,
    lidar_to_msg,
    odom_to_msg,
    range_to_msg,
    truth_odometry_to_msg,
    truth_pose_to_msg,
    twist_to_command,
)
from xiaomanlv_sim.scenario import ScenarioError
from xiaomanlv_sim.sdf import SdfError
from xiaomanlv_sim.sensors.gnss import GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.sensors.ultrasonic import RangeReading
from xiaomanlv_sim.simulator import SensorReading, Simulator, simulator_for

EVENT_HISTORY = 100  # events on /sim/ground_truth/events a late subscriber receives
TIMER_PERIOD = 0.005  # [s] steady; each callback simulates up to the wall-clock target
MAX_LAG = 0.5  # [s] sim; further behind than this the pace is re-anchored (no catch-up burst)
FLAT_OUT_CHUNK = 0.05  # [s] sim per callback at real_time_factor 0
# A /cmd_vel beyond this many times the drive's limits is garbage, not a command the
# DiffDrive limiter should quietly clip (a teleop's scale or a controller's overshoot is less).
COMMAND_LIMIT_FACTOR = 10.0
_FRAME = re.compile(r"^[^\x00-\x20\x7f]{1,256}$")  # no whitespace, no control characters
FRAME_FIELDS = ("world_frame", "odom_frame", "base_frame")


def check_frames(config: SimNodeConfig) -> None:
    """Raises ConfigError naming the first frame parameter that is no usable frame id."""
    for name in FRAME_FIELDS:
        value = getattr(config, name)
        if not _FRAME.match(value):
            raise ConfigError(
                f"parameter '{name}' = {value!r} is not a frame id (1-256 characters, no "
                "whitespace or control characters)"
            )


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.config = declare_config(self, SimNodeConfig)
        check_frames(self.config)
        try:
            self.sim: Simulator = simulator_for(self.config)
        except (ScenarioError, SiteError, SdfError, AssetNotFoundError) as err:
            raise ConfigError(
                f"world '{self.config.world}' / scenario '{self.config.scenario}': {err}"
            ) from None
        cfg = self.config
        self.malformed = 0
        self.last_rejection = ""
        drive = self.sim.robot.drive
        self._max_v = COMMAND_LIMIT_FACTOR * max(abs(drive.max_velocity), abs(drive.min_velocity))
        self._max_w = COMMAND_LIMIT_FACTOR * max(
            abs(drive.max_angular_velocity), abs(drive.min_angular_velocity)
        )
        self.commands = 0
        self.timeouts = 0
        self._last_cmd: float | None = None  # [s] sim time of the last good command
        self._pub_clock = self.create_publisher(ClockMsg, "/clock", CLOCK_QOS)
        self._pub_lidar = self.create_publisher(PointCloud2, "/lidar/points", SENSOR_QOS)
        self._pub_imu = self.create_publisher(Imu, "/imu/data", SENSOR_QOS)
        self._pub_odom = self.create_publisher(Odometry, "/wheel/odom", SENSOR_QOS)
        self._pub_gnss = self.create_publisher(NavSatFix, "/gnss/fix", SENSOR_QOS)
        self._pub_gnss_vel = self.create_publisher(
            TwistWithCovarianceStamped, "/gnss/vel", SENSOR_QOS
        )
        self._pub_range = {
            spec.name: self.create_publisher(Range, "/" + spec.topic.lstrip("/"), SENSOR_QOS)
            for spec in self.sim.robot.ultrasonic
        }
        self._pub_truth = self.create_publisher(PoseStamped, "/sim/ground_truth/pose", SENSOR_QOS)
        self._pub_truth_odom = self.create_publisher(Odometry, "/sim/ground_truth/odom", SENSOR_QOS)
        self._pub_agents = self.create_publisher(
            MarkerArray, "/sim/ground_truth/agents", SENSOR_QOS
        )
        self._pub_events = self.create_publisher(
            String, "/sim/ground_truth/events", events_qos(EVENT_HISTORY)
        )
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tf = Broadcaster(self)
        self._tf_static = StaticBroadcaster(self)
        self._send_sensor_frames()
        self.create_subscription(Twist, "/cmd_vel", self._on_cmd, 10)
        rate = self.sim.physics_rate
        self._clock_every = max(1, round(rate / cfg.clock_rate))
        self._truth_every = max(1, round(rate / cfg.ground_truth_rate))
        self._agents_every = max(1, round(rate / cfg.agents_rate))
        self._anchor()
        self._diag_wall = self._now()
        self._diag_sim = 0.0
        self._timer = self.create_timer(TIMER_PERIOD, self._advance, clock=self._steady)
        self._diag_timer = self.create_timer(
            1.0 / cfg.diagnostics_rate, self._publish_diagnostics, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        self._guard = guard_node(self)
        self._pub_clock.publish(clock_msg(0.0))
        self.get_logger().info(
            f"simulating {self.sim.world.name} (seed {self.sim.seed}) at real-time factor "
            f"{cfg.real_time_factor:g}"
        )

    # ---- pacing -------------------------------------------------------------------------
    def _now(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _anchor(self) -> None:
        """Sim time ``sim.time`` corresponds to the wall time now."""
        self._wall0 = self._now()
        self._sim0 = self.sim.time
        self.lagging = False

    def _advance(self) -> None:
        rtf = self.config.real_time_factor
        if rtf > 0.0:
            target = self._sim0 + (self._now() - self._wall0) * rtf
            if target - self.sim.time > MAX_LAG:
                self.lagging = True
                self._wall0, self._sim0 = self._now(), self.sim.time
                target = self.sim.time + MAX_LAG
        else:
            target = self.sim.time + FLAT_OUT_CHUNK
        # A SIGINT shuts the context down between the ticks of a long catch-up: stop there
        # (one that lands inside a tick makes publish raise; run_node treats that as shutdown).
        while self.sim.time + 0.5 / self.sim.physics_rate <= target and self.context.ok():
            self._tick()

    def _tick(self) -> None:
        sim = self.sim
        cfg = self.config
        if self._last_cmd is not None and sim.time - self._last_cmd > cfg.cmd_timeout:
            sim.set_cmd_vel(0.0, 0.0)
            self._last_cmd = None
            self.timeouts += 1
        readings = sim.step()
        if sim.tick % self._clock_every == 0:
            self._pub_clock.publish(clock_msg(sim.time))
        for reading in readings:
            self._publish(reading)
        if cfg.publish_ground_truth:
            if sim.tick % self._truth_every == 0:
                truth = sim.ground_truth
                self._pub_truth.publish(truth_pose_to_msg(truth, cfg.world_frame))
                self._pub_truth_odom.publish(
                    truth_odometry_to_msg(truth, cfg.world_frame, cfg.base_frame)
                )
            if sim.tick % self._agents_every == 0 and len(sim.ground_truth.agents.ids):
                self._pub_agents.publish(
                    agents_to_markers(sim.ground_truth.agents, sim.time, cfg.world_frame)
                )
            for event in sim.pop_events():
                self._pub_events.publish(event_to_msg(event))
        else:
            sim.pop_events()

    def _send_sensor_frames(self) -> None:
        base = self.config.base_frame
        extrinsics = sensor_extrinsics(self.sim.robot)
        self._tf_static.send(
            transform_msg(pose, base, frame, self.sim.time) for frame, pose in extrinsics.items()
        )

    def _publish(self, reading: SensorReading) -> None:
        if isinstance(reading, OdomReading):
            cfg = self.config
            self._pub_odom.publish(odom_to_msg(reading, cfg.odom_frame, cfg.base_frame))
            x, y, yaw = (float(v) for v in reading.pose)
            self._tf.send(
                [planar_transform_msg(x, y, yaw, cfg.odom_frame, cfg.base_frame, reading.stamp)]
            )
        elif isinstance(reading, ImuReading):
            self._pub_imu.publish(imu_to_msg(reading))
        elif isinstance(reading, GnssReading):
            self._pub_gnss.publish(gnss_to_msg(reading))
            velocity = gnss_velocity_to_msg(reading)
            if velocity is not None:  # none without a fix
                self._pub_gnss_vel.publish(velocity)
        elif isinstance(reading, RangeReading):
            self._pub_range[reading.name].publish(range_to_msg(reading))
        elif isinstance(reading, LidarScan):
            self._pub_lidar.publish(lidar_to_msg(reading))

    # ---- commands and diagnostics -------------------------------------------------------
    def _on_cmd(self, msg: Twist) -> None:
        try:
            linear, angular = twist_to_command(msg)
            if not (abs(linear) <= self._max_v and abs(angular) <= self._max_w):
                raise ValueError(
                    f"cmd_vel linear.x={linear:g} angular.z={angular:g} is beyond "
                    f"{COMMAND_LIMIT_FACTOR:g} x the drive's limits "
                    f"(|v| <= {self._max_v:g} m/s, |w| <= {self._max_w:g} rad/s)"
                )
        except ValueError as err:
            self.malformed += 1
            self.last_rejection = str(err)
            self.get_logger().warn(f"rejected /cmd_vel, stopping: {err}", throttle_duration_sec=5.0)
            self.sim.set_cmd_vel(0.0, 0.0)  # as if the commander had fallen silent
            self._last_cmd = None
            return
        self.commands += 1
        self.sim.set_cmd_vel(linear, angular)
        self._last_cmd = self.sim.time

    def _publish_diagnostics(self) -> None:
        now = self._now()
        sim = self.sim
        wall = now - self._diag_wall
        measured = (sim.time - self._diag_sim) / wall if wall > 0 else 0.0
        self._diag_wall, self._diag_sim = now, sim.time
        truth = sim.ground_truth
        target = self.config.real_time_factor
        level, message = DiagnosticStatus.OK, "running"
        if truth.tipped:
            level, message = DiagnosticStatus.WARN, "robot tipped over"
        elif target > 0.0 and measured < 0.9 * target:
            level, message = DiagnosticStatus.WARN, f"slower than real-time factor {target:g}"
        values = {
            "sim_time": f"{sim.time:.3f}",
            "real_time_factor": f"{measured:.2f}",
            "target_real_time_factor": f"{target:g}",
            "malformed_commands": str(self.malformed),
            "last_rejection": self.last_rejection,
            **self._guard.diagnostics_values(),
            "commands": str(self.commands),
            "command_timeouts": str(self.timeouts),
            "tipped": str(truth.tipped).lower(),
            "events": str(len(truth.events)),
            "agents": str(len(truth.agents.ids)),
            "world": sim.world.name,
            "scenario": self.config.scenario,
            "seed": str(sim.seed),
        }
        status = diagnostic_status(
            f"{self.get_fully_qualified_name().lstrip('/')}: summary",
            level,
            message,
            values,
            hardware_id="xiaomanlv_sim",
        )
        self._pub_diag.publish(diagnostic_array([status], stamp_of(sim.time)))

    def _reconfigure(self, config: SimNodeConfig) -> None:
        fixed = ("world", "scenario", "seed", "pedestrians", "cyclists", "physics_rate",
                 "lidar", "ultrasonic")  # fmt: skip
        changed = [f for f in fixed if getattr(config, f) != getattr(self.config, f)]
        if changed:
            raise ConfigError(f"{', '.join(changed)} cannot change at run time; restart the node")
        check_frames(config)
        base_changed = config.base_frame != self.config.base_frame
        self.config = config
        if base_changed:
            self._send_sensor_frames()
        rate = self.sim.physics_rate
        self._clock_every = max(1, round(rate / config.clock_rate))
        self._truth_every = max(1, round(rate / config.ground_truth_rate))
        self._agents_every = max(1, round(rate / config.agents_rate))
        self._anchor()
        self._diag_timer = self._guard.replace_timer(
            self._diag_timer, 1.0 / config.diagnostics_rate, self._publish_diagnostics,
            clock=self._steady,
        )  # fmt: skip


def main(args: Sequence[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
