"""Messages of the localiser <-> its core's values: the status, the pose with covariance, a
NavSatFix into the map frame. Shared by the localiser node and its tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from numpy.typing import NDArray
from xiaomanlv.msg import LocalizationStatus

from xiaomanlv_core.geodesy import Datum, geodetic_to_local
from xiaomanlv_core.ros.poses import pose_msg
from xiaomanlv_core.ros.time import stamp_of
from xiaomanlv_nav.localization.localizer import Localizer, LocalizerUpdate

NAVSAT_NO_FIX = -1  # sensor_msgs/NavSatStatus.STATUS_NO_FIX
COVARIANCE_UNKNOWN = 0  # sensor_msgs/NavSatFix.COVARIANCE_TYPE_UNKNOWN


def pose_with_covariance_msg(
    pose: NDArray[np.float64], covariance: NDArray[np.float64], stamp: float, frame: str
) -> PoseWithCovarianceStamped:
    """geometry_msgs/PoseWithCovarianceStamped of a 4x4 pose and its 6x6 covariance
    [x y z roll pitch yaw] at ``stamp`` [s] in ``frame``."""
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = stamp_of(stamp)
    msg.header.frame_id = frame
    msg.pose.pose = pose_msg(pose)
    msg.pose.covariance = [float(v) for v in np.asarray(covariance, dtype=np.float64).reshape(36)]
    return msg


def status_msg(
    update: LocalizerUpdate, localizer: Localizer, malformed: int, frame: str
) -> LocalizationStatus:
    """xiaomanlv/LocalizationStatus of one sweep's update."""
    msg = LocalizationStatus()
    msg.header.stamp = stamp_of(update.stamp)
    msg.header.frame_id = frame
    msg.state = int(update.state)
    msg.reasons = list(update.reasons)
    msg.initialised = localizer.initialised
    msg.accepted = update.accepted
    reg = update.registration
    if reg is not None:
        msg.fitness = float(reg.fitness) if math.isfinite(reg.fitness) else 0.0
        msg.inlier_ratio = float(reg.inlier_ratio)
        msg.structure_ratio = float(reg.structure_ratio)
        msg.points = int(reg.points)
        msg.iterations = int(reg.iterations)
        msg.position_std = float(reg.position_std)
        msg.yaw_std = float(reg.yaw_std)
        msg.registration_ms = 1000.0 * float(reg.seconds)
    tiles = localizer.tile_map
    msg.tiles_loaded = len(tiles.loaded)
    msg.map_points = int(tiles.points)
    msg.sweeps = localizer.sweeps
    msg.accepted_sweeps = localizer.accepted
    msg.rejected_sweeps = localizer.rejected
    msg.malformed_messages = int(malformed)
    return msg


def fix_in_map(msg: Any, datum: Datum) -> tuple[NDArray[np.float64], NDArray[np.float64]] | str:
    """(xy (2,) [m], covariance (2,2) [m^2]) of a NavSatFix in the map frame of ``datum``, or
    the reason it is unusable: ``"no fix"``, ``"non-finite fix"``, ``"unknown covariance"``.
    The covariance is ENU (REP 145) turned by the datum's heading."""
    if int(msg.status.status) <= NAVSAT_NO_FIX:
        return "no fix"
    lla = np.array([msg.latitude, msg.longitude, msg.altitude], dtype=np.float64)
    cov = np.asarray(msg.position_covariance, dtype=np.float64).reshape(3, 3)[:2, :2]
    if not (np.all(np.isfinite(lla)) and abs(lla[0]) <= 90.0 and abs(lla[1]) <= 180.0):
        return "non-finite fix"
    if int(msg.position_covariance_type) == COVARIANCE_UNKNOWN or not np.all(np.isfinite(cov)):
        return "unknown covariance"
    xy = geodetic_to_local(datum, lla)[:2].reshape(2)
    h = math.radians(datum.heading_deg)  # map x is h from east, counter-clockwise
    r = np.array([[math.cos(h), math.sin(h)], [-math.sin(h), math.cos(h)]])  # map <- ENU
    return np.asarray(xy, dtype=np.float64), r @ cov @ r.T
