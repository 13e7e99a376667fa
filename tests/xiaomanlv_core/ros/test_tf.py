"""xiaomanlv_core.ros.tf: TransformStamped <-> 4x4, and broadcasters feeding a listener's tree."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from tf2_msgs.msg import TFMessage

from xiaomanlv_core.geometry import planar_pose, pose_matrix
from xiaomanlv_core.ros.poses import yaw_quaternion_msg
from xiaomanlv_core.ros.qos import TF_QOS, TF_STATIC_LISTENER_QOS
from xiaomanlv_core.ros.tf import (
    Broadcaster,
    StaticBroadcaster,
    TransformListener,
    matrix_of_transform,
    planar_transform_msg,
    transform_msg,
)
from xiaomanlv_core.ros.time import seconds_of

LIDAR = pose_matrix(0.25, 0.0, 1.9, 0.01, -0.02, 0.5)


def test_transform_msg_round_trips_a_pose_and_serialises() -> None:
    msg = transform_msg(LIDAR, "base_link", "lidar", 12.25)
    assert (msg.header.frame_id, msg.child_frame_id) == ("base_link", "lidar")
    assert seconds_of(msg.header.stamp) == 12.25
    back = deserialize_message(serialize_message(TFMessage(transforms=[msg])), TFMessage)
    np.testing.assert_allclose(matrix_of_transform(back.transforms[0].transform), LIDAR, atol=1e-12)
    with pytest.raises(ValueError, match="not a finite"):
        transform_msg(LIDAR, "base_link", "lidar", -1.0)
    zero = TransformStamped()
    zero.transform.rotation.w = 0.0
    with pytest.raises(ValueError, match="no rotation"):
        matrix_of_transform(zero.transform)


def test_a_planar_transform_is_the_matrix_one_and_the_odometry_quaternion() -> None:
    planar = planar_transform_msg(3.0, -2.0, 2.5, "odom", "base_link", 4.0)
    general = transform_msg(planar_pose(3.0, -2.0, 2.5), "odom", "base_link", 4.0)
    np.testing.assert_allclose(
        matrix_of_transform(planar.transform), matrix_of_transform(general.transform), atol=1e-12
    )
    assert planar.transform.rotation == yaw_quaternion_msg(2.5)
    assert (planar.header, planar.child_frame_id) == (general.header, general.child_frame_id)


def test_profiles_match_tf2_ros() -> None:
    assert (TF_QOS.reliability, TF_QOS.durability, TF_QOS.depth) == (
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 100,
    )  # fmt: skip
    static = TF_STATIC_LISTENER_QOS
    assert (static.durability, static.depth) == (DurabilityPolicy.TRANSIENT_LOCAL, 100)


@pytest.fixture
def spin(ros_domain: int) -> Iterator[tuple[Context, Callable[..., None]]]:
    """(context, until(condition)): spins the context's nodes until ``condition()`` holds."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=ros_domain)
    executor = SingleThreadedExecutor(context=ctx)

    def until(condition: Callable[[], bool], *nodes: Node, timeout: float = 10.0) -> None:
        for node in nodes:
            executor.add_node(node)
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition never held"
            executor.spin_once(timeout_sec=0.05)

    try:
        yield ctx, until
    finally:
        executor.shutdown()
        rclpy.shutdown(context=ctx)


def test_a_late_listener_gets_every_static_transform_and_follows_tf(
    spin: tuple[Context, Callable[..., None]],
) -> None:
    ctx, until = spin
    talker = Node("tf_talker", context=ctx)
    static = StaticBroadcaster(talker)
    static.send([transform_msg(LIDAR, "base_link", "lidar", 0.0)])
    static.send([transform_msg(pose_matrix(0, 0, 0.4), "base_link", "imu", 0.0)])  # accumulates
    listener_node = Node("tf_listener", context=ctx)
    listener = TransformListener(listener_node)  # joins after both static messages went out
    until(lambda: {"lidar", "imu"} <= listener.tree.frames(), talker, listener_node)
    np.testing.assert_allclose(listener.tree.lookup("base_link", "lidar").matrix, LIDAR, atol=1e-12)

    dynamic = Broadcaster(talker)
    until(lambda: dynamic._pub.get_subscription_count() > 0)
    for t in (1.0, 2.0):
        dynamic.send([transform_msg(planar_pose(t, 0.0, 0.0), "odom", "base_link", t)])
    until(lambda: listener.tree.can_transform("odom", "lidar", 2.0))
    found = listener.tree.lookup("odom", "lidar")
    assert found.stamp == 2.0
    np.testing.assert_allclose(found.matrix, planar_pose(2.0, 0.0, 0.0) @ LIDAR, atol=1e-12)

    loop = transform_msg(np.eye(4), "lidar", "odom", 3.0)
    dynamic.send([loop])
    until(lambda: listener.rejected == 1)
    assert "close a loop" in listener.last_rejection
    assert listener.received == 4
    listener.destroy()
