"""ekf as a real process over Fast DDS: /odometry/filtered at IMU rate, bad input counted.

The test's client is the simulator and the robot: each tick of its timer advances simulated
time by 5 ms on /clock (the node runs on simulated time, as in the sim profile) and publishes
the IMU (at rest, level) stamped with it, every 4th tick the wheels and every 20th the
localiser's pose. However fast the loaded machine runs the timer, the stamps say 200 Hz of
IMU; the node must publish one estimate per sample. The test waits for states (messages,
diagnostics values), never for fixed times.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus

from xiaomanlv_bringup.graph import NodeSpec
from xiaomanlv_bringup.ros import session as session_module
from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.paths import PackageNotBuiltError, node_executable
from xiaomanlv_core.ros.poses import yaw_quaternion_msg
from xiaomanlv_core.ros.qos import CLOCK_QOS
from xiaomanlv_core.ros.time import seconds_of, stamp_of

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
X, Y, YAW = 10.0, 5.0, 0.3  # [m], [m], [rad] where the robot stands in the map


def _resolver(tmp_path: Path) -> Any:
    """The installed ``ekf`` executable, or (not installed yet) one running the module."""

    def resolve(name: str) -> Path:
        with contextlib.suppress(PackageNotBuiltError):
            return node_executable(name)
        script = tmp_path / name
        script.write_text(f'#!/bin/sh\nexec python -m xiaomanlv_nav.fusion.nodes.{name} "$@"\n')
        script.chmod(0o755)
        return script

    return resolve


@pytest.fixture
def ekf_session(
    ros_domain: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GraphSession]:
    params = tmp_path / "ekf.params.yaml"
    datum = REPO / "maps" / "university" / "datum.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"datum_file": str(datum)}}}))
    spec = NodeSpec("ekf", "ekf", "", (params,), (), "shutdown", 0, True)
    monkeypatch.setattr(session_module, "node_executable", _resolver(tmp_path))
    logs = io.StringIO()
    try:
        with GraphSession([spec], ros_domain, output=logs, grace=3.0) as session:
            session.wait_for_topics(["/odometry/filtered", "/diagnostics"], timeout=30.0)
            yield session
    except BaseException:
        print("---- node output ----\n" + logs.getvalue())
        raise


@contextlib.contextmanager
def robot_at_rest(session: GraphSession) -> Iterator[None]:
    client = session.client
    imu_pub = client.create_publisher(Imu, "/imu/data", 10)
    wheel_pub = client.create_publisher(Odometry, "/wheel/odom", 10)
    pose_pub = client.create_publisher(PoseWithCovarianceStamped, "/localization/pose", 10)
    clock_pub = client.create_publisher(Clock, "/clock", CLOCK_QOS)
    pubs = (imu_pub, wheel_pub, pose_pub, clock_pub)
    for pub in pubs:
        session.wait_for_match(pub)
    tick = [0]
    start = client.get_clock().now().nanoseconds * 1e-9  # simulated time starts here

    def publish() -> None:
        stamp = stamp_of(start + 0.005 * tick[0])
        clock_pub.publish(Clock(clock=stamp))
        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp, "imu"
        imu.linear_acceleration.z = 9.80665
        imu_pub.publish(imu)
        if tick[0] % 4 == 0:
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id = stamp, "odom"
            odom.child_frame_id = "base_link"
            odom.twist.covariance[0] = odom.twist.covariance[35] = 1e-4
            wheel_pub.publish(odom)
        if tick[0] % 20 == 0:
            pose = PoseWithCovarianceStamped()
            pose.header.stamp, pose.header.frame_id = stamp, "map"
            pose.pose.pose.position.x, pose.pose.pose.position.y = X, Y
            pose.pose.pose.orientation = yaw_quaternion_msg(YAW)
            for i, var in enumerate([0.0025] * 3 + [1e-4] * 3):
                pose.pose.covariance[7 * i] = var
            pose_pub.publish(pose)
        tick[0] += 1

    timer = client.create_timer(1.0 / 200.0, publish)
    try:
        yield
    finally:
        client.destroy_timer(timer)
        for pub in pubs:
            client.destroy_publisher(pub)


def fusion_values(msg: DiagnosticArray) -> dict[str, str] | None:
    for status in msg.status:
        if status.name == "ekf: fusion":
            return {kv.key: kv.value for kv in status.values}
    return None


def test_odometry_filtered_flows_at_imu_rate_in_the_map(ekf_session: GraphSession) -> None:
    inbox = ekf_session.collect(Odometry, "/odometry/filtered", 100)
    seen = itertools.count(1)
    with robot_at_rest(ekf_session):
        inbox.wait(lambda _m: next(seen) >= 300, timeout=30.0)  # the 300th message
    msgs = inbox.items
    stamps = sorted({seconds_of(m.header.stamp) for m in msgs})
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate >= 100.0, f"{rate:.1f} Hz by header stamps"
    last = msgs[-1]
    assert (last.header.frame_id, last.child_frame_id) == ("map", "base_link")
    p = last.pose.pose.position
    assert math.hypot(p.x - X, p.y - Y) < 0.05
    assert 0.0 < last.pose.covariance[0] < 0.01


def test_bad_input_is_counted_and_the_node_goes_on(ekf_session: GraphSession) -> None:
    client = ekf_session.client
    imu_pub = client.create_publisher(Imu, "/imu/data", 10)
    fix_pub = client.create_publisher(NavSatFix, "/gnss/fix", 10)
    ekf_session.wait_for_match(imu_pub)
    ekf_session.wait_for_match(fix_pub)
    nan = Imu()
    nan.header.frame_id = "imu"
    nan.angular_velocity.x = math.nan
    stranger = Imu()
    stranger.header.frame_id = "camera"
    no_fix = NavSatFix()
    no_fix.header.frame_id = "gnss"
    no_fix.status.status = NavSatStatus.STATUS_NO_FIX
    no_fix.latitude = no_fix.longitude = math.nan

    def counted(msg: DiagnosticArray) -> bool:
        values = fusion_values(msg) or {}
        wanted = ("imu non_finite", "imu unknown_frame", "gnss no_fix")
        return all(int(values.get(k, "0")) >= 1 for k in wanted)

    inbox = ekf_session.collect(Odometry, "/odometry/filtered", 100)
    with robot_at_rest(ekf_session):  # simulated time runs: the node reports on it
        imu_pub.publish(nan)
        imu_pub.publish(stranger)
        fix_pub.publish(no_fix)
        ekf_session.wait_for_message(DiagnosticArray, "/diagnostics", 30.0, predicate=counted)
        inbox.clear()
        inbox.wait(lambda _m: True, timeout=20.0)  # still running and fusing
