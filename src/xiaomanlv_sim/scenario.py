"""Scenarios: one simulated situation, written as YAML (schema in docs/scenarios.md).

A scenario names a world, where the robot starts, the crowd, obstacles that were not there when
the site was mapped, weather and faults with their times, how recipients behave (used by later
issues), and a seed. `load_scenario` validates a file and names the bad field;
`generate_scenarios` draws randomised scenarios for campaigns. Times are simulation seconds
from the start; positions are in the world frame, metres and radians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xiaomanlv_sim.site import Pose2D

SensorName = Literal["lidar", "imu", "gnss", "odom", "ultrasonic"]


@dataclass(frozen=True)
class CrowdSpec:
    pedestrians: int = 0
    cyclists: int = 0
    group_fraction: float = 0.3  # share of pedestrians walking in groups of 2-4
    loiter_fraction: float = 0.1  # share of pedestrians standing about near entrances
    crossing_fraction: float = 0.2  # share who cut across open areas instead of keeping to paths


@dataclass(frozen=True)
class ObstacleSpec:
    """A static obstacle that was not there at mapping time."""

    kind: Literal["trolley", "barrier", "box"]
    pose: Pose2D
    size: tuple[float, float, float]  # [m] length, width, height
    appear_at: float = 0.0  # [s]
    disappear_at: float | None = None  # [s], None: stays


@dataclass(frozen=True)
class WeatherSpec:
    kind: Literal["rain", "fog"]
    start: float  # [s]
    end: float  # [s]
    intensity: float  # 0..1; 1 is the heaviest the sensors' models cover


@dataclass(frozen=True)
class SensorDropout:
    sensor: SensorName
    start: float  # [s]
    end: float  # [s]


@dataclass(frozen=True)
class GnssJump:
    start: float  # [s]
    end: float  # [s]
    offset: tuple[float, float]  # [m] east, north added to every fix in the window


@dataclass(frozen=True)
class ImuBiasStep:
    start: float  # [s], the bias stays from then on
    gyro: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [rad/s] added bias
    accel: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [m/s^2] added bias


@dataclass(frozen=True)
class WheelSlipPatch:
    center: tuple[float, float]  # [m]
    radius: float  # [m]
    slip: float  # 0..1, share of wheel travel lost while inside the patch
    start: float = 0.0  # [s]
    end: float | None = None  # [s]


@dataclass(frozen=True)
class DoorJam:
    compartment: int  # 1..50
    start: float  # [s]
    end: float | None = None  # [s]


Fault = SensorDropout | GnssJump | ImuBiasStep | WheelSlipPatch | DoorJam


@dataclass(frozen=True)
class RecipientSpec:
    stop: str
    behaviour: Literal["on_time", "late", "no_show", "wrong_code_first"] = "on_time"
    delay: float = 0.0  # [s] after the robot arrives


@dataclass(frozen=True)
class Scenario:
    name: str
    world: str  # world name (worlds/<world>.sdf) or a path to an SDF file
    seed: int
    duration: float  # [s]
    start: Pose2D | str  # a pose, or "station" / a stop name from the site sidecar
    crowd: CrowdSpec = CrowdSpec()
    obstacles: tuple[ObstacleSpec, ...] = ()
    weather: tuple[WeatherSpec, ...] = ()
    faults: tuple[Fault, ...] = ()
    recipients: tuple[RecipientSpec, ...] = ()
    source: Path | None = field(default=None, compare=False)


class ScenarioError(ValueError):
    """A scenario is malformed; the message names the file and the field (e.g. faults[2].end)."""


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario YAML file; raises ScenarioError naming the bad field."""
    raise NotImplementedError("implemented by the scenarios work of issue 3")
