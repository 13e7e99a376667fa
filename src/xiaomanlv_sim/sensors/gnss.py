"""GNSS receiver model: the antenna's world position as WGS84 latitude/longitude/altitude.

Conversion: world (x, y, z) is rotated by the world's ``heading_deg`` (counter-clockwise, so
``heading_deg = 0`` means x east, y north as in all shipped worlds) into ENU at the origin of
``<spherical_coordinates>``, then ENU -> geodetic on the WGS84 ellipsoid by
`xiaomanlv_core.geodesy` (pymap3d; the same chain gz-math ``SphericalCoordinates`` uses).

Errors (all in metres in ENU before the conversion, as gz-sensors ``NavSatSensor`` adds its
noise): white gaussian on east, north and up with the sigma the receiver reports, UERE x DOP
(Kaplan & Hegarty, *Understanding GPS/GNSS*, 3rd ed. (2017), 11.2; Groves 2013, 9.4.3): the
spec's ``horizontal_stddev`` / ``vertical_stddev`` (and ``velocity_stddev`` for the Doppler
velocity, the antenna's: base_link's plus its rotation about the lever arm) are the open-sky
values, scaled by ``1 / sqrt(1 - b)`` with ``b`` the scene's ``sky_blocked_fraction`` at the
antenna. DOP goes as ``1 / sqrt(N)`` for ``N`` satellites
spread over the sky (the normal matrix ``G^T G`` sums one term per satellite), and blocking a
share ``b`` of the sky leaves about ``(1 - b) N``; the worse geometry of a one-sided view is not
modelled, so the scale is a lower bound (1.41 at the outage threshold 0.5). The covariance
reports that sigma, so fixes are consistent with it.

Multipath near tall buildings (``category == "building"`` at least ``multipath_height`` tall,
antenna within ``multipath_distance`` of the footprint): a piecewise-constant offset, redrawn
from N(0, multipath_jump_stddev^2) per axis after exponentially distributed holds (mean
``multipath_hold`` s, so it is correlated over a few seconds) and scaled by ``1 - d/D`` with
``d`` the distance to the wall. It is *not* in the reported covariance: a receiver cannot see
the reflection it tracks. GnssJump faults add their offset. No fix (status -1, NaN position,
covariance type unknown) while the scene's ``sky_blocked_fraction`` at the antenna
exceeds ``outage_sky_fraction``. Reference: Groves, *Principles of GNSS, Inertial, and
Multisensor Integrated Navigation Systems*, 2nd ed. (2013), 9.3.3 (multipath) and 2.4 (frames).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import shapely
from numpy.typing import NDArray

from xiaomanlv_core.geodesy import Datum, enu_to_geodetic
from xiaomanlv_sim.world import Box, Cylinder, World

log = logging.getLogger(__name__)

STATUS_NO_FIX = -1
STATUS_FIX = 0


class GnssParams(Protocol):
    """The fields of ``xiaomanlv_core.robot.GnssSpec`` the model reads."""

    @property
    def name(self) -> str: ...
    @property
    def rate(self) -> float: ...  # [Hz]
    @property
    def pose(self) -> NDArray[np.float64]: ...  # 4x4 base_link <- antenna
    @property
    def horizontal_stddev(self) -> float: ...  # [m]
    @property
    def vertical_stddev(self) -> float: ...  # [m]
    @property
    def velocity_stddev(self) -> float: ...  # [m/s]
    @property
    def multipath_height(self) -> float: ...  # [m]
    @property
    def multipath_distance(self) -> float: ...  # [m]
    @property
    def multipath_jump_stddev(self) -> float: ...  # [m]
    @property
    def outage_sky_fraction(self) -> float: ...  # 0..1


class Sky(Protocol):
    """What the model needs of ``xiaomanlv_sim.scene.Scene``."""

    def sky_blocked_fraction(
        self, xyz: NDArray[np.float64], min_elevation: float = 0.26
    ) -> float: ...


@dataclass(frozen=True)
class GnssReading:
    stamp: float  # [s] sim time
    frame_id: str
    latitude: float  # [deg] WGS84; NaN without a fix
    longitude: float  # [deg]
    altitude: float  # [m] above the WGS84 ellipsoid
    status: int  # -1 no fix, 0 fix (sensor_msgs/NavSatStatus)
    position_covariance: NDArray[np.float64]  # (9,) ENU row-major [m^2]; zeros without a fix
    velocity_enu: NDArray[np.float64]  # (3,) [m/s] east, north, up (NaN without a fix)
    # (9,) ENU row-major [(m/s)^2]; zeros without a fix
    velocity_covariance: NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(9), repr=False
    )


def dop_scale(sky_blocked: float) -> float:
    """Factor on the open-sky sigmas where a share ``sky_blocked`` (0..1) of the sky is hidden:
    ``1 / sqrt(1 - sky_blocked)`` (module docstring); inf when all of it is."""
    visible = 1.0 - min(max(sky_blocked, 0.0), 1.0)
    return 1.0 / math.sqrt(visible) if visible > 0.0 else math.inf


def tall_building_footprints(world: World, min_height: float) -> shapely.Geometry | None:
    """Union of the 2D footprints of building shapes whose top is at least ``min_height`` [m]
    above z = 0; None when there are none. Boxes and cylinders count; other geometry of a
    building is ignored (logged once)."""
    polygons = []
    skipped = 0
    for shape in world.shapes:
        if shape.category != "building":
            continue
        pose = np.asarray(shape.pose, float)
        rot, t = pose[:3, :3], pose[:3, 3]
        geom = shape.geometry
        if isinstance(geom, Box):
            half = np.asarray(geom.size, float) / 2.0
            top = t[2] + float(np.abs(rot[2]) @ half)
            if top < min_height:
                continue
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
            corners = (signs * half) @ rot.T + t
            polygons.append(shapely.MultiPoint(corners[:, :2]).convex_hull)
        elif isinstance(geom, Cylinder):
            top = (
                t[2]
                + abs(float(rot[2, 2])) * geom.length / 2.0
                + geom.radius * math.hypot(float(rot[2, 0]), float(rot[2, 1]))
            )
            if top < min_height:
                continue
            polygons.append(shapely.Point(t[0], t[1]).buffer(geom.radius))
        else:
            skipped += 1
    if skipped:
        log.info("multipath: %d building shapes that are not boxes or cylinders ignored", skipped)
    if not polygons:
        return None
    union = shapely.union_all(polygons)
    shapely.prepare(union)
    return union


class Gnss:
    """A GNSS receiver on the robot (see module docstring).

    Args:
        spec: rate, antenna pose and error parameters (a ``GnssSpec``).
        world: for the georeference and the tall buildings (multipath).
        rng: random generator.
        multipath_hold: [s] mean time a multipath offset holds before it is redrawn.
    Raises:
        ValueError: the world has no <spherical_coordinates>.
    """

    def __init__(
        self,
        spec: GnssParams,
        world: World,
        rng: np.random.Generator,
        *,
        multipath_hold: float = 3.0,
    ) -> None:
        if world.spherical_coordinates is None:
            raise ValueError(
                f"world '{world.name}' ({world.source}) has no <spherical_coordinates>: "
                "GNSS cannot georeference it"
            )
        self.spec = spec
        self.rng = rng
        self.frame_id = spec.name
        self.datum: Datum = world.spherical_coordinates
        h = math.radians(self.datum.heading_deg)
        self._ch, self._sh = math.cos(h), math.sin(h)  # world -> ENU: Rz(heading)
        self.lever = np.asarray(spec.pose, float)[:3, 3].copy()
        self.tall = tall_building_footprints(world, spec.multipath_height)
        self.multipath_hold = multipath_hold
        # Last wall distance asked of shapely, and where (see _multipath).
        self._wall_at = (math.nan, math.nan)
        self._wall_d = -math.inf
        # Last sky answer, the scene and antenna position it is for: a robot at rest asks the
        # same again (the blocked share counts static geometry only).
        self._sky_at: tuple[Sky, float, float, float] | None = None
        self._sky_blocked = 0.0
        self._mp_raw = np.zeros(2)
        self._mp_until = -math.inf
        self.multipath_offset = np.zeros(2)  # [m] east, north of the last reading
        # Sigmas and covariances of the last sky answer (see _scaled).
        self.dop_scale = 1.0  # the last fix's factor on the open-sky sigmas
        self._sigmas = (spec.horizontal_stddev, spec.vertical_stddev, spec.velocity_stddev)
        self._cov = np.zeros(9)
        self._vel_cov = np.zeros(9)
        self._scaled(0.0)

    def _scaled(self, sky_blocked: float) -> None:
        """Sigmas and covariances for ``sky_blocked``: UERE x DOP (module docstring)."""
        k = dop_scale(sky_blocked)
        self.dop_scale = k
        spec = self.spec
        h, v = k * spec.horizontal_stddev, k * spec.vertical_stddev
        sv = k * spec.velocity_stddev
        self._sigmas = (h, v, sv)
        self._cov = np.diag([h * h, h * h, v * v]).ravel()
        self._vel_cov = np.diag([sv * sv, sv * sv, sv * sv]).ravel()

    def antenna_position(self, world_from_base: NDArray[np.float64]) -> NDArray[np.float64]:
        """[m] antenna position in the world frame."""
        out: NDArray[np.float64] = world_from_base[:3, :3] @ self.lever + world_from_base[:3, 3]
        return out

    def wall_distance(self, xy: NDArray[np.float64]) -> float:
        """[m] distance from ``xy`` to the nearest tall building footprint (inf: none)."""
        if self.tall is None:
            return math.inf
        return float(shapely.distance(self.tall, shapely.Point(float(xy[0]), float(xy[1]))))

    def _multipath(self, xy: NDArray[np.float64], stamp: float) -> NDArray[np.float64]:
        reach = self.spec.multipath_distance
        # The distance to a set changes by at most the distance moved: while the last exact
        # distance minus the way moved since is still beyond reach, the antenna is too.
        x, y = float(xy[0]), float(xy[1])
        moved = math.hypot(x - self._wall_at[0], y - self._wall_at[1])
        if self._wall_d - moved >= reach + 1e-6:
            d = self._wall_d - moved  # a lower bound, >= reach: outside the zone
        else:
            d = self.wall_distance(xy)
            self._wall_at, self._wall_d = (x, y), d
        if d >= reach or self.spec.multipath_jump_stddev <= 0.0:
            self._mp_until = -math.inf  # leaving the zone ends the reflection
            return np.zeros(2)
        if stamp >= self._mp_until:
            self._mp_raw = self.rng.normal(0.0, self.spec.multipath_jump_stddev, size=2)
            self._mp_until = stamp + float(self.rng.exponential(self.multipath_hold))
        out: NDArray[np.float64] = (1.0 - d / reach) * self._mp_raw
        return out

    def read(
        self,
        world_from_base: NDArray[np.float64],
        velocity_world: NDArray[np.float64],
        stamp: float,
        sky: Sky,
        jump: tuple[float, float] = (0.0, 0.0),
        angular_velocity: NDArray[np.float64] | None = None,
    ) -> GnssReading:
        """One fix at sim time ``stamp`` [s].

        Args:
            world_from_base: 4x4 true pose of base_link.
            velocity_world: [m/s] true velocity of base_link in the world frame.
            sky: the scene, for the share of sky the buildings block.
            jump: [m] east, north offset of an active GnssJump fault.
            angular_velocity: [rad/s] true angular velocity of base_link in base_link; the
                velocity reported is the antenna's, ``v + R (omega x lever)``, as a receiver
                measures it (None: base_link's).
        """
        pos = self.antenna_position(world_from_base)
        px, py, pz = pos.tolist()
        at = (sky, px, py, pz)
        if at != self._sky_at:
            blocked = sky.sky_blocked_fraction(pos)
            if blocked != self._sky_blocked:
                self._scaled(blocked)
            self._sky_at, self._sky_blocked = at, blocked
        if self._sky_blocked > self.spec.outage_sky_fraction:
            nan = math.nan
            return GnssReading(
                stamp, self.frame_id, nan, nan, nan, STATUS_NO_FIX, np.zeros(9),
                np.full(3, nan),
            )  # fmt: skip
        # World -> ENU and the errors in metres, on Python floats (world_to_enu's arithmetic).
        n0, n1, n2, n3, n4, n5 = self.rng.standard_normal(6).tolist()
        h, v, sd = self._sigmas
        self.multipath_offset = self._multipath(pos[:2], stamp)
        m0, m1 = self.multipath_offset.tolist()
        ch, sh = self._ch, self._sh
        enu = np.array(
            (
                px * ch - py * sh + (h * n0 + m0 + jump[0]),
                px * sh + py * ch + (h * n1 + m1 + jump[1]),
                pz + v * n2,
            )
        )
        lat, lon, alt = enu_to_geodetic(self.datum, enu).tolist()
        velocity = np.asarray(velocity_world, float)
        if angular_velocity is not None:
            arm = np.cross(np.asarray(angular_velocity, float), self.lever)
            velocity = velocity + world_from_base[:3, :3] @ arm
        vx, vy, vz = velocity.tolist()
        vel = np.array((vx * ch - vy * sh + sd * n3, vx * sh + vy * ch + sd * n4, vz + sd * n5))
        return GnssReading(
            stamp, self.frame_id, lat, lon, alt, STATUS_FIX, self._cov, vel, self._vel_cov
        )
