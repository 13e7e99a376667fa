"""Rotations and poses, one convention for the whole stack.

Angles follow REP 103: roll, pitch, yaw about the fixed x, y, z axes, so a rotation is
``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (scipy's extrinsic ``"xyz"``). Quaternions are ``(x, y, z,
w)``, as in geometry_msgs/Quaternion and scipy. Poses are 4x4 homogeneous matrices, ``T_a_b``
maps points of frame b into frame a.

The vectorised functions use scipy's :class:`~scipy.spatial.transform.Rotation`. The scalar
:func:`rpy_matrix` and :func:`quaternion_from_rpy` are written out with ``math``: they run per
reading in the simulator and the odometry, where constructing a ``Rotation`` costs ~20 us
against ~2 us (compiled kernels keep their own copies: numba cannot call scipy).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

Quaternion = tuple[float, float, float, float]  # x, y, z, w


def rpy_matrix(roll: float, pitch: float, yaw: float) -> NDArray[np.float64]:
    """3x3 rotation ``Rz(yaw) Ry(pitch) Rx(roll)`` of angles in [rad]."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def rpy_matrices(roll: ArrayLike, pitch: ArrayLike, yaw: ArrayLike) -> NDArray[np.float64]:
    """(N, 3, 3) rotations of N angle triples [rad]; the vectorised :func:`rpy_matrix`."""
    angles = np.stack(np.broadcast_arrays(roll, pitch, yaw), axis=-1).reshape(-1, 3)
    return np.asarray(Rotation.from_euler("xyz", angles).as_matrix(), dtype=np.float64)


def matrix_rpy(rotation: ArrayLike) -> tuple[float, float, float]:
    """Roll, pitch, yaw [rad] of a 3x3 rotation (or the rotation of a 4x4 pose)."""
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    roll, pitch, yaw = Rotation.from_matrix(r).as_euler("xyz")
    return float(roll), float(pitch), float(yaw)


def yaw_of(rotation: ArrayLike) -> float:
    """Heading [rad] of a 3x3 rotation or 4x4 pose: the angle of its x axis in the xy plane."""
    r = np.asarray(rotation, dtype=np.float64)
    return math.atan2(float(r[1, 0]), float(r[0, 0]))


def quaternion_from_rpy(roll: float, pitch: float, yaw: float) -> Quaternion:
    """(x, y, z, w) of ``Rz(yaw) Ry(pitch) Rx(roll)`` [rad]."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def quaternion_from_yaw(yaw: float) -> Quaternion:
    """(x, y, z, w) of a rotation by ``yaw`` [rad] about z."""
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw [rad] of the quaternion (x, y, z, w) under the roll-pitch-yaw convention above."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rpy_from_quaternion(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """Roll, pitch, yaw [rad] of the quaternion (x, y, z, w).

    Raises:
        ValueError: a quaternion of zero or non-finite norm.
    """
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"quaternion {(x, y, z, w)} has no rotation (norm {norm})")
    roll, pitch, yaw = Rotation.from_quat(q / norm).as_euler("xyz")
    return float(roll), float(pitch), float(yaw)


def quaternion_matrix(x: float, y: float, z: float, w: float) -> NDArray[np.float64]:
    """3x3 rotation of the quaternion (x, y, z, w) (normalised first). Closed form: it runs
    for every pose message a node reads, where scipy's Rotation costs 20x as much.

    Raises:
        ValueError: a quaternion of zero or non-finite norm.
    """
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not (math.isfinite(norm) and norm > 0.0):
        raise ValueError(f"quaternion {(x, y, z, w)} has no rotation (norm {norm})")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array(
        [
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
            [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
            [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
        ]
    )


def matrix_quaternion(rotation: ArrayLike) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a 3x3 rotation, w >= 0 (Shepperd's method: the largest of the four
    squared components is taken from the trace or a diagonal entry, the others from it, so
    no branch divides by a small number). Closed form for the same reason as above."""
    m = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = m.tolist()
    trace = m00 + m11 + m22
    if trace >= max(m00, m11, m22):
        w = 0.5 * math.sqrt(max(0.0, 1.0 + trace))
        f = 0.25 / w
        q = ((m21 - m12) * f, (m02 - m20) * f, (m10 - m01) * f, w)
    elif m00 >= m11 and m00 >= m22:
        x = 0.5 * math.sqrt(max(0.0, 1.0 + m00 - m11 - m22))
        f = 0.25 / x
        q = (x, (m01 + m10) * f, (m02 + m20) * f, (m21 - m12) * f)
    elif m11 >= m22:
        y = 0.5 * math.sqrt(max(0.0, 1.0 - m00 + m11 - m22))
        f = 0.25 / y
        q = ((m01 + m10) * f, y, (m12 + m21) * f, (m02 - m20) * f)
    else:
        z = 0.5 * math.sqrt(max(0.0, 1.0 - m00 - m11 + m22))
        f = 0.25 / z
        q = ((m02 + m20) * f, (m12 + m21) * f, z, (m10 - m01) * f)
    sign = -1.0 if q[3] < 0.0 else 1.0
    norm = sign / math.sqrt(sum(v * v for v in q))
    return (q[0] * norm, q[1] * norm, q[2] * norm, q[3] * norm)


def pose_matrix(
    x: float = 0.0,
    y: float = 0.0,
    z: float = 0.0,
    roll: float = 0.0,
    pitch: float = 0.0,
    yaw: float = 0.0,
) -> NDArray[np.float64]:
    """4x4 pose of a position [m] and roll, pitch, yaw [rad]."""
    out = np.eye(4)
    out[:3, :3] = rpy_matrix(roll, pitch, yaw)
    out[:3, 3] = (x, y, z)
    return out


def planar_pose(x: float, y: float, yaw: float) -> NDArray[np.float64]:
    """4x4 pose of a planar position [m] and heading [rad]."""
    return pose_matrix(x, y, 0.0, 0.0, 0.0, yaw)


def transform_points(pose: ArrayLike, points: ArrayLike) -> NDArray[np.float64]:
    """(N, 3) points [m] mapped by the 4x4 ``pose`` (``T_a_b`` takes b's points into a)."""
    t = np.asarray(pose, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.asarray(p @ t[:3, :3].T + t[:3, 3], dtype=np.float64)


def wrap_angle(angle: float) -> float:
    """``angle`` [rad] wrapped into [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
