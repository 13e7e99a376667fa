"""geometry_msgs Quaternion and Pose <-> the tuples and matrices of :mod:`xiaomanlv_core.geometry`.

The rotation maths lives in :mod:`xiaomanlv_core.geometry` (REP 103, quaternions x, y, z, w);
these only move values between its tuples and 4x4 poses and the ROS messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import Pose, Quaternion
from numpy.typing import ArrayLike, NDArray

from xiaomanlv_core.geometry import (
    matrix_quaternion,
    quaternion_from_yaw,
    quaternion_matrix,
    yaw_from_quaternion,
)


def quaternion_msg(xyzw: ArrayLike) -> Quaternion:
    """geometry_msgs/Quaternion of (x, y, z, w)."""
    x, y, z, w = (float(v) for v in np.asarray(xyzw, dtype=np.float64).reshape(4))
    return Quaternion(x=x, y=y, z=z, w=w)


def yaw_quaternion_msg(yaw: float) -> Quaternion:
    """geometry_msgs/Quaternion of a rotation by ``yaw`` [rad] about z."""
    return quaternion_msg(quaternion_from_yaw(yaw))


def xyzw_of(q: Any) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a geometry_msgs/Quaternion."""
    return (float(q.x), float(q.y), float(q.z), float(q.w))


def yaw_of_msg(q: Any) -> float:
    """Yaw [rad] of a geometry_msgs/Quaternion (roll and pitch ignored)."""
    return yaw_from_quaternion(*xyzw_of(q))


def pose_msg(pose: ArrayLike) -> Pose:
    """geometry_msgs/Pose of a 4x4 pose (its rotation as a quaternion, x, y, z, w)."""
    matrix = np.asarray(pose, dtype=np.float64)
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in matrix[:3, 3])
    msg.orientation = quaternion_msg(matrix_quaternion(matrix[:3, :3]))
    return msg


def matrix_of_pose(msg: Any) -> NDArray[np.float64]:
    """4x4 pose of a geometry_msgs/Pose (the quaternion normalised).

    Raises:
        ValueError: an orientation of zero or non-finite norm.
    """
    out = np.eye(4)
    out[:3, :3] = quaternion_matrix(*xyzw_of(msg.orientation))
    out[:3, 3] = (float(msg.position.x), float(msg.position.y), float(msg.position.z))
    return out
