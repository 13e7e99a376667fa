"""The sim node as a real process over Fast DDS: /clock, sensor rates, /cmd_vel, bad input."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2, Range

from xiaomanlv_sim import assets
from xiaomanlv_sim.ros.conversions import seconds_of
from xiaomanlv_sim.sdf import load_robot

pytestmark = pytest.mark.integration

PARAMETERS = {"world": "university", "real_time_factor": 1.0, "seed": 3, "pedestrians": 0}


@pytest.fixture
def sim_session(ros_graph: Any) -> Callable[..., Any]:
    """``start(**parameters)``: the sim node as config/graph.yaml declares it."""

    def start(**parameters: Any) -> Any:
        return ros_graph(nodes=["sim"], parameters={"sim": parameters}, topics=["/clock"])

    return start


def count_messages(session: Any, topics: dict[str, Any], seconds: float) -> dict[str, float]:
    """Messages per wall second on each topic over ``seconds``."""
    counts = dict.fromkeys(topics, 0)
    subs = []
    for topic, cls in topics.items():

        def on_message(_msg: Any, topic: str = topic) -> None:
            counts[topic] += 1

        subs.append(session.client.create_subscription(cls, topic, on_message, 50))
    time.sleep(1.0)  # discovery and matching
    start = dict(counts)
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    rates = {t: (counts[t] - start[t]) / elapsed for t in topics}
    for sub in subs:
        session.client.destroy_subscription(sub)
    return rates


def test_clock_advances_and_sensor_rates_match_the_robot_model(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    first = seconds_of(session.wait_for_message(Clock, "/clock", timeout=10.0).clock)
    time.sleep(0.5)
    later = seconds_of(session.wait_for_message(Clock, "/clock", timeout=10.0).clock)
    assert later > first

    robot = load_robot(assets.robot_model_file())
    expected = {
        "/lidar/points": robot.lidar.rate,
        "/imu/data": robot.imu.rate,
        "/wheel/odom": robot.drive.odom_rate,
        "/gnss/fix": robot.gnss.rate,
        **{"/" + u.topic: u.rate for u in robot.ultrasonic},
    }
    types = {
        "/lidar/points": PointCloud2,
        "/imu/data": Imu,
        "/wheel/odom": Odometry,
        "/gnss/fix": NavSatFix,
        **{"/" + u.topic: Range for u in robot.ultrasonic},
    }
    rates = count_messages(session, types, seconds=4.0)
    for topic, rate in expected.items():
        assert rates[topic] == pytest.approx(rate, rel=0.15), (topic, rates)


def wait_for_pose(session: Any) -> PoseStamped:
    return session.wait_for_message(PoseStamped, "/sim/ground_truth/pose", timeout=10.0)


def test_cmd_vel_moves_the_robot_and_times_out(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    before = wait_for_pose(session).pose.position
    pub = session.client.create_publisher(Twist, "/cmd_vel", 10)
    cmd = Twist()
    cmd.linear.x = 1.0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        pub.publish(cmd)
        time.sleep(0.1)
    after = wait_for_pose(session).pose.position
    assert math.hypot(after.x - before.x, after.y - before.y) > 1.0
    time.sleep(1.5)  # > cmd_timeout (0.5 s sim) plus braking at 2 m/s^2
    truth = session.wait_for_message(Odometry, "/sim/ground_truth/odom", timeout=10.0)
    assert abs(truth.twist.twist.linear.x) < 0.05


def sim_summary(session: Any, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        array = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=timeout)
        for status in array.status:
            if status.name == "sim: summary":
                return {kv.key: kv.value for kv in status.values}
    raise AssertionError("no sim summary on /diagnostics")


def test_malformed_cmd_vel_is_counted_and_the_node_survives(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    pub = session.client.create_publisher(Twist, "/cmd_vel", 10)
    bad = Twist()
    bad.linear.x = math.nan
    bad.angular.z = math.inf
    deadline = time.monotonic() + 15.0
    values: dict[str, str] = {}
    while time.monotonic() < deadline:
        pub.publish(bad)
        values = sim_summary(session)
        if int(values["malformed_commands"]) >= 1:
            break
    assert int(values["malformed_commands"]) >= 1
    assert session.supervisor.running() == ["sim"]
    before = seconds_of(session.wait_for_message(Clock, "/clock", timeout=5.0).clock)
    time.sleep(0.3)
    assert seconds_of(session.wait_for_message(Clock, "/clock", timeout=5.0).clock) > before


def test_a_huge_cmd_vel_is_rejected_over_dds_and_reported(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    pub = session.client.create_publisher(Twist, "/cmd_vel", 10)
    huge = Twist()
    huge.linear.x = 1e300  # finite: before, it went to the dynamics for the limiter to clip
    deadline = time.monotonic() + 15.0
    values: dict[str, str] = {}
    while time.monotonic() < deadline:
        pub.publish(huge)
        values = sim_summary(session)
        if int(values["malformed_commands"]) >= 1:
            break
    assert int(values["malformed_commands"]) >= 1
    assert "beyond 10 x the drive's limits" in values["last_rejection"]
    assert values["callback_errors"] == "0"
    assert session.supervisor.running() == ["sim"]
