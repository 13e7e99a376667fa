"""The 3D lidar: a multi-beam spinning scanner as Gazebo's gpu_lidar declares it in model.sdf.

Ray layout follows the SDF `<lidar><scan>`: `horizontal_samples` azimuths evenly spaced from
`horizontal_min` to `horizontal_max` and `vertical_samples` beams from `vertical_min` to
`vertical_max` (both ends included, as Gazebo does).

The sweep takes its period (1 / rate) as a real spinning lidar's does: the head turns
counter-clockwise (azimuth increasing, the fan's column order) once per period, firing azimuth
column ``c`` at ``c * azimuth_step / (2 pi)`` of the period after the sweep's first column, from
wherever the sensor is at that time. Each point carries that offset [s] (`LidarScan.times`, the
``t`` field Ouster's and Velodyne's drivers publish) and the scan's stamp is the first column's
time, as Ouster stamps its clouds. The sweep is cast in ``sectors`` azimuth sectors of
contiguous columns, each from the sensor pose at the middle of its columns' times (the caller
gives one pose per sector, `sector_times`); within a sector the pose is off by at most half a
sector's motion: at the robot's 2 m/s and 1.2 rad/s with 20 sectors, 5 mm and 3 mrad (one
column is 3.5 mrad), against the range noise's 3 cm. Agents and obstacles are where the scene
holds them when the sweep is cast (its end). Gazebo's gpu_lidar takes the whole scan at one
instant; real sensors do not, and a localiser tuned on such scans would look better than it is.
One pose for every sector gives that instant scan (a sensor standing still).

Range model, in order:

1. true range of the first hit (`scene.Scene.cast_sweep`: static world, obstacles,
   agents), cast only as far as any return could come back within range_max;
2. weather (`weather.apply_to_ranges`: attenuation-limited range, dropouts, drop/fog returns);
3. gaussian noise N(noise_mean, noise_stddev) plus the weather's range-dependent extra noise;
4. quantisation to `range_resolution` (round to the nearest multiple);
5. rays with no hit, or a range outside [range_min, range_max], give no return and are dropped.

Intensity is a simple calibrated-reflectivity model on Velodyne's 0..255 scale:
``255 * reflectivity(category) * |cos(incidence)| * weather attenuation``, with the near-infrared
reflectivities of `REFLECTIVITY` (typical values for 905 nm: asphalt ~0.1-0.2, concrete ~0.3,
vegetation ~0.4-0.5, retro-reflective markings higher). Rings are the vertical beam index,
0 for the lowest beam, as the Velodyne driver numbers them. Points come ring by ring, each ring
in column order.
"""

from __future__ import annotations

import itertools
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
    stamp: float  # [s] sim time of the sweep's first column (the header stamp)
    frame_id: str
    points: NDArray[np.float32]  # (N,3) [m] in the sensor frame; rays without return dropped
    intensities: NDArray[np.float32]  # (N,) 0..255
    rings: NDArray[np.uint16]  # (N,) vertical beam index, 0 = lowest
    times: NDArray[np.float32]  # (N,) [s] each point's firing time after `stamp`, in [0, period)


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


def sectors_of(cols: int, sectors: int) -> NDArray[np.int64]:
    """(K+1,) first column of each of ``sectors`` contiguous, nearly equal azimuth sectors of
    ``cols`` columns, and ``cols`` (at most one sector per column)."""
    k = max(1, min(int(sectors), cols))
    return np.round(np.linspace(0, cols, k + 1)).astype(np.int64)


