"""/tf and /tf_static: TransformStamped from 4x4 poses, the broadcasters, and a listener.

The roles of tf2_ros's ``TransformBroadcaster``, ``StaticTransformBroadcaster`` and
``TransformListener`` (tf2_ros is on no registry reachable here; on a robot its tools read
what these publish, and the messages are the same tf2_msgs/TFMessage):

- :func:`transform_msg` / :func:`matrix_of_transform`: geometry_msgs/TransformStamped <-> a
  4x4 ``T_parent_child`` (`xiaomanlv_core.geometry`; quaternions x, y, z, w).
  :func:`planar_transform_msg` builds one of x, y, yaw, for per-tick use: ~10 us against ~90 us
  (scipy's matrix-to-quaternion costs ~60 us), and the quaternion is the one
  ``yaw_quaternion_msg`` gives nav_msgs/Odometry, so the two agree to the bit.
- :class:`StaticBroadcaster`: /tf_static, LATCHED_QOS. Like tf2_ros's, it keeps every static
  transform it was given (one per child frame, a later one replaces) and republishes them all
  in one message, since a latched topic keeps one message per publisher.
- :class:`Broadcaster`: /tf, :data:`~xiaomanlv_core.ros.qos.TF_QOS`.
- :class:`TransformListener`: subscribes both and feeds a
  :class:`~xiaomanlv_core.tf_tree.TransformTree`, which tests and tools look transforms up in.
  A transform the tree refuses (a loop, a non-rigid or non-finite one) is counted and its
  reason kept (``rejected``, ``last_rejection``), never raised into the executor.

Stamps are seconds [s] of ROS time (`xiaomanlv_core.ros.time`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from geometry_msgs.msg import TransformStamped
from numpy.typing import ArrayLike, NDArray
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from xiaomanlv_core.geometry import matrix_quaternion, quaternion_matrix
from xiaomanlv_core.ros.poses import quaternion_msg, xyzw_of, yaw_quaternion_msg
from xiaomanlv_core.ros.qos import LATCHED_QOS, TF_QOS, TF_STATIC_LISTENER_QOS
from xiaomanlv_core.ros.time import seconds_of, stamp_of
from xiaomanlv_core.tf_tree import TransformError, TransformTree

TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"


def transform_msg(pose: ArrayLike, parent: str, child: str, stamp: float) -> TransformStamped:
    """geometry_msgs/TransformStamped of the 4x4 ``T_parent_child`` at ``stamp`` [s].

    Raises:
        ValueError: a stamp a builtin_interfaces/Time cannot hold (`stamp_of`).
    """
    matrix = np.asarray(pose, dtype=np.float64)
    msg = TransformStamped()
    msg.header.stamp = stamp_of(stamp)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t = msg.transform.translation
    t.x, t.y, t.z = (float(v) for v in matrix[:3, 3])
    msg.transform.rotation = quaternion_msg(matrix_quaternion(matrix[:3, :3]))
    return msg


def planar_transform_msg(
    x: float, y: float, yaw: float, parent: str, child: str, stamp: float
) -> TransformStamped:
    """geometry_msgs/TransformStamped of a planar pose (x, y [m], yaw [rad]; z, roll, pitch 0).

    Raises:
        ValueError: a stamp a builtin_interfaces/Time cannot hold (`stamp_of`).
    """
    msg = TransformStamped()
    msg.header.stamp = stamp_of(stamp)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y = float(x), float(y)
    msg.transform.rotation = yaw_quaternion_msg(yaw)
    return msg


def matrix_of_transform(transform: Any) -> NDArray[np.float64]:
    """4x4 of a geometry_msgs/Transform (the quaternion normalised).

    Raises:
        ValueError: a rotation of zero or non-finite norm.
    """
    out = np.eye(4)
    out[:3, :3] = quaternion_matrix(*xyzw_of(transform.rotation))
    t = transform.translation
    out[:3, 3] = (float(t.x), float(t.y), float(t.z))
    return out


class StaticBroadcaster:
    """/tf_static of one node: every static transform it was sent, latched (module docstring)."""

    def __init__(self, node: Node) -> None:
        self._pub = node.create_publisher(TFMessage, TF_STATIC_TOPIC, LATCHED_QOS)
        self._by_child: dict[str, TransformStamped] = {}

    def send(self, transforms: Iterable[TransformStamped]) -> None:
        for transform in transforms:
            self._by_child[transform.child_frame_id] = transform
        self._pub.publish(TFMessage(transforms=list(self._by_child.values())))


class Broadcaster:
    """/tf: dynamic transforms, each message as sent."""

    def __init__(self, node: Node) -> None:
        self._pub = node.create_publisher(TFMessage, TF_TOPIC, TF_QOS)

    def send(self, transforms: Iterable[TransformStamped]) -> None:
        self._pub.publish(TFMessage(transforms=list(transforms)))


class TransformListener:
    """Feeds ``tree`` (a new :class:`TransformTree` by default) from /tf and /tf_static."""

    def __init__(self, node: Node, tree: TransformTree | None = None) -> None:
        self.tree = tree if tree is not None else TransformTree()
        self.received = 0  # transforms taken into the tree
        self.rejected = 0  # transforms the tree refused
        self.last_rejection = ""
        self._node = node
        self._subs = [
            node.create_subscription(
                TFMessage, TF_TOPIC, lambda m: self._on_message(m, False), TF_QOS
            ),
            node.create_subscription(
                TFMessage,
                TF_STATIC_TOPIC,
                lambda m: self._on_message(m, True),
                TF_STATIC_LISTENER_QOS,
            ),
        ]

    def _on_message(self, msg: TFMessage, static: bool) -> None:
        for transform in msg.transforms:
            try:
                self.tree.set_transform(
                    transform.header.frame_id,
                    transform.child_frame_id,
                    matrix_of_transform(transform.transform),
                    seconds_of(transform.header.stamp),
                    static=static,
                )
                self.received += 1
            except (TransformError, ValueError) as err:
                self.rejected += 1
                self.last_rejection = str(err)

    def destroy(self) -> None:
        """Stop listening (the tree keeps what it has)."""
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
