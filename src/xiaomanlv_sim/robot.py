"""The robot as the simulator sees it: body, drive and sensors read from models/xiaomanlv/model.sdf.

`xiaomanlv_sim.sdf.load_robot` fills these frozen dataclasses from the Gazebo model (the same
file Gazebo runs), so the headless simulator and Gazebo share one description. Every pose is a
4x4 base_link-from-frame transform (base_link: centre of the wheel axle on the ground, x forward,
z up, REP 103/105). SI units, radians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class LidarSpec:
    """A scanning range sensor (SDF gpu_lidar): the 3D lidar and each ultrasonic ranger."""

    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-sensor
    horizontal_samples: int
    horizontal_min: float  # [rad]
    horizontal_max: float  # [rad]
    vertical_samples: int
    vertical_min: float  # [rad]
    vertical_max: float  # [rad]
    range_min: float  # [m]
    range_max: float  # [m]
    range_resolution: float  # [m]
    noise_stddev: float  # [m] gaussian range noise
    noise_mean: float = 0.0  # [m]
    frame_id: str = ""  # the sensor's frame name (defaults to `name`)


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian noise of one axis (SDF <noise type="gaussian">)."""

    mean: float = 0.0
    stddev: float = 0.0
    bias_mean: float = 0.0
    bias_stddev: float = 0.0


@dataclass(frozen=True)
class ImuSpec:
    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-sensor
    gyro: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NoiseSpec(), NoiseSpec(), NoiseSpec())
    accel: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NoiseSpec(), NoiseSpec(), NoiseSpec())
    # gyro in [rad/s], accel in [m/s^2]


@dataclass(frozen=True)
class GnssSpec:
    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-antenna
    horizontal_stddev: float  # [m]
    vertical_stddev: float  # [m]
    velocity_stddev: float  # [m/s]
    multipath_height: float  # [m] buildings at least this tall reflect
    multipath_distance: float  # [m] within this range of such a wall
    multipath_jump_stddev: float  # [m]
    outage_sky_fraction: float  # no fix when more of the sky than this is blocked


@dataclass(frozen=True)
class DiffDriveSpec:
    wheel_separation: float  # [m]
    wheel_radius: float  # [m]
    odom_rate: float  # [Hz]
    max_velocity: float  # [m/s]
    min_velocity: float  # [m/s] (negative: reverse)
    max_angular_velocity: float  # [rad/s]
    max_linear_acceleration: float  # [m/s^2]
    min_linear_acceleration: float  # [m/s^2] (negative: braking)
    max_angular_acceleration: float  # [rad/s^2]
    slip_stddev: float  # share of wheel travel, per wheel, white
    twist_stddev: float  # [m/s] on reported speeds
    min_angular_velocity: float = 0.0  # [rad/s] (negative); 0 when the file gives none
    min_angular_acceleration: float = 0.0  # [rad/s^2] (negative); 0 when the file gives none


@dataclass(frozen=True)
class BodySpec:
    mass: float  # [kg] all links: base_link (with a full load of parcels), wheels, casters
    length: float  # [m] collision box of base_link, x
    width: float  # [m] y
    height: float  # [m] z
    box_pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-box-centre
    max_roll: float = 0.35  # [rad] tipped over beyond this
    max_pitch: float = 0.35  # [rad]
    max_step: float = 0.12  # [m] highest kerb edge a wheel climbs


@dataclass(frozen=True)
class RobotSpec:
    name: str
    source: Path
    body: BodySpec
    drive: DiffDriveSpec
    lidar: LidarSpec
    imu: ImuSpec
    gnss: GnssSpec
    ultrasonic: tuple[LidarSpec, ...]  # in file order; topic "ultrasonic/<where>"
