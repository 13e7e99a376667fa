"""The transform tree (xiaomanlv_core.tf_tree): chains, time, static edges, errors."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from xiaomanlv_core.geometry import planar_pose, pose_matrix, transform_points, yaw_of
from xiaomanlv_core.tf_tree import TransformError, TransformTree

LIDAR = pose_matrix(0.25, 0.0, 1.9)
IMU = pose_matrix(0.0, 0.0, 0.4, 0.0, 0.0, 0.3)


def robot_tree() -> TransformTree:
    """map -> odom (static here), odom -> base_link at t = 1, 2, 3; base_link -> lidar, imu."""
    tree = TransformTree()
    tree.set_transform("base_link", "lidar", LIDAR, 0.0, static=True)
    tree.set_transform("base_link", "imu", IMU, 0.0, static=True)
    tree.set_transform("map", "odom", planar_pose(10.0, -5.0, math.pi / 2), 0.0, static=True)
    for t in (1.0, 2.0, 3.0):
        tree.set_transform("odom", "base_link", planar_pose(t, 0.0, 0.1 * t), t)
    return tree


def test_a_chain_up_through_two_edges_composes_them() -> None:
    tree = robot_tree()
    found = tree.lookup("odom", "lidar")
    assert found.stamp == 3.0  # the latest odometry
    np.testing.assert_allclose(found.matrix, planar_pose(3.0, 0.0, 0.3) @ LIDAR, atol=1e-12)
    assert (found.parent, found.child) == ("odom", "lidar")
    to_map = tree.lookup("map", "lidar")
    expected = planar_pose(10.0, -5.0, math.pi / 2) @ planar_pose(3.0, 0.0, 0.3) @ LIDAR
    np.testing.assert_allclose(to_map.matrix, expected, atol=1e-12)


def test_a_chain_across_the_common_ancestor_and_the_inverse() -> None:
    tree = robot_tree()
    imu_from_lidar = tree.lookup("imu", "lidar").matrix
    np.testing.assert_allclose(imu_from_lidar, np.linalg.inv(IMU) @ LIDAR, atol=1e-12)
    assert tree.chain("imu", "lidar") == ["lidar", "base_link", "imu"]
    assert tree.chain("map", "lidar") == ["lidar", "base_link", "odom", "map"]
    back = tree.lookup("lidar", "odom", 2.0).matrix
    np.testing.assert_allclose(
        back @ tree.lookup("odom", "lidar", 2.0).matrix, np.eye(4), atol=1e-12
    )
    # a point 1 m ahead of the lidar lands where the composed poses put it
    p = transform_points(tree.lookup("odom", "lidar", 1.0).matrix, [[1.0, 0.0, 0.0]])[0]
    np.testing.assert_allclose(
        p, transform_points(planar_pose(1.0, 0.0, 0.1) @ LIDAR, [[1, 0, 0]])[0]
    )


def test_static_only_chains_hold_at_every_time_and_are_stamped_zero() -> None:
    tree = robot_tree()
    for t in (None, -5.0, 0.0, 1e6):
        found = tree.lookup("base_link", "lidar", t)
        np.testing.assert_allclose(found.matrix, LIDAR)
    assert tree.lookup("base_link", "lidar").stamp == 0.0


def test_dynamic_edges_interpolate_between_samples_and_never_extrapolate() -> None:
    tree = robot_tree()
    half = tree.lookup("odom", "base_link", 1.5).matrix
    assert half[0, 3] == pytest.approx(1.5)
    assert yaw_of(half) == pytest.approx(0.15)
    with pytest.raises(TransformError, match=r"odom -> base_link at t=3\.5.* after the newest"):
        tree.lookup("odom", "lidar", 3.5)
    with pytest.raises(
        TransformError, match=r"chain lidar -> base_link -> odom\): .* before the oldest"
    ):
        tree.lookup("odom", "lidar", 0.5)
    assert not tree.can_transform("odom", "lidar", 0.5)
    assert tree.can_transform("odom", "lidar", 2.5)


def test_latest_time_is_the_latest_every_dynamic_edge_of_the_chain_has() -> None:
    tree = robot_tree()
    tree.set_transform("map", "odom", planar_pose(0.0, 0.0, 0.0), 2.0)  # now a dynamic edge
    tree.set_transform("map", "odom", planar_pose(1.0, 0.0, 0.0), 2.5)
    found = tree.lookup("map", "base_link")
    assert found.stamp == 2.5  # odom -> base_link has 3.0, map -> odom only 2.5
    assert found.matrix[0, 3] == pytest.approx(1.0 + 2.5)


def test_old_samples_leave_after_the_cache_time_static_ones_never() -> None:
    tree = TransformTree(cache_time=1.0)
    tree.set_transform("base_link", "lidar", LIDAR, 0.0, static=True)
    for i in range(50):
        tree.set_transform("odom", "base_link", planar_pose(0.1 * i, 0, 0), 0.1 * i)
    with pytest.raises(TransformError, match="before the oldest"):
        tree.lookup("odom", "base_link", 3.0)
    assert tree.can_transform("odom", "base_link", 4.0)
    np.testing.assert_allclose(tree.lookup("base_link", "lidar", 1e9).matrix, LIDAR)


def test_samples_out_of_order_are_sorted_and_a_repeated_stamp_replaces() -> None:
    tree = TransformTree()
    tree.set_transform("odom", "base_link", planar_pose(2.0, 0, 0), 2.0)
    tree.set_transform("odom", "base_link", planar_pose(0.0, 0, 0), 0.0)
    tree.set_transform("odom", "base_link", planar_pose(5.0, 0, 0), 2.0)
    assert tree.lookup("odom", "base_link", 1.0).matrix[0, 3] == pytest.approx(2.5)


def test_unknown_and_unconnected_frames_are_named() -> None:
    tree = robot_tree()
    with pytest.raises(
        TransformError, match=r"source frame 'gnss' is not in the tree \(frames: .*lidar"
    ):
        tree.lookup("odom", "gnss")
    with pytest.raises(TransformError, match="target frame 'world'"):
        tree.lookup("world", "lidar")
    tree.set_transform("world", "truth", np.eye(4), 0.0, static=True)
    with pytest.raises(
        TransformError, match="'lidar' hangs from root 'map', 'truth' from root 'world'"
    ):
        tree.lookup("truth", "lidar")


def test_refused_edges() -> None:
    tree = robot_tree()
    with pytest.raises(TransformError, match="would close a loop"):
        tree.set_transform("lidar", "odom", np.eye(4), 1.0)
    with pytest.raises(TransformError, match="two different frame names"):
        tree.set_transform("odom", "odom", np.eye(4), 1.0)
    with pytest.raises(TransformError, match="not a rigid motion"):
        tree.set_transform("odom", "x", np.diag([2.0, 1.0, 1.0, 1.0]), 1.0)
    with pytest.raises(TransformError, match="not a finite 4x4"):
        tree.set_transform("odom", "x", np.full((4, 4), np.nan), 1.0)
    with pytest.raises(TransformError, match="stamp nan"):
        tree.set_transform("odom", "x", np.eye(4), math.nan)
    with pytest.raises(ValueError, match="cache_time"):
        TransformTree(cache_time=0.0)


def test_a_child_sent_with_a_new_parent_is_re_parented() -> None:
    tree = robot_tree()
    tree.set_transform("odom", "lidar", np.eye(4), 0.0, static=True)
    assert tree.parent_of("lidar") == "odom"
    assert tree.chain("base_link", "lidar") == ["lidar", "odom", "base_link"]


def test_feeding_and_looking_up_from_two_threads() -> None:
    tree = robot_tree()
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            for i in range(2000):
                tree.set_transform("odom", "base_link", planar_pose(i, 0, 0), 4.0 + i * 0.01)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=feed)
    thread.start()
    while thread.is_alive():
        tree.lookup("map", "lidar")
    thread.join()
    assert not errors
    assert tree.lookup("odom", "base_link").stamp == pytest.approx(4.0 + 1999 * 0.01)


def test_clear_dynamic_keeps_the_static_transforms_for_a_new_timeline() -> None:
    tree = robot_tree()
    tree.clear_dynamic()  # time went back: the old odometry would be taken as newest
    assert not tree.can_transform("odom", "base_link")
    np.testing.assert_allclose(tree.lookup("base_link", "lidar").matrix, LIDAR)
    tree.set_transform("odom", "base_link", planar_pose(0.5, 0.0, 0.0), 0.5)
    assert tree.lookup("map", "lidar").stamp == 0.5
