"""The 3D lidar: a multi-beam spinning scanner as Gazebo's gpu_lidar declares it in model.sdf.

Ray layout follows the SDF `<lidar><scan>`: `horizontal_samples` azimuths evenly spaced from
`horizontal_min` to `horizontal_max` and `vertical_samples` beams from `vertical_min` to
`vertical_max` (both ends included, as Gazebo does). Every ray is cast each scan (the whole scan
is taken at one instant, as Gazebo's gpu_lidar does; no motion distortion). Range model, in order:

1. true range of the first hit (`scene.Scene.cast_fan`: static world, obstacles, agents),
   cast only as far as any return could come back within range_max;
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

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.robot import LidarSpec
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
        pose = np.asarray(world_from_sensor, dtype=np.float64)
        # Nothing beyond this can come back within range_max, whatever the noise draws.
        cutoff = spec.range_max + 3.0 * spec.noise_stddev + 1.0
        hits = scene.cast_fan(self.fan, pose, max_range=cutoff)
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
        # One draw per ray that may return, in ray order.
        noise = self.rng.standard_normal(int(np.count_nonzero(d <= cutoff)), dtype=np.float32)
        no_weather = np.zeros(0, dtype=np.float32)
        points, intensity, rings = _returns(
            d,
            hits.normal,
            hits.category,
            self.fan.directions,
            self.fan.cols,
            pose[:3, :3],
            cutoff,
            noise,
            spec.noise_stddev,
            spec.noise_mean,
            spec.range_resolution,
            spec.range_min,
            spec.range_max,
            _INTENSITY_BY_CODE,
            effects is not None,
            effects.extra_stddev if effects is not None else no_weather,
            effects.clutter if effects is not None else np.zeros(0, dtype=np.bool_),
            effects.intensity_factor if effects is not None else no_weather,
        )
        return LidarScan(
            stamp=stamp, frame_id=self._frame, points=points, intensities=intensity, rings=rings
        )


@numba.njit(cache=True)
def _returns(
    d: NDArray[np.float32],
    normal: NDArray[np.float32],
    category: NDArray[np.int16],
    directions: NDArray[np.float32],
    cols: int,
    rot: NDArray[np.float64],
    cutoff: float,
    noise: NDArray[np.float32],
    stddev: float,
    mean: float,
    resolution: float,
    range_min: float,
    range_max: float,
    intensity_by_code: NDArray[np.float32],
    weather: bool,
    extra_stddev: NDArray[np.float32],
    clutter: NDArray[np.bool_],
    intensity_factor: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint16]]:
    """Steps 3-5 of the range model and the intensities, in ray order (see the module doc).

    d: (N,) ranges after the weather; `noise`: one standard normal per ray with d <= cutoff.
    Returns points (M,3) in the sensor frame, intensities (M,), rings (M,) of the kept rays.
    """
    n = d.shape[0]
    points = np.empty((noise.shape[0], 3), dtype=np.float32)
    intensity = np.empty(noise.shape[0], dtype=np.float32)
    rings = np.empty(noise.shape[0], dtype=np.uint16)
    m = 0
    j = 0
    res = np.float32(resolution)
    for ray in range(n):
        if not d[ray] <= cutoff:
            continue
        sigma = np.float32(stddev)
        if weather:
            sigma = np.float32(math.sqrt(stddev * stddev + extra_stddev[ray] ** 2))
        r = np.float32(d[ray] + (noise[j] * sigma + np.float32(mean)))
        j += 1
        if resolution > 0:
            r = np.float32(np.round(r / res)) * res
        if not (range_min <= r <= range_max):
            continue
        dx, dy, dz = directions[ray, 0], directions[ray, 1], directions[ray, 2]
        points[m, 0], points[m, 1], points[m, 2] = dx * r, dy * r, dz * r
        # |cos incidence|: the world normal into the sensor frame (R^T n) against d.
        nx, ny, nz = normal[ray, 0], normal[ray, 1], normal[ray, 2]
        cos_inc = abs(
            (rot[0, 0] * nx + rot[1, 0] * ny + rot[2, 0] * nz) * dx
            + (rot[0, 1] * nx + rot[1, 1] * ny + rot[2, 1] * nz) * dy
            + (rot[0, 2] * nx + rot[1, 2] * ny + rot[2, 2] * nz) * dz
        )
        code = max(0, category[ray])
        value = intensity_by_code[code] * cos_inc
        if weather:
            if clutter[ray]:
                value = 255.0
            value *= intensity_factor[ray]
        intensity[m] = min(max(value, 0.0), 255.0)
        rings[m] = ray // cols
        m += 1
    return points[:m], intensity[:m], rings[:m]
