"""The types subsystems exchange: planar poses, stops and the station.

One home for what a site sidecar (`xiaomanlv_core.site`), a prior map's ``stops.yaml``
(`xiaomanlv_mapping.mapfiles`), the simulator's scenarios and the locker all mean by a stop:
a named place where the robot parks, facing a building's entrance. Coordinates are in the
site's ``map`` frame (REP 105; in the simulator the SDF world frame): x, y [m], yaw [rad]
counter-clockwise from +x. Frozen dataclasses, no ROS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pose2D:
    """A planar pose in the map frame."""

    x: float  # [m]
    y: float  # [m]
    yaw: float = 0.0  # [rad], counter-clockwise from +x (east in an ENU world)


@dataclass(frozen=True)
class Stop:
    """A named place the robot parks at: a delivery stop, or the station's loading or
    charging pose (which stops.yaml stores as stops named ``loading`` and ``charging``)."""

    name: str  # unique within the site, e.g. "dorm_3_north"
    x: float  # [m] where the robot parks
    y: float  # [m]
    yaw: float = 0.0  # [rad] facing the entrance
    building: str = ""  # model name of the building it serves ("" for none)
    # [m] the door recipients come out of; the site sidecar gives it, stops.yaml does not
    entrance: tuple[float, float] | None = None
    # why no route reaches it ("" when one does); the map build sets it in stops.yaml
    unreachable: str = ""

    @property
    def pose(self) -> Pose2D:
        return Pose2D(self.x, self.y, self.yaw)


@dataclass(frozen=True)
class Station:
    """Where a delivery round starts and ends."""

    name: str
    loading: Pose2D  # where parcels are loaded (a mapping drive starts here)
    charging: Pose2D  # where the robot docks to charge


@dataclass(frozen=True)
class StopSet:
    """The station and the delivery stops of a site, as a prior map carries them
    (``maps/<site>/stops.yaml``, ``/map/stops``)."""

    station: str  # the station's name
    loading: Stop  # the station's loading pose, as a stop
    charging: Stop  # the station's charging pose, as a stop
    stops: tuple[Stop, ...]

    @classmethod
    def of(cls, station: Station, stops: Iterable[Stop]) -> StopSet:
        """The set a map stores for a site's ``station`` and ``stops`` (entrances dropped:
        stops.yaml does not hold them)."""

        def parked(name: str, pose: Pose2D) -> Stop:
            return Stop(name, pose.x, pose.y, pose.yaw)

        return cls(
            station=station.name,
            loading=parked("loading", station.loading),
            charging=parked("charging", station.charging),
            stops=tuple(Stop(s.name, s.x, s.y, s.yaw, s.building) for s in stops),
        )

    def station_record(self) -> Station:
        """The station as a :class:`Station` (its loading and charging poses)."""
        return Station(self.station, self.loading.pose, self.charging.pose)
