"""Geodesy: WGS84 positions <-> a site's local frame, through the ENU tangent plane at a datum.

A :class:`Datum` anchors a local frame (a map, or an SDF world) on the Earth: the WGS84
latitude, longitude and ellipsoidal height of its origin, and ``heading_deg``, the angle from
east to the frame's +x axis, counter-clockwise (SDF ``<spherical_coordinates>`` semantics:
0 means x east, y north). Local coordinates are ``enu = Rz(heading) @ local``.

WGS84 <-> ENU is pymap3d's (``geodetic2enu`` / ``enu2geodetic``: geodetic -> ECEF -> ENU on
the WGS84 ellipsoid, the chain gz-math ``SphericalCoordinates`` uses; reference: Groves,
*Principles of GNSS, Inertial, and Multisensor Integrated Navigation Systems*, 2nd ed., 2.4).
Every function takes and returns arrays and is vectorised over the leading axis; latitude and
longitude are in [deg], heights and offsets in [m].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymap3d  # type: ignore[import-untyped]  # no stubs or py.typed
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Datum:
    """Where a local frame sits on the Earth (see the module docstring)."""

    latitude: float  # [deg] WGS84 of the frame's origin
    longitude: float  # [deg]
    altitude: float  # [m] WGS84 ellipsoidal height (SDF <elevation>)
    heading_deg: float = 0.0  # [deg] from east to the frame's +x axis, counter-clockwise


def _columns(values: ArrayLike, what: str) -> NDArray[np.float64]:
    out = np.asarray(values, dtype=np.float64)
    if out.shape[-1:] != (3,):
        raise ValueError(f"{what}: expected (..., 3) values, got shape {out.shape}")
    return out


def geodetic_to_enu(datum: Datum, lla: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) [m] east, north, up of WGS84 points ``lla`` (latitude [deg], longitude
    [deg], height [m]) from the datum's origin (its heading does not apply)."""
    p = _columns(lla, "lla")
    e, n, u = pymap3d.geodetic2enu(
        p[..., 0], p[..., 1], p[..., 2], datum.latitude, datum.longitude, datum.altitude
    )
    return np.stack(np.broadcast_arrays(e, n, u), axis=-1).astype(np.float64)


def enu_to_geodetic(datum: Datum, enu: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) WGS84 latitude [deg], longitude [deg], height [m] of ENU offsets [m] from
    the datum's origin."""
    p = _columns(enu, "enu")
    lat, lon, alt = pymap3d.enu2geodetic(
        p[..., 0], p[..., 1], p[..., 2], datum.latitude, datum.longitude, datum.altitude
    )
    return np.stack(np.broadcast_arrays(lat, lon, alt), axis=-1).astype(np.float64)


def local_to_enu(datum: Datum, xyz: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) [m] ENU of local-frame points ``xyz`` [m]: ``Rz(heading) @ xyz``."""
    p = _columns(xyz, "xyz")
    h = math.radians(datum.heading_deg)
    c, s = math.cos(h), math.sin(h)
    return np.stack([c * p[..., 0] - s * p[..., 1], s * p[..., 0] + c * p[..., 1], p[..., 2]], -1)


def enu_to_local(datum: Datum, enu: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) [m] local-frame points of ENU offsets [m]: ``Rz(-heading) @ enu``."""
    p = _columns(enu, "enu")
    h = math.radians(datum.heading_deg)
    c, s = math.cos(h), math.sin(h)
    return np.stack([c * p[..., 0] + s * p[..., 1], -s * p[..., 0] + c * p[..., 1], p[..., 2]], -1)


def geodetic_to_local(datum: Datum, lla: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) [m] local-frame (map or world) positions of WGS84 points (latitude [deg],
    longitude [deg], height [m])."""
    return enu_to_local(datum, geodetic_to_enu(datum, lla))


def local_to_geodetic(datum: Datum, xyz: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) WGS84 latitude [deg], longitude [deg], height [m] of local-frame points [m]."""
    return enu_to_geodetic(datum, local_to_enu(datum, xyz))