class Lidar:
    """A lidar model for one `LidarSpec`; all randomness comes from `rng`.

    Args:
        spec: the sensor (rate, ray layout, range and noise).
        rng: the noise's generator.
        weather_model: coefficients of the weather's effect on ranges.
        sectors: azimuth sectors the sweep is cast in, each from its own pose (module doc);
            at most one per column.
    Raises:
        ValueError: ``sectors`` below 1.
    """

    def __init__(
        self,
        spec: LidarSpec,
        rng: np.random.Generator,
        weather_model: WeatherModel = DEFAULT_MODEL,
        *,
        sectors: int = 1,
    ) -> None:
        if sectors < 1:
            raise ValueError(f"lidar {spec.name}: sectors must be >= 1, got {sectors}")
        self.spec = spec
        self.rng = rng
        self.weather_model = weather_model
        self.fan = ray_fan(spec)
        self._frame = spec.frame_id or spec.name
        fan = self.fan
        self.period = 1.0 / spec.rate  # [s]
        # [s] firing time of each column after the first: the head turns 2 pi per period.
        turn = np.arange(fan.cols) * abs(fan.azimuth_step) / (2.0 * math.pi)
        self.column_times = (np.minimum(turn, 1.0 - 1e-9) * self.period).astype(np.float32)
        bounds = sectors_of(fan.cols, sectors)
        self.sectors = len(bounds) - 1
        self._bounds = bounds
        #: [s] after the stamp, the middle of each sector's column times: its pose's time.
        self.sector_times = np.array(
            [0.5 * (self.column_times[lo] + self.column_times[hi - 1])
             for lo, hi in itertools.pairwise(bounds)],
            dtype=np.float64,
        )  # fmt: skip
        sector = np.searchsorted(bounds, np.arange(fan.cols), side="right") - 1
        self._column_sector = sector.astype(np.int64)  # (cols,) the sector of each column

    def scan(
        self,
        scene: Scene,
        world_from_sensor: NDArray[np.floating],
        stamp: float,
        weather: WeatherState = CLEAR,
    ) -> LidarScan:
        """One sweep starting at sim time ``stamp`` [s] (its first column's time).

        ``world_from_sensor``: the sensor's pose at each sector's time (``stamp +
        sector_times``), (sectors, 4, 4), or one 4x4 pose for the whole sweep (standing still).

        Raises:
            ValueError: poses of another shape.
        """
        spec = self.spec
        poses = np.asarray(world_from_sensor, dtype=np.float64)
        if poses.shape == (4, 4):
            poses = np.broadcast_to(poses, (self.sectors, 4, 4))
        elif poses.shape != (self.sectors, 4, 4):
            raise ValueError(
                f"lidar {spec.name}: poses of shape {poses.shape}; expected (4, 4) or "
                f"({self.sectors}, 4, 4), one per sector"
            )
        # Nothing beyond this can come back within range_max, whatever the noise draws.
        cutoff = spec.range_max + 3.0 * spec.noise_stddev + 1.0
        hits = scene.cast_sweep(self.fan, self._bounds, poses, max_range=cutoff)
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
        # The noise: one draw per ray that may return, in ray order (in `_returns`).
        no_weather = np.zeros(0, dtype=np.float32)
        points, intensity, rings, times = _returns(
            d,
            hits.normal,
            hits.category,
            self.fan.directions,
            self.fan.cols,
            np.ascontiguousarray(poses[:, :3, :3]),
            self._column_sector,
            self.column_times,
            cutoff,
            self.rng,
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
            stamp=stamp,
            frame_id=self._frame,
            points=points,
            intensities=intensity,
            rings=rings,
            times=times,
        )


@numba.njit(cache=True)
def _returns(
    d: NDArray[np.float32],
    normal: NDArray[np.float32],
    category: NDArray[np.int16],
    directions: NDArray[np.float32],
    cols: int,
    rots: NDArray[np.float64],
    column_sector: NDArray[np.int64],
    column_times: NDArray[np.float32],
    cutoff: float,
    rng: np.random.Generator,
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
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint16], NDArray[np.float32]]:
    """Steps 3-5 of the range model, the intensities and the times, in ray order (module doc).

    d: (N,) ranges after the weather, `normal`, `category`: the hits, in ray order; rots (K,3,3):
    each sector's world <- sensor rotation, `column_sector` (cols,) the sector of each column,
    `column_times` (cols,) [s] its firing time. `rng` gives one standard normal (float64, the
    stream numpy's ``rng.standard_normal()`` gives) per ray with d <= cutoff, in ray order:
    drawn here, compiled, it costs a third of numpy's float32 draw of them all.
    Returns points (M,3) in the sensor frame, intensities (M,), rings (M,) and times (M,) [s]
    of the kept rays.
    """
    n = d.shape[0]
    count = 0
    for ray in range(n):
        if d[ray] <= cutoff:
            count += 1
    points = np.empty((count, 3), dtype=np.float32)
    intensity = np.empty(count, dtype=np.float32)
    rings = np.empty(count, dtype=np.uint16)
    times = np.empty(count, dtype=np.float32)
    m = 0
    res = np.float32(resolution)
    f_mean = np.float32(mean)
    for row in range(n // cols):
        for col in range(cols):
            ray = row * cols + col
            if not d[ray] <= cutoff:
                continue
            sigma = np.float32(stddev)
            if weather:
                sigma = np.float32(math.sqrt(stddev * stddev + extra_stddev[ray] ** 2))
            r = np.float32(d[ray] + (np.float32(rng.standard_normal()) * sigma + f_mean))
            if resolution > 0:
                r = np.float32(np.round(r / res)) * res
            if not (range_min <= r <= range_max):
                continue
            s = column_sector[col]
            dx, dy, dz = directions[ray, 0], directions[ray, 1], directions[ray, 2]
            points[m, 0], points[m, 1], points[m, 2] = dx * r, dy * r, dz * r
            # |cos incidence|: the world normal into the sensor frame (R^T n) against d.
            nx, ny, nz = normal[ray, 0], normal[ray, 1], normal[ray, 2]
            cos_inc = abs(
                (rots[s, 0, 0] * nx + rots[s, 1, 0] * ny + rots[s, 2, 0] * nz) * dx
                + (rots[s, 0, 1] * nx + rots[s, 1, 1] * ny + rots[s, 2, 1] * nz) * dy
                + (rots[s, 0, 2] * nx + rots[s, 1, 2] * ny + rots[s, 2, 2] * nz) * dz
            )
            value = intensity_by_code[max(0, category[ray])] * cos_inc
            if weather:
                if clutter[ray]:
                    value = 255.0
                value *= intensity_factor[ray]
            intensity[m] = min(max(value, 0.0), 255.0)
            rings[m] = row
            times[m] = column_times[col]
            m += 1
    return points[:m], intensity[:m], rings[:m], times[:m]
