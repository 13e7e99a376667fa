"""The sim node as a real process over Fast DDS: /clock, sensor rates, /cmd_vel, bad input."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2, Range

from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.ros.time import seconds_of

pytestmark = pytest.mark.integration

PARAMETERS = {"world": "university", "real_time_factor": 1.0, "seed": 3, "pedestrians": 0}


@pytest.fixture
def sim_session(ros_graph: Any) -> Callable[..., Any]:
    """``start(**parameters)``: the sim node as config/graph.yaml declares it."""

    def start(**parameters: Any) -> Any:
        return ros_graph(nodes=["sim"], parameters={"sim": parameters}, topics=["/clock"])

    return start


def stamp_rates(session: Any, topics: dict[str, Any], sim_seconds: float) -> dict[str, float]:
    """Messages per simulated second on each topic, from their header stamps.

    The rate a sensor publishes at is a property of simulated time: measured from stamps it
    does not depend on how busy the machine is (wall-clock rates belong to bench/). The median
    stamp interval is used, so a message the client's queue dropped does not lower it.
    """
    inboxes = {topic: session.collect(cls, topic, 50) for topic, cls in topics.items()}
    try:
        for topic, inbox in inboxes.items():

            def spans(inbox: Any = inbox) -> bool:
                items = inbox.items
                return len(items) > 2 and stamp(items[-1]) - stamp(items[0]) >= sim_seconds

            session.wait_until(spans, 30.0, f"{sim_seconds:g} simulated seconds of {topic}")
        rates = {}
        for topic, inbox in inboxes.items():
            stamps = np.array([stamp(m) for m in inbox.items])
            rates[topic] = 1.0 / float(np.median(np.diff(stamps)))
        return rates
    finally:
        for inbox in inboxes.values():
            inbox.close()


def stamp(msg: Any) -> float:
    return seconds_of(msg.header.stamp)


def test_clock_advances_and_sensor_rates_match_the_robot_model(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    first = seconds_of(session.wait_for_message(Clock, "/clock", timeout=10.0).clock)
    later = session.wait_for_message(
        Clock, "/clock", timeout=10.0, predicate=lambda c: seconds_of(c.clock) > first
    )
    assert seconds_of(later.clock) > first

    robot = load_robot(model_file())
    expected = {
        "/lidar/points": robot.lidar.rate,
        "/imu/data": robot.imu.rate,
        "/wheel/odom": robot.drive.odom_rate,
        "/gnss/fix": robot.gnss.rate,
        "/gnss/vel": robot.gnss.rate,  # with a fix, as at the station
        **{"/" + u.topic: u.rate for u in robot.ultrasonic},
    }
    types = {
        "/lidar/points": PointCloud2,
        "/imu/data": Imu,
        "/wheel/odom": Odometry,
        "/gnss/fix": NavSatFix,
        "/gnss/vel": TwistWithCovarianceStamped,
        **{"/" + u.topic: Range for u in robot.ultrasonic},
    }
    rates = stamp_rates(session, types, sim_seconds=2.0)
    for topic, rate in expected.items():
        assert rates[topic] == pytest.approx(rate, rel=0.05), (topic, rates)


def wait_for_pose(session: Any) -> PoseStamped:
    return session.wait_for_message(PoseStamped, "/sim/ground_truth/pose", timeout=10.0)


def test_cmd_vel_moves_the_robot_and_times_out(sim_session: Any) -> None:
    session = sim_session(**PARAMETERS)
    before = wait_for_pose(session).pose.position
    cmd = Twist()
    cmd.linear.x = 1.0

    def moved(pose: PoseStamped) -> bool:
        p = pose.pose.position
        return math.hypot(p.x - before.x, p.y - before.y) > 1.0

    with session.publishing("/cmd_vel", cmd, rate=10.0):
        session.wait_for_message(PoseStamped, "/sim/ground_truth/pose", 20.0, predicate=moved)
        moving = session.wait_for_message(Odometry, "/sim/ground_truth/odom", timeout=10.0)
        assert moving.twist.twist.linear.x > 0.5
        stopped_at = seconds_of(moving.header.stamp)
    # no command for cmd_timeout (0.5 s sim): the robot brakes to a stop (2 m/s^2) and stays
    truth = session.wait_for_message(
        Odometry,
        "/sim/ground_truth/odom",
        timeout=20.0,
        predicate=lambda o: abs(o.twist.twist.linear.x) < 0.05,
    )
    assert seconds_of(truth.header.stamp) > stopped_at


def sim_summary(session: Any, timeout: float = 10.0) -> dict[str, str]:
    def has_summary(array: DiagnosticArray) -> bool:
        return any(status.name == "sim: summary" for status in array.status)

    array = session.wait_for_message(
        DiagnosticArray, "/diagnostics", timeout, predicate=has_summary
    )
    (status,) = [s for s in array.status if s.name == "sim: summary"]
    return {kv.key: kv.value for kv in status.values}


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
    session.wait_for_message(
        Clock, "/clock", timeout=5.0, predicate=lambda c: seconds_of(c.clock) > before + 0.3
    )


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
