"""The lidar sweep in motion (issue 13): per-point times, smear, and deskewing with odometry.

The robot drives away from a wall at 2 m/s. A spinning lidar's sweep takes 0.1 s, so its
columns are measured 0 to 0.2 m apart; the wall lies behind the robot, where the sweep begins
(azimuth -pi) and ends (+pi). Placed with the sensor pose at the header stamp, the raw points of
the wall are smeared off its plane by up to the 0.2 m the robot travelled; carried to the stamp
with their ``t`` and the wheel odometry (`xiaomanlv_core.deskew`), they lie on it within the
range noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.deskew import deskew
from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.scenario import Scenario
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig
from xiaomanlv_sim.world import Box, Shape, World

WALL_FACE = -7.85  # [m] world x of the wall's face towards the robot
SPEED = 2.0  # [m/s] the robot's top speed


def _box(name: str, xyz: tuple[float, float, float], size: tuple[float, ...], cat: str) -> Shape:
    pose = np.eye(4)
    pose[:3, 3] = xyz
    return Shape(f"{name}::link::c", Box(size), pose, name, cat)


@pytest.fixture(scope="module")
def robot() -> RobotSpec:
    return load_robot(model_file())


@pytest.fixture(scope="module")
def sweep(robot: RobotSpec) -> dict[str, object]:
    """One sweep at 2 m/s, the wheel odometry up to it and the true body poses per tick."""
    world = World(
        "wall",
        Path("wall.sdf"),
        (
            _box("ground", (20.0, 0.0, -0.05), (80.0, 40.0, 0.1), "ground"),
            _box("wall", (WALL_FACE - 0.15, 0.0, 3.0), (0.3, 40.0, 6.0), "wall"),
        ),
        None,
    )
    scenario = Scenario(name="t", world="wall", seed=3, duration=10.0, start=Pose2D(0, 0, 0))
    sim = Simulator(world, robot, scenario=scenario, config=SimulatorConfig(ultrasonic=False))
    sim.set_cmd_vel(SPEED, 0.0)
    truth: dict[int, np.ndarray] = {0: sim.state.world_from_base()}
    odometry: list[OdomReading] = []
    scan: LidarScan | None = None
    while scan is None and sim.time < 6.0:
        readings = sim.step()
        truth[sim.tick] = sim.state.world_from_base()
        for r in readings:
            if isinstance(r, OdomReading):
                odometry.append(r)
            elif isinstance(r, LidarScan) and r.stamp >= 3.0:
                scan = r
    assert scan is not None
    assert sim.state.speed == pytest.approx(SPEED, abs=0.02)
    return {"scan": scan, "odometry": odometry, "truth": truth, "rate": sim.physics_rate}


def _wall_offsets(points: np.ndarray, world_from_sensor: np.ndarray) -> tuple[np.ndarray, ...]:
    """Signed distance [m] of the wall's points from its face (negative: beyond it), and the
    mask of the points that are the wall's (behind the robot, above the ground)."""
    world = points @ world_from_sensor[:3, :3].T + world_from_sensor[:3, 3]
    on_wall = (world[:, 0] < WALL_FACE + 1.0) & (world[:, 2] > 0.2)
    return world[:, 0] - WALL_FACE, on_wall


def test_points_carry_their_time_in_the_sweep(sweep, robot: RobotSpec) -> None:
    scan = sweep["scan"]
    assert scan.times.dtype == np.float32 and scan.times.shape == (len(scan.points),)
    period = 1.0 / robot.lidar.rate
    assert 0.0 <= scan.times.min() < 0.002 and period - 0.002 < scan.times.max() < period
    # The head turns counter-clockwise from -pi: a point's time follows its azimuth.
    azimuth = np.arctan2(scan.points[:, 1], scan.points[:, 0])
    turned = (azimuth - robot.lidar.horizontal_min + 1e-5) % (2 * math.pi) - 1e-5
    expected = turned / (2 * math.pi) * period
    np.testing.assert_allclose(scan.times, expected, atol=2e-4)


def test_moving_sweep_is_smeared_and_deskewing_puts_it_back_on_the_wall(
    sweep, robot: RobotSpec
) -> None:
    scan, odometry, truth = sweep["scan"], sweep["odometry"], sweep["truth"]
    mount = robot.lidar.pose
    at_stamp = truth[round(scan.stamp * sweep["rate"])] @ mount  # world <- lidar at the stamp

    raw, on_wall = _wall_offsets(scan.points, at_stamp)
    assert on_wall.sum() > 500
    raw, t = raw[on_wall], scan.times[on_wall]
    start, end = t < 0.01, t > 0.09  # the sweep's first and last tenths (both behind)
    assert start.sum() > 20 and end.sum() > 20
    # Raw: each point sits as far beyond the wall as the robot drove since the stamp, within
    # the range noise. The bound on every point is 6 sigma: over ~6000 points a 4 sigma bound
    # fails for about one noise draw in four (the max of the residual is a tail statistic).
    assert abs(np.mean(raw[start])) < 0.03
    assert np.mean(raw[end]) < -0.15
    residual, noise = raw + SPEED * t, robot.lidar.noise_stddev
    assert abs(np.mean(residual)) < 0.01
    assert np.sqrt(np.mean(residual**2)) < 1.3 * noise
    assert np.max(np.abs(residual)) < 6.0 * noise

    # Deskewed with t and the wheel odometry (odom <- lidar at each odometry stamp).
    stamps = np.array([r.stamp for r in odometry])
    poses = np.array([planar_pose(*r.pose) @ mount for r in odometry])
    fixed = deskew(scan.points, scan.stamp + scan.times, (stamps, poses), scan.stamp)
    back, _ = _wall_offsets(fixed, at_stamp)
    back = back[on_wall]
    assert abs(np.mean(back[end])) < 0.02 and abs(np.mean(back[start])) < 0.02
    assert np.sqrt(np.mean(back**2)) < 1.3 * noise  # within the range noise (0.03 m)
    assert np.sqrt(np.mean(raw**2)) > 3.0 * noise


def test_standing_still_the_sweep_is_the_instant_scan(robot: RobotSpec) -> None:
    """One pose for every sector gives exactly the scan cast as one fan."""
    from xiaomanlv_sim.scene import Scene
    from xiaomanlv_sim.sensors.lidar import Lidar

    world = World("w", Path("w.sdf"), (_box("wall", (6.0, 0.0, 1.0), (0.3, 30, 4), "wall"),), None)
    scene = Scene.from_world(world)
    pose = planar_pose(0.0, 0.0, 0.3)
    pose[2, 3] = 1.0
    one = Lidar(robot.lidar, np.random.default_rng(2)).scan(scene, pose, 1.0)
    many = Lidar(robot.lidar, np.random.default_rng(2), sectors=20)
    assert many.sectors == 20
    swept = many.scan(scene, np.broadcast_to(pose, (20, 4, 4)), 1.0)
    np.testing.assert_array_equal(swept.points, one.points)
    np.testing.assert_array_equal(swept.intensities, one.intensities)
    np.testing.assert_array_equal(swept.times, one.times)
    with pytest.raises(ValueError, match=r"expected \(4, 4\) or \(20, 4, 4\)"):
        many.scan(scene, np.zeros((3, 4, 4)), 1.0)
    with pytest.raises(ValueError, match="sectors must be >= 1"):
        Lidar(robot.lidar, np.random.default_rng(2), sectors=0)
