"""Site sidecars: what a world file cannot say about a delivery site.

Each world `worlds/<site>.sdf` ships `worlds/<site>.site.yaml` (schema in docs/worlds.md):
the station (loading and charging poses), named delivery stops at building entrances, the
mapping route an operator would drive, and the walkway network pedestrians and the robot use.
Coordinates are in the world frame of the SDF file, metres and radians.

`load_site(path)` reads and validates a sidecar; every error names the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pose2D:
    x: float  # [m]
    y: float  # [m]
    yaw: float = 0.0  # [rad], counter-clockwise from east


@dataclass(frozen=True)
class Station:
    name: str
    loading: Pose2D  # where parcels are loaded
    charging: Pose2D  # where the robot docks to charge


@dataclass(frozen=True)
class Stop:
    name: str  # unique within the site, e.g. "dorm_3_north"
    pose: Pose2D  # where the robot parks, facing the entrance
    building: str  # model name of the building it serves
    entrance: tuple[float, float]  # [m] the door recipients come out of


@dataclass(frozen=True)
class MappingRoute:
    waypoints: tuple[tuple[float, float], ...]  # [m] driven in order along walkways
    closes_loop: bool  # the route returns to a place it passed before (for loop closure)
    length: float  # [m] polyline length of the waypoints


@dataclass(frozen=True)
class Walkways:
    """The path network pedestrians, cyclists and the robot travel along (undirected)."""

    nodes: dict[str, tuple[float, float]]  # name -> [m] position
    edges: tuple[tuple[str, str, float], ...]  # (a, b, width [m])


@dataclass(frozen=True)
class Site:
    name: str
    world: Path  # the SDF world this sidecar belongs to
    station: Station
    stops: tuple[Stop, ...]
    mapping_route: MappingRoute
    walkways: Walkways
    entrances: dict[str, tuple[float, float]]  # building entrances: pedestrian sources and sinks
    source: Path | None = None


class SiteError(ValueError):
    """A site sidecar is missing, malformed or inconsistent; the message names file and field."""


def load_site(path: Path) -> Site:
    """Read and validate `path` (a *.site.yaml); raises SiteError naming the file and field."""
    raise NotImplementedError("implemented by the worlds work of issue 3")
