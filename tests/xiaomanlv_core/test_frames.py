"""The frame tree's fixed parts (xiaomanlv_core.frames): sensor extrinsics, world <- map."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from xiaomanlv_core.frames import sensor_extrinsics, world_from_map
from xiaomanlv_core.geometry import planar_pose, transform_points
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.types import Pose2D


def test_every_sensor_of_the_shipped_robot_has_its_frame_and_pose() -> None:
    robot = load_robot(model_file())
    frames = sensor_extrinsics(robot)
    where = ("front_left", "front_right", "right_front", "right_rear",
             "rear_right", "rear_left", "left_rear", "left_front")  # fmt: skip
    assert list(frames) == ["lidar", "imu", "gnss", *(f"ultrasonic_{w}" for w in where)]
    np.testing.assert_allclose(frames["lidar"][:3, 3], [0.25, 0.0, 1.9])
    np.testing.assert_allclose(frames["gnss"][:3, 3], [-0.6, 0.0, 1.6])
    np.testing.assert_allclose(frames["imu"], robot.imu.pose)
    # the right-side rangers look to the right (-y of base_link)
    np.testing.assert_allclose(frames["ultrasonic_right_rear"][:3, 0], [0, -1, 0], atol=1e-6)


def test_two_sensors_on_one_frame_are_refused_naming_the_file() -> None:
    robot = load_robot(model_file())
    twin = dataclasses.replace(robot.ultrasonic[1], frame_id=robot.ultrasonic[0].frame_id)
    clash = dataclasses.replace(robot, ultrasonic=(robot.ultrasonic[0], twin))
    with pytest.raises(ValueError, match=r"model\.sdf: sensor 'ultrasonic_front_right' has frame"):
        sensor_extrinsics(clash)
    odom = dataclasses.replace(robot, imu=dataclasses.replace(robot.imu, name="odom"))
    with pytest.raises(ValueError, match="frame 'odom'"):
        sensor_extrinsics(odom)


def test_a_map_anchored_at_the_loading_pose_is_the_world() -> None:
    loading = Pose2D(150.0, -158.0, -math.pi / 2)
    np.testing.assert_allclose(world_from_map(loading, loading), np.eye(4), atol=1e-12)


def test_a_map_anchored_elsewhere_maps_its_loading_pose_onto_the_sites() -> None:
    site = Pose2D(150.0, -158.0, -math.pi / 2)
    in_map = Pose2D(0.0, 0.0, 0.0)  # a map whose origin is the loading pose
    t = world_from_map(site, in_map)
    np.testing.assert_allclose(t, planar_pose(150.0, -158.0, -math.pi / 2), atol=1e-12)
    # 2 m ahead of the station in the map is 2 m ahead of it (south) in the world
    ahead = transform_points(t, [[2.0, 0.0, 0.0]])[0]
    np.testing.assert_allclose(ahead, [150.0, -160.0, 0.0], atol=1e-9)
