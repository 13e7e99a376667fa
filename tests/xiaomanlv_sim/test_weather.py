"""Weather windows and their effect on the lidar: range, dropouts, clutter, noise, intensity."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.robot import LidarSpec
from xiaomanlv_sim.scenario import WeatherSpec
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sensors.lidar import Lidar
from xiaomanlv_sim.weather import (
    DEFAULT_MODEL,
    WeatherState,
    apply_to_ranges,
    weather_at,
)
from xiaomanlv_sim.world import Box, Shape, World

SPEC = LidarSpec(
    name="lidar", topic="lidar", rate=10.0, pose=np.eye(4),
    horizontal_samples=201, horizontal_min=-0.2, horizontal_max=0.2,
    vertical_samples=10, vertical_min=-0.1, vertical_max=0.1,
    range_min=0.5, range_max=100.0, range_resolution=0.0, noise_stddev=0.05,
)  # fmt: skip
RAYS = 201 * 10


def wall_scene(distance: float) -> Scene:
    pose = np.eye(4)
    pose[:3, 3] = (distance + 0.5, 0.0, 0.0)
    wall = Shape("wall", Box((1.0, 400.0, 50.0)), pose, "wall", "wall")
    return Scene.from_world(World("t", Path("t.sdf"), (wall,), None))


def test_weather_at_windows() -> None:
    specs = (
        WeatherSpec("rain", start=10.0, end=20.0, intensity=0.4),
        WeatherSpec("rain", start=15.0, end=30.0, intensity=0.9),
        WeatherSpec("fog", start=0.0, end=5.0, intensity=1.5),
    )
    assert weather_at(specs, 2.0) == WeatherState(rain=0.0, fog=1.0)  # clamped to 1
    assert weather_at(specs, 5.0) == WeatherState()  # end is exclusive
    assert weather_at(specs, 12.0) == WeatherState(rain=0.4)
    assert weather_at(specs, 16.0) == WeatherState(rain=0.9)  # the stronger overlapping one
    assert weather_at(specs, 30.0).clear


def test_max_range_shrinks_with_intensity() -> None:
    rain = [DEFAULT_MODEL.max_range(WeatherState(rain=i), 100.0) for i in (0, 0.25, 0.5, 1)]
    fog = [DEFAULT_MODEL.max_range(WeatherState(fog=i), 100.0) for i in (0, 0.25, 0.5, 1)]
    assert rain[0] == fog[0] == 100.0
    assert rain == sorted(rain, reverse=True) and fog == sorted(fog, reverse=True)
    assert rain[-1] == pytest.approx(55.0, abs=5.0)  # calibration stated in weather.py
    assert fog[-1] == pytest.approx(15.0, abs=3.0)  # dense fog, 30 m visibility
    # The attenuation test agrees with max_range: a target just inside returns, just outside not.
    state = WeatherState(rain=1.0)
    edge = DEFAULT_MODEL.max_range(state, 100.0)
    d = np.array([edge - 0.5, edge + 0.5], dtype=np.float32)
    model = replace(DEFAULT_MODEL, rain_dropout=0.0, rain_near_rate=0.0)
    out = apply_to_ranges(d, state, np.random.default_rng(0), range_min=0.5, range_max=100.0,
                          model=model)  # fmt: skip
    assert np.isfinite(out.distance[0]) and out.distance[1] == math.inf


def test_clear_weather_changes_nothing_and_draws_nothing() -> None:
    d = np.array([1.0, np.inf, 50.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    out = apply_to_ranges(d, WeatherState(), rng, range_min=0.5, range_max=100.0)
    np.testing.assert_array_equal(out.distance, d)
    assert not out.clutter.any()
    assert rng.random() == np.random.default_rng(0).random()


def wall_returns(scan_points: np.ndarray, distance: float) -> np.ndarray:
    r = np.linalg.norm(scan_points, axis=1)
    true = distance / (scan_points[:, 0] / r)
    return np.abs(r - true) < 0.5


@pytest.mark.parametrize("seed", [11, 12])
def test_rain_dropouts_and_near_returns_in_proportion(seed: int) -> None:
    scene = wall_scene(20.0)
    counts = {}
    for rain in (0.0, 0.5, 1.0):
        lidar = Lidar(SPEC, np.random.default_rng(seed))
        wall = near = 0
        for _ in range(10):
            scan = lidar.scan(scene, np.eye(4), 0.0, WeatherState(rain=rain))
            on_wall = wall_returns(scan.points, 20.0)
            wall += int(on_wall.sum())
            near += int((np.linalg.norm(scan.points, axis=1) <= DEFAULT_MODEL.rain_near_max).sum())
        counts[rain] = (wall, near)
    n = 10 * RAYS
    # Lost from the wall: dropouts (5 % at full rain) plus rays turned into drop returns (1 %).
    for rain in (0.5, 1.0):
        lost = 1 - counts[rain][0] / n
        expected = DEFAULT_MODEL.rain_dropout * rain + DEFAULT_MODEL.rain_near_rate * rain
        assert lost == pytest.approx(expected, abs=4 * math.sqrt(expected / n))
        near_expected = DEFAULT_MODEL.rain_near_rate * rain * n
        assert counts[rain][1] == pytest.approx(near_expected, abs=4 * math.sqrt(near_expected))
    assert counts[0.0] == (n, 0)


def test_rain_adds_range_noise_growing_with_range() -> None:
    scene = wall_scene(30.0)
    spread = {}
    for rain in (0.0, 1.0):
        lidar = Lidar(replace(SPEC, range_max=200.0), np.random.default_rng(3))
        errs = []
        for _ in range(5):
            scan = lidar.scan(scene, np.eye(4), 0.0, WeatherState(rain=rain))
            on_wall = wall_returns(scan.points, 30.0)
            r = np.linalg.norm(scan.points[on_wall], axis=1)
            errs.append(r - 30.0 / (scan.points[on_wall, 0] / r))
        spread[rain] = float(np.concatenate(errs).std())
    expected = math.hypot(SPEC.noise_stddev, DEFAULT_MODEL.rain_range_noise * 30.0)
    assert spread[0.0] == pytest.approx(SPEC.noise_stddev, rel=0.05)
    assert spread[1.0] == pytest.approx(expected, rel=0.05)


def test_dense_fog_hides_a_far_wall_and_dims_a_near_one() -> None:
    far = wall_scene(40.0)
    clear = Lidar(SPEC, np.random.default_rng(0)).scan(far, np.eye(4), 0.0)
    foggy = Lidar(SPEC, np.random.default_rng(0)).scan(far, np.eye(4), 0.0, WeatherState(fog=1.0))
    assert wall_returns(clear.points, 40.0).sum() == RAYS
    assert wall_returns(foggy.points, 40.0).sum() == 0
    # Fog back-scatter: a few returns within metres of the sensor.
    near = np.linalg.norm(foggy.points, axis=1) < 10.0
    assert near.sum() == pytest.approx(DEFAULT_MODEL.fog_near_rate * RAYS, rel=0.5)
    close = wall_scene(8.0)
    lit = Lidar(SPEC, np.random.default_rng(0)).scan(close, np.eye(4), 0.0)
    dim = Lidar(SPEC, np.random.default_rng(0)).scan(close, np.eye(4), 0.0, WeatherState(fog=0.5))
    on_wall = wall_returns(dim.points, 8.0)
    assert dim.intensities[on_wall].mean() < 0.8 * lit.intensities.mean()


def test_weather_is_deterministic_given_the_generator() -> None:
    scene = wall_scene(15.0)
    state = WeatherState(rain=0.7, fog=0.3)
    a = Lidar(SPEC, np.random.default_rng(9)).scan(scene, np.eye(4), 0.0, state)
    b = Lidar(SPEC, np.random.default_rng(9)).scan(scene, np.eye(4), 0.0, state)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.intensities, b.intensities)
