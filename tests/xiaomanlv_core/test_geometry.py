"""One rotation convention (REP 103: Rz(yaw) Ry(pitch) Rx(roll)), checked against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geometry import (
    matrix_quaternion,
    matrix_rpy,
    planar_pose,
    pose_matrix,
    quaternion_from_rpy,
    quaternion_from_yaw,
    quaternion_matrix,
    rpy_from_quaternion,
    rpy_matrices,
    rpy_matrix,
    transform_points,
    wrap_angle,
    yaw_from_quaternion,
    yaw_of,
)

ANGLE = st.floats(-math.pi, math.pi)
PITCH = st.floats(-1.5, 1.5)  # away from gimbal lock, where roll and yaw are not unique


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@settings(max_examples=200)
@example(math.pi, 0.0, -math.pi)
@given(ANGLE, PITCH, ANGLE)
def test_rpy_matrix_is_rz_ry_rx_and_scipy_extrinsic_xyz(
    roll: float, pitch: float, yaw: float
) -> None:
    expected = _rz(yaw) @ _ry(pitch) @ _rx(roll)
    np.testing.assert_allclose(rpy_matrix(roll, pitch, yaw), expected, atol=1e-12)
    np.testing.assert_allclose(
        Rotation.from_euler("xyz", [roll, pitch, yaw]).as_matrix(), expected, atol=1e-12
    )
    # Angles come back in [-pi, pi]: +pi and -pi are one angle.
    back = matrix_rpy(expected)
    for got, want in zip(back, (roll, pitch, yaw), strict=True):
        assert wrap_angle(got - want) == pytest.approx(0.0, abs=1e-9)


def test_vectorised_matrices_equal_the_scalar_ones() -> None:
    rng = np.random.default_rng(1)
    angles = rng.uniform(-1.5, 1.5, size=(50, 3))
    many = rpy_matrices(angles[:, 0], angles[:, 1], angles[:, 2])
    assert many.shape == (50, 3, 3)
    for a, m in zip(angles, many, strict=True):
        np.testing.assert_allclose(m, rpy_matrix(*a), atol=1e-12)


@settings(max_examples=200)
@given(ANGLE, PITCH, ANGLE)
def test_quaternions_round_trip_and_match_scipy(roll: float, pitch: float, yaw: float) -> None:
    q = quaternion_from_rpy(roll, pitch, yaw)
    scipy_q = Rotation.from_euler("xyz", [roll, pitch, yaw]).as_quat()
    assert np.allclose(q, scipy_q, atol=1e-12) or np.allclose(q, -scipy_q, atol=1e-12)
    for got, want in zip(rpy_from_quaternion(*q), (roll, pitch, yaw), strict=True):
        assert wrap_angle(got - want) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(quaternion_matrix(*q), rpy_matrix(roll, pitch, yaw), atol=1e-9)
    assert wrap_angle(yaw_from_quaternion(*q) - yaw) == pytest.approx(0.0, abs=1e-9)


@given(ANGLE)
def test_yaw_quaternion_and_pose_heading(yaw: float) -> None:
    q = quaternion_from_yaw(yaw)
    assert q == pytest.approx(quaternion_from_rpy(0.0, 0.0, yaw), abs=1e-12)
    assert wrap_angle(yaw_of(planar_pose(1.0, 2.0, yaw)) - yaw) == pytest.approx(0.0, abs=1e-12)


def test_a_quaternion_without_rotation_is_refused() -> None:
    with pytest.raises(ValueError, match="no rotation"):
        rpy_from_quaternion(0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no rotation"):
        rpy_from_quaternion(math.nan, 0.0, 0.0, 1.0)


def test_transform_points_applies_rotation_then_translation() -> None:
    pose = pose_matrix(1.0, 2.0, 3.0, yaw=math.pi / 2)
    np.testing.assert_allclose(
        transform_points(pose, [[1.0, 0.0, 0.0]]), [[1.0, 3.0, 3.0]], atol=1e-12
    )


def test_wrap_angle() -> None:
    assert wrap_angle(3 * math.pi) == pytest.approx(-math.pi)
    assert wrap_angle(-0.1) == pytest.approx(-0.1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(
        lambda q: sum(v * v for v in q) > 1e-3
    )
)
@example([0.0, 0.0, 0.0, 1.0])
@example([1.0, 0.0, 0.0, 0.0])  # half turns: the trace is -1, the largest entry leads
@example([0.0, 1.0, 0.0, 0.0])
@example([0.0, 0.0, 1.0, 0.0])
@example([0.0, 0.70710678, 0.70710678, 0.0])
def test_quaternions_and_matrices_agree_with_scipy(q: list[float]) -> None:
    expected = Rotation.from_quat(q)
    np.testing.assert_allclose(quaternion_matrix(*q), expected.as_matrix(), atol=1e-12)
    back = np.array(matrix_quaternion(expected.as_matrix()))
    assert back[3] >= 0.0 and np.linalg.norm(back) == pytest.approx(1.0)
    # The same rotation (q and -q are one).
    assert abs(float(np.dot(back, expected.as_quat()))) == pytest.approx(1.0, abs=1e-9)


def test_a_zero_quaternion_is_refused() -> None:
    with pytest.raises(ValueError, match="no rotation"):
        quaternion_matrix(0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no rotation"):
        quaternion_matrix(math.nan, 0.0, 0.0, 1.0)
