"""Ultrasonic rangers: the nearest echo within a narrow cone, as one `RangeReading`.

Gazebo has no sonar sensor; model.sdf declares each ranger as a narrow gpu_lidar (a few
horizontal x vertical samples over ~30 deg), the usual stand-in, and a sonar reports the
*first* echo in its beam, so the reading is the minimum range over the cone's rays (Elfes,
"Sonar-based real-world mapping and navigation", IEEE J. Robotics and Automation 3(3), 1987,
beam model reduced to its first-echo behaviour). Then gaussian noise N(noise_mean,
noise_stddev), quantisation to `range_resolution`, and REP 117's conventions for the result:
``+inf`` when nothing is within `range_max`, ``-inf`` when the echo is closer than `range_min`.

Rain (`weather.UltrasonicWeather`): drops striking the membrane give false short echoes and
a little extra noise; fog does not affect ultrasound at these ranges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.robot import LidarSpec
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sensors.lidar import ray_fan
from xiaomanlv_sim.weather import (
    CLEAR,
    DEFAULT_ULTRASONIC_WEATHER,
    UltrasonicWeather,
    WeatherState,
)


@dataclass(frozen=True)
class RangeReading:
    stamp: float  # [s] sim time
    frame_id: str
    name: str  # sensor name, e.g. "ultrasonic_front_left"
    range: float  # [m]; +inf nothing in range, -inf closer than min_range (REP 117)
    min_range: float  # [m]
    max_range: float  # [m]
    field_of_view: float  # [rad] full horizontal cone angle


class Ultrasonic:
    """One ultrasonic ranger for a `LidarSpec` (the narrow gpu_lidar of model.sdf)."""

    def __init__(
        self,
        spec: LidarSpec,
        rng: np.random.Generator,
        weather_model: UltrasonicWeather = DEFAULT_ULTRASONIC_WEATHER,
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.weather_model = weather_model
        self.fan = ray_fan(spec)
        self.field_of_view = float(spec.horizontal_max - spec.horizontal_min)
        self._frame = spec.frame_id or spec.name

    def read(
        self,
        scene: Scene,
        world_from_sensor: NDArray[np.floating],
        stamp: float,
        weather: WeatherState = CLEAR,
    ) -> RangeReading:
        """One reading from the sensor pose `world_from_sensor` (4x4) at sim time `stamp` [s]."""
        nearest = scene.nearest_hits([self.fan], [world_from_sensor], [self.cull_range])
        return self.reading(float(nearest[0]), stamp, weather)

    @property
    def cull_range(self) -> float:
        """[m] agents and obstacles farther than this from the sensor are not tested."""
        return self.spec.range_max + 1.0

    def reading(
        self, true_range: float, stamp: float, weather: WeatherState = CLEAR
    ) -> RangeReading:
        """The reading when the cone's nearest echo is at `true_range` [m] (inf: none), at sim
        time `stamp` [s]."""
        spec = self.spec
        # Draw the same random numbers whatever the scene, so readings stay reproducible.
        noise = self.rng.standard_normal()
        u, false_echo = self.rng.random(2)
        sigma = math.hypot(spec.noise_stddev, self.weather_model.rain_noise * weather.rain)
        value = true_range + spec.noise_mean + sigma * noise
        if u < self.weather_model.rain_false_echo * weather.rain:
            echo = spec.range_min + false_echo * max(
                0.0, self.weather_model.rain_false_echo_max - spec.range_min
            )
            value = min(value, echo)
        if spec.range_resolution > 0 and math.isfinite(value):
            value = round(value / spec.range_resolution) * spec.range_resolution
        if value > spec.range_max:
            value = math.inf
        elif value < spec.range_min:
            value = -math.inf
        return RangeReading(
            stamp=stamp,
            frame_id=self._frame,
            name=spec.name,
            range=value,
            min_range=spec.range_min,
            max_range=spec.range_max,
            field_of_view=self.field_of_view,
        )


def read_rangers(
    rangers: Sequence[Ultrasonic],
    scene: Scene,
    world_from_sensors: Sequence[NDArray[np.floating]],
    stamp: float,
    weather: WeatherState = CLEAR,
) -> list[RangeReading]:
    """One reading per ranger, as ``ranger.read`` gives, with one batched cast for all of them.

    `world_from_sensors`: each ranger's 4x4 pose. Same readings as calling each ranger's `read`
    in turn (each draws from its own generator), at about a sixth of the cost for eight.
    """
    nearest = scene.nearest_hits(
        [u.fan for u in rangers], world_from_sensors, [u.cull_range for u in rangers]
    ).tolist()
    return [u.reading(d, stamp, weather) for u, d in zip(rangers, nearest, strict=True)]
