"""Lidar model: noise statistics as the SDF declares, layout, ranges, intensities."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.robot import LidarSpec, load_robot, model_file
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sensors.lidar import Lidar
from xiaomanlv_sim.world import Box, Shape, World


def wall_scene(distance: float, height: float = 20.0) -> Scene:
    """A wall facing the sensor: its near face is the plane x = distance."""
    pose = np.eye(4)
    pose[:3, 3] = (distance + 0.5, 0.0, 0.0)
    wall = Shape("wall", Box((1.0, 400.0, height)), pose, "wall", "wall")
    return Scene.from_world(World("t", Path("t.sdf"), (wall,), None))


def spec(**changes: float) -> LidarSpec:
    base = LidarSpec(
        name="lidar", topic="lidar", rate=10.0, pose=np.eye(4),
        horizontal_samples=61, horizontal_min=-0.3, horizontal_max=0.3,
        vertical_samples=4, vertical_min=-0.2, vertical_max=0.2,
        range_min=0.5, range_max=100.0, range_resolution=0.0, noise_stddev=0.05, noise_mean=0.0,
    )  # fmt: skip
    return replace(base, **changes)


def true_ranges(points: np.ndarray, distance: float) -> np.ndarray:
    """Range to the plane x = distance along each measured point's direction."""
    dirs = points / np.linalg.norm(points, axis=1, keepdims=True)
    return distance / dirs[:, 0]


def test_noise_mean_and_stddev_match_the_spec() -> None:
    lidar = Lidar(spec(noise_mean=0.02, noise_stddev=0.05), np.random.default_rng(7))
    scene = wall_scene(10.0)
    errors = []
    for _ in range(20):
        scan = lidar.scan(scene, np.eye(4), 0.0)
        r = np.linalg.norm(scan.points, axis=1)
        errors.append(r - true_ranges(scan.points, 10.0))
    err = np.concatenate(errors)
    n = len(err)
    assert n == 20 * 61 * 4
    # Mean within 5 standard errors; the sample stddev of n normals has stddev sigma/sqrt(2n).
    assert abs(err.mean() - 0.02) < 5 * 0.05 / math.sqrt(n)
    assert abs(err.std(ddof=1) - 0.05) < 5 * 0.05 / math.sqrt(2 * n)


def test_ranges_are_quantised_to_the_resolution() -> None:
    lidar = Lidar(spec(range_resolution=0.01), np.random.default_rng(1))
    r = np.linalg.norm(lidar.scan(wall_scene(7.3), np.eye(4), 0.0).points, axis=1)
    steps = r / 0.01
    np.testing.assert_allclose(steps, np.round(steps), atol=2e-3)
    assert len(np.unique(np.round(steps))) > 5


def test_ring_and_azimuth_layout() -> None:
    lidar = Lidar(spec(noise_stddev=0.0), np.random.default_rng(0))
    scan = lidar.scan(wall_scene(5.0), np.eye(4), 1.5)
    assert scan.stamp == 1.5 and scan.frame_id == "lidar"
    assert scan.points.dtype == np.float32 and scan.rings.dtype == np.uint16
    assert np.bincount(scan.rings).tolist() == [61, 61, 61, 61]
    elevation = np.arcsin(scan.points[:, 2] / np.linalg.norm(scan.points, axis=1))
    for ring, expected in enumerate(np.linspace(-0.2, 0.2, 4)):
        np.testing.assert_allclose(elevation[scan.rings == ring], expected, atol=1e-5)
        azimuth = np.arctan2(scan.points[scan.rings == ring, 1], scan.points[scan.rings == ring, 0])
        np.testing.assert_allclose(np.sort(azimuth), np.linspace(-0.3, 0.3, 61), atol=1e-5)


def test_points_are_in_the_sensor_frame() -> None:
    lidar = Lidar(spec(noise_stddev=0.0, vertical_samples=1, vertical_min=0.0, vertical_max=0.0),
                  np.random.default_rng(0))  # fmt: skip
    pose = np.eye(4)
    pose[:3, 3] = (2.0, 0.0, 1.0)
    # Turned 180 deg, the sensor sees nothing; facing the wall, points are 3 m ahead in x.
    turned = pose.copy()
    turned[:2, :2] = [[-1, 0], [0, -1]]
    assert len(lidar.scan(wall_scene(5.0), turned, 0.0).points) == 0
    scan = lidar.scan(wall_scene(5.0), pose, 0.0)
    centre = scan.points[np.argmin(np.abs(scan.points[:, 1]))]
    np.testing.assert_allclose(centre, [3.0, 0.0, 0.0], atol=1e-4)


@pytest.mark.parametrize(("distance", "visible"), [(0.3, False), (0.8, True), (99.0, True)])
def test_min_and_max_range(distance: float, visible: bool) -> None:
    lidar = Lidar(spec(noise_stddev=0.0, horizontal_min=-0.01, horizontal_max=0.01,
                       horizontal_samples=3, vertical_samples=1, vertical_min=0.0,
                       vertical_max=0.0), np.random.default_rng(0))  # fmt: skip
    scan = lidar.scan(wall_scene(distance, height=400.0), np.eye(4), 0.0)
    assert (len(scan.points) == 3) is visible


def test_beyond_max_range_gives_no_return() -> None:
    lidar = Lidar(spec(range_max=20.0), np.random.default_rng(0))
    assert len(lidar.scan(wall_scene(25.0), np.eye(4), 0.0).points) == 0


def test_intensity_falls_with_incidence() -> None:
    lidar = Lidar(spec(noise_stddev=0.0, horizontal_min=-1.2, horizontal_max=1.2),
                  np.random.default_rng(0))  # fmt: skip
    scan = lidar.scan(wall_scene(5.0), np.eye(4), 0.0)
    assert np.all((scan.intensities >= 0) & (scan.intensities <= 255))
    azimuth = np.abs(np.arctan2(scan.points[:, 1], scan.points[:, 0]))
    head_on = scan.intensities[azimuth < 0.05].mean()
    oblique = scan.intensities[azimuth > 1.0].mean()
    assert oblique < 0.6 * head_on


def test_same_seed_same_scan_and_different_seed_differs() -> None:
    scene = wall_scene(8.0)
    a = Lidar(spec(), np.random.default_rng(5)).scan(scene, np.eye(4), 0.0)
    b = Lidar(spec(), np.random.default_rng(5)).scan(scene, np.eye(4), 0.0)
    c = Lidar(spec(), np.random.default_rng(6)).scan(scene, np.eye(4), 0.0)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)


def test_shipped_lidar_on_flat_ground() -> None:
    """The real 16 x 1800 lidar over open ground: only the downward beams return."""
    robot = load_robot(model_file())
    pose = np.eye(4)
    ground = Shape("g", Box((400.0, 400.0, 0.1)), pose.copy(), "g", "ground")
    ground.pose[2, 3] = -0.05
    scene = Scene.from_world(World("t", Path("t.sdf"), (ground,), None))
    lidar = Lidar(robot.lidar, np.random.default_rng(0))
    scan = lidar.scan(scene, robot.lidar.pose, 0.0)
    # Beams below the horizontal hit the ground within range; the others return nothing.
    elevations = np.linspace(robot.lidar.vertical_min, robot.lidar.vertical_max, 16)
    height = robot.lidar.pose[2, 3]
    within = [e < 0 and height / math.sin(-e) <= robot.lidar.range_max for e in elevations]
    assert sorted(set(scan.rings.tolist())) == [i for i, w in enumerate(within) if w]
    assert len(scan.points) == 1800 * sum(within)
    np.testing.assert_allclose(scan.points[:, 2], -height, atol=0.2)
