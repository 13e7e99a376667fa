"""Ultrasonic rangers: first echo over the cone, REP 117 infinities, noise, rain."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.robot import LidarSpec, load_robot, model_file
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sensors.ultrasonic import Ultrasonic, read_rangers
from xiaomanlv_sim.weather import WeatherState
from xiaomanlv_sim.world import Box, Shape, World


@pytest.fixture(scope="module")
def front_left() -> LidarSpec:
    return load_robot(model_file()).ultrasonic[0]


def scene_with_wall(distance: float) -> Scene:
    pose = np.eye(4)
    pose[:3, 3] = (distance + 0.5, 0.0, 0.0)
    wall = Shape("wall", Box((1.0, 20.0, 4.0)), pose, "wall", "wall")
    return Scene.from_world(World("t", Path("t.sdf"), (wall,), None))


def empty_scene() -> Scene:
    return Scene.from_world(World("t", Path("t.sdf"), (), None))


def test_reads_a_wall_ahead(front_left: LidarSpec) -> None:
    sonar = Ultrasonic(front_left, np.random.default_rng(0))
    reading = sonar.read(scene_with_wall(2.0), np.eye(4), 3.0)
    assert reading.range == pytest.approx(2.0, abs=5 * front_left.noise_stddev + 0.01)
    assert reading.stamp == 3.0
    assert reading.name == "ultrasonic_front_left"
    assert reading.frame_id == "ultrasonic_front_left"
    assert (reading.min_range, reading.max_range) == (front_left.range_min, front_left.range_max)
    assert reading.field_of_view == pytest.approx(2 * 0.261799)


def test_noise_statistics(front_left: LidarSpec) -> None:
    spec = replace(front_left, range_resolution=0.0, noise_stddev=0.02, noise_mean=0.01)
    sonar = Ultrasonic(spec, np.random.default_rng(1))
    scene = scene_with_wall(1.5)
    values = np.array([sonar.read(scene, np.eye(4), 0.0).range for _ in range(2000)])
    assert abs(values.mean() - 1.51) < 5 * 0.02 / math.sqrt(2000)
    assert abs(values.std(ddof=1) - 0.02) < 5 * 0.02 / math.sqrt(4000)


def test_nothing_in_range_is_plus_inf_and_too_close_is_minus_inf(front_left: LidarSpec) -> None:
    sonar = Ultrasonic(replace(front_left, noise_stddev=0.0), np.random.default_rng(0))
    assert sonar.read(empty_scene(), np.eye(4), 0.0).range == math.inf
    assert sonar.read(scene_with_wall(6.0), np.eye(4), 0.0).range == math.inf
    assert sonar.read(scene_with_wall(0.01), np.eye(4), 0.0).range == -math.inf


def test_first_echo_anywhere_in_the_cone(front_left: LidarSpec) -> None:
    """A pedestrian off the axis but inside the cone is the nearest echo."""
    sonar = Ultrasonic(replace(front_left, noise_stddev=0.0), np.random.default_rng(0))
    scene = scene_with_wall(4.0)
    # 0.2 rad off the axis (the cone's edge rays are at 0.26 rad), 2 m away.
    scene.set_agents(np.array([[2.0 * math.cos(0.2), 2.0 * math.sin(0.2)]]), np.array([0.15]),
                     np.array([1.7]))  # fmt: skip
    reading = sonar.read(scene, np.eye(4), 0.0)
    assert reading.range < 2.0
    assert reading.range > 1.7
    scene.set_agents(np.array([[0.0, 2.0]]), np.array([0.15]), np.array([1.7]))  # to the side
    assert sonar.read(scene, np.eye(4), 0.0).range == pytest.approx(4.0, abs=0.02)


def test_rain_gives_false_short_echoes_in_proportion(front_left: LidarSpec) -> None:
    scene = scene_with_wall(3.0)
    counts = []
    for rain in (0.0, 0.5, 1.0):
        sonar = Ultrasonic(front_left, np.random.default_rng(4))
        readings = [sonar.read(scene, np.eye(4), 0.0, WeatherState(rain=rain)).range
                    for _ in range(1000)]  # fmt: skip
        counts.append(sum(r < 1.0 for r in readings))
    # 10 % false echoes per reading at full rain (UltrasonicWeather.rain_false_echo).
    assert counts[0] == 0
    assert counts[1] == pytest.approx(50, abs=25)
    assert counts[2] == pytest.approx(100, abs=35)


def test_batched_rangers_read_as_each_ranger_alone() -> None:
    """read_rangers (one cast for all) gives what each ranger's own read gives, bit for bit."""
    specs = load_robot(model_file()).ultrasonic
    scene = scene_with_wall(1.2)
    scene.set_agents(
        np.array([[-1.5, 0.2], [0.0, -1.4]]), np.array([0.3, 0.3]), np.array([1.7, 1.7])
    )
    body = np.eye(4)
    poses = [body @ s.pose for s in specs]
    rain = WeatherState(rain=0.5)
    alone = [Ultrasonic(s, np.random.default_rng(i)) for i, s in enumerate(specs)]
    batch = [Ultrasonic(s, np.random.default_rng(i)) for i, s in enumerate(specs)]
    for stamp in (0.05, 0.1, 0.15):
        expected = [u.read(scene, p, stamp, rain) for u, p in zip(alone, poses, strict=True)]
        assert read_rangers(batch, scene, poses, stamp, rain) == expected
    finite = [r.range for r in expected if math.isfinite(r.range)]
    assert len(finite) >= 3  # the wall ahead and both agents are seen
