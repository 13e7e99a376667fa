"""The stack's coordinate frames (REP 105) and the fixed transforms between them.

The tree, root first (docs/frames.md)::

    map --(localiser)--> odom --(wheel odometry)--> base_link --(robot description)--> sensors

plus, in simulation only, ``world``: the SDF world frame the ground truth is given in.

- :func:`sensor_extrinsics`: base_link -> every sensor frame of the robot description
  (`xiaomanlv_core.robot`), named as the sensors' messages name them in ``header.frame_id``;
  what /tf_static and the URDF carry.
- :func:`world_from_map`: the one transform between the simulator's world frame and a map frame.
  A map build anchors the drive's first pose at the station's loading pose (docs/mapping.md),
  so a map knows that pose in ``map`` (its stops.yaml) and the site sidecar knows it in
  ``world``; the motion carrying one onto the other is ``T_world_map``. For a map built by
  ``xiaomanlv map build`` from a drive that starts at the loading pose it is the identity (the
  stops carry over unchanged); evaluation applies it all the same, so a map anchored anywhere
  else is still compared like with like.

Pure Python (numpy); 4x4 poses ``T_a_b`` map points of b into a (`xiaomanlv_core.geometry`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.robot import GnssSpec, ImuSpec, LidarSpec, RobotSpec
from xiaomanlv_core.types import Pose2D

MAP = "map"  # the site's fixed frame (REP 105): prior map, stops, routes
ODOM = "odom"  # continuous, drifting frame of the wheel odometry (REP 105)
BASE_LINK = "base_link"  # on the ground under the middle of the wheel axle, x forward, z up
WORLD = "world"  # the simulator's SDF world frame (ground truth); no robot has one


def sensor_frame(spec: LidarSpec | ImuSpec | GnssSpec) -> str:
    """The frame id a sensor stamps its messages with: the SDF ``gz_frame_id`` (lidar and
    rangers), else the sensor's name (as the simulator's sensors and Gazebo use them)."""
    return getattr(spec, "frame_id", "") or spec.name


def sensor_extrinsics(robot: RobotSpec) -> dict[str, NDArray[np.float64]]:
    """{sensor frame: 4x4 base_link-from-sensor} of every sensor of ``robot``, in the order
    lidar, imu, gnss, the ultrasonic rangers (file order).

    Raises:
        ValueError: two sensors share a frame name, or one is named like a frame of the tree
            above the sensors (map, odom, base_link, world); the message names the robot file.
    """
    out: dict[str, NDArray[np.float64]] = {}
    specs: list[LidarSpec | ImuSpec | GnssSpec] = [robot.lidar, robot.imu, robot.gnss]
    for spec in (*specs, *robot.ultrasonic):
        frame = sensor_frame(spec)
        if frame in out or frame in (MAP, ODOM, BASE_LINK, WORLD):
            raise ValueError(
                f"{robot.source}: sensor '{spec.name}' has frame '{frame}', which is already "
                "another frame of the tree"
            )
        out[frame] = np.array(spec.pose, dtype=np.float64)
    return out


def world_from_map(site_loading: Pose2D, map_loading: Pose2D) -> NDArray[np.float64]:
    """4x4 ``T_world_map``: the station's loading pose as the site sidecar gives it (world)
    composed with the inverse of the same pose as the map stores it (stops.yaml, map).

    A point ``p`` of the map is ``T_world_map @ p`` in the world; planar (z is shared: both
    frames have the ground at z = 0 under the station).
    """
    world_loading = planar_pose(site_loading.x, site_loading.y, site_loading.yaw)
    map_anchor = planar_pose(map_loading.x, map_loading.y, map_loading.yaw)
    return np.asarray(world_loading @ np.linalg.inv(map_anchor), dtype=np.float64)
