"""The 3D lidar: a multi-beam spinning scanner as Gazebo's gpu_lidar declares it in model.sdf.

Ray layout follows the SDF `<lidar><scan>`: `horizontal_samples` azimuths evenly spaced from
`horizontal_min` to `horizontal_max` and `vertical_samples` beams from `vertical_min` to
`vertical_max` (both ends included, as Gazebo does). Every ray is cast each scan (the whole scan
is taken at one instant, as Gazebo's gpu_lidar does; no motion distortion). Range model, in order:

1. true range of the first hit (`scene.Scene.cast_fan`: static world, obstacles, agents);
2. weather (`weather.apply_to_ranges`: attenuation-limited range, dropouts, drop/fog returns);
3. gaussian noise N(noise_mean, noise_stddev) plus the weather's range-dependent extra noise;
4. quantisation to `range_resolution` (round to the nearest multiple);
5. rays with no hit, or a range outside [range_min, range_max], give no return and are dropped.

Intensity is a simple calibrated-reflectivity model on Velodyne's 0..255 scale:
``255 * reflectivity(category) * |cos(incidence)| * weather attenuation``, with the near-infrared
reflectivities of `REFLECTIVITY` (typical values for 905 nm: asphalt ~0.1-0.2, concrete ~0.3,
vegetation ~0.4-0.5, retro-reflective markings higher). Rings are the vertical beam index,
0 for the lowest beam, as the Velodyne driver numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.robot import LidarSpec
from xiaomanlv_sim.scene import CATEGORIES, RayFan, Scene
from xiaomanlv_sim.weather import (
    CLEAR,
    DEFAULT_MODEL,
    RangeEffects,
    WeatherModel,
    WeatherState,
    apply_to_ranges,
)

#: Near-infrared reflectivity by hit category (0 = unknown category).
REFLECTIVITY: dict[str, float] = {
    "": 0.3, "building": 0.35, "wall": 0.35, "tree": 0.45, "lamp_post": 0.3, "bench": 0.3,
    "bollard": 0.6, "kerb": 0.3, "ramp": 0.3, "fence": 0.3, "gate": 0.3, "car": 0.5,
    "ground": 0.15, "field": 0.45, "agent": 0.3, "obstacle": 0.4,
}  # fmt: skip
_REFLECTIVITY_BY_CODE = np.array([REFLECTIVITY.get(c, 0.3) for c in CATEGORIES], dtype=np.float32)
# 255 x reflectivity by category code; NO_HIT (-1, only under weather clutter) clips to code 0.
_INTENSITY_BY_CODE = 255.0 * _REFLECTIVITY_BY_CODE


@dataclass(frozen=True)
class LidarScan:
    stamp: float  # [s] sim time
    frame_id: str
    points: NDArray[np.float32]  # (N,3) [m] in the sensor frame; rays without return dropped
    intensities: NDArray[np.float32]  # (N,) 0..255
    rings: NDArray[np.uint16]  # (N,) vertical beam index, 0 = lowest


def _angles(samples: int, lo: float, hi: float) -> NDArray[np.float64]:
    if samples == 1:
        return np.array([0.5 * (lo + hi)])
    return np.linspace(lo, hi, samples)


def ray_fan(spec: LidarSpec) -> RayFan:
    """The sensor-frame ray layout of a lidar spec (rows = vertical beams, lowest first)."""
    az = _angles(spec.horizontal_samples, spec.horizontal_min, spec.horizontal_max)
    el = _angles(spec.vertical_samples, spec.vertical_min, spec.vertical_max)
    order = np.argsort(el, kind="stable")
    return RayFan.grid(az, el[order])


class Lidar:
    """A lidar model for one `LidarSpec`; all randomness comes from `rng`."""

    def __init__(
        self, spec: LidarSpec, rng: np.random.Generator, weather_model: WeatherModel = DEFAULT_MODEL
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.weather_model = weather_model
        self.fan = ray_fan(spec)
        self._rings = np.repeat(np.arange(self.fan.rows, dtype=np.uint16), self.fan.cols)
        self._frame = spec.frame_id or spec.name

    def scan(
        self,
        scene: Scene,
        world_from_sensor: NDArray[np.floating],
        stamp: float,
        weather: WeatherState = CLEAR,
    ) -> LidarScan:
        """One full scan from the sensor pose `world_from_sensor` (4x4) at sim time `stamp` [s]."""
        spec = self.spec
        hits, rays = scene.cast_fan_world(self.fan, world_from_sensor)
        effects: RangeEffects | None = None
        d = hits.distance
        if not weather.clear:  # clear weather changes nothing and draws nothing
            effects = apply_to_ranges(
                d,
                weather,
                self.rng,
                range_min=spec.range_min,
                range_max=spec.range_max,
                model=self.weather_model,
            )
            d = effects.distance
        idx = np.flatnonzero(d <= spec.range_max + 3.0 * spec.noise_stddev + 1.0)
        r = d[idx]
        noise = self.rng.standard_normal(len(idx), dtype=np.float32)
        if effects is None:
            noise *= spec.noise_stddev
        else:
            noise *= np.sqrt(spec.noise_stddev**2 + effects.extra_stddev[idx] ** 2)
        noise += spec.noise_mean
        r += noise
        if spec.range_resolution > 0:
            res = np.float32(spec.range_resolution)
            r /= res
            np.round(r, out=r)
            r *= res
        keep = np.flatnonzero((r >= spec.range_min) & (r <= spec.range_max))
        idx, r = idx.take(keep), r.take(keep)
        points = self.fan.directions.take(idx, axis=0)
        points *= r[:, None]
        # Intensity: reflectivity x |cos incidence| x weather attenuation.
        normals = hits.normal.take(idx, axis=0)
        normals *= rays.take(idx, axis=0)[:, 3:]
        cos_inc = normals[:, 0] + normals[:, 1]
        cos_inc += normals[:, 2]
        np.abs(cos_inc, out=cos_inc)
        intensity = _INTENSITY_BY_CODE.take(hits.category.take(idx), mode="clip")
        intensity *= cos_inc
        if effects is not None:
            clutter = effects.clutter[idx]
            intensity = np.where(clutter, 255.0, intensity) * effects.intensity_factor[idx]
        np.clip(intensity, 0.0, 255.0, out=intensity)
        return LidarScan(
            stamp=stamp,
            frame_id=self._frame,
            points=points,
            intensities=intensity.astype(np.float32, copy=False),
            rings=self._rings.take(idx),
        )
