"""Where the map sits on the Earth: fit the map -> ENU relation from GNSS fixes.

The map frame is anchored at the station (the drive's first pose), not at a GNSS position, so
the datum (WGS84 position of the map origin and the heading of the map's +x axis, as SDF
``<spherical_coordinates>`` gives it) is estimated: the antenna positions the trajectory puts
in the map are matched to the fixes in a local tangent plane by a weighted 2D rotation plus a
3D translation (Umeyama, "Least-squares estimation of transformation parameters between two
point patterns", IEEE PAMI 1991, without scale), made robust to multipath by iteratively
reweighted least squares with Huber weights (Huber, "Robust Estimation of a Location
Parameter", 1964). The geodesy (WGS84 <-> ENU <-> map) is `xiaomanlv_core.geodesy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geodesy import Datum, enu_to_geodetic, geodetic_to_local
from xiaomanlv_mapping.model import MappingError


@dataclass(frozen=True)
class DatumFit:
    datum: Datum
    inliers: NDArray[np.bool_]  # (N,) fixes within ``outlier_sigma`` of the fit
    rms: float  # [m] horizontal residual RMS of the inliers


def _weighted_rigid_2d(
    src: NDArray[np.float64], dst: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64]]:
    """Angle [rad] and translation [m] minimising sum w |Rz(a) src + t - dst|^2 (2D)."""
    ws = w / w.sum()
    ms, md = ws @ src, ws @ dst
    a, b = src - ms, dst - md
    sxx = float(ws @ (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1]))
    sxy = float(ws @ (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    angle = math.atan2(sxy, sxx)
    c, s = math.cos(angle), math.sin(angle)
    t = md - np.array([c * ms[0] - s * ms[1], s * ms[0] + c * ms[1]])
    return angle, t


def fit_datum(
    antenna_map: NDArray[np.float64],
    lla: NDArray[np.float64],
    sigmas: NDArray[np.float64],
    *,
    huber: float = 1.5,
    outlier_sigma: float = 4.0,
    iterations: int = 10,
) -> DatumFit:
    """Fit the datum that carries the map positions ``antenna_map`` onto the fixes ``lla``.

    Args:
        antenna_map: (N,3) [m] antenna positions in the map at the fix stamps.
        lla: (N,3) fixes: latitude [deg], longitude [deg], altitude [m].
        sigmas: (N,2) [m] horizontal and vertical standard deviation of each fix.
        huber: Huber threshold in standard deviations.
        outlier_sigma: fixes with a horizontal residual beyond this many standard deviations
            are reported as outliers.
        iterations: reweighting rounds.
    Raises:
        MappingError: fewer than 3 fixes, or fixes that do not span enough ground to fix the
            heading (all within 2 m of each other).
    """
    m = np.asarray(antenna_map, float)
    if len(m) < 3 or len(lla) != len(m):
        raise MappingError(
            f"datum: need at least 3 GNSS fixes matched to the trajectory, got {len(m)}"
        )
    if float(np.max(np.linalg.norm(m[:, :2] - m[:, :2].mean(0), axis=1))) < 2.0:
        raise MappingError("datum: the GNSS fixes span less than 2 m; the heading is unobservable")
    sig_h = np.maximum(np.asarray(sigmas, float)[:, 0], 1e-3)
    sig_v = np.maximum(np.asarray(sigmas, float)[:, 1], 1e-3)
    lat, lon, alt = (float(v) for v in np.asarray(lla, float)[0])
    angle = 0.0
    for _ in range(2):  # the second round in the tangent plane at the first round's origin
        ref = Datum(lat, lon, alt, 0.0)
        enu = geodetic_to_local(ref, lla)  # heading 0: east, north, up at ref's origin
        w = 1.0 / sig_h**2
        t = np.zeros(2)
        for _ in range(iterations):
            angle, t = _weighted_rigid_2d(m[:, :2], enu[:, :2], w)
            c, s = math.cos(angle), math.sin(angle)
            pred = m[:, :2] @ np.array([[c, s], [-s, c]]) + t
            r = np.linalg.norm(pred - enu[:, :2], axis=1) / sig_h
            w = np.where(r <= huber, 1.0, huber / np.maximum(r, 1e-12)) / sig_h**2
        wz = w * sig_h**2 / sig_v**2
        tz = float(np.sum(wz * (enu[:, 2] - m[:, 2])) / np.sum(wz))
        lat, lon, alt = enu_to_geodetic(ref, (t[0], t[1], tz)).tolist()
    heading = (math.degrees(angle) + 180.0) % 360.0 - 180.0
    guess = Datum(lat, lon, alt, heading)
    res = np.linalg.norm(geodetic_to_local(guess, lla)[:, :2] - m[:, :2], axis=1)
    inliers = res <= outlier_sigma * sig_h
    rms = float(np.sqrt(np.mean(res[inliers] ** 2))) if inliers.any() else math.inf
    return DatumFit(guess, inliers, rms)
