"""Scans of a shipped world at chosen poses and the prior map they localise against: fixtures
for the localisation tests (tests only: the stack itself never touches the simulator).

`ScanRig.for_world` loads the world's scene (its ray caster), the robot's lidar and the shipped
map's PCD tiles (Open3D); `ScanRig.scan` casts one sweep from a ground-truth pose standing still
(one pose for every sector) and returns it in base_link, as the localiser receives it after
deskewing; `random_walkway_pose` draws a pose on the site's walkways with a random heading.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import pose_matrix
from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.site import Site, load_site
from xiaomanlv_core.stops import stops_from_dict
from xiaomanlv_core.types import Pose2D
from xiaomanlv_core.yamlfile import read_yaml
from xiaomanlv_sim import assets
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sensors.lidar import Lidar
from xiaomanlv_sim.weather import CLEAR, WeatherState

REPO = Path(__file__).resolve().parents[3]


def load_map_points(site: str) -> NDArray[np.float64]:
    """(N,3) [m] every PCD tile of maps/<site>/pointcloud_map, map frame."""
    files = sorted(glob.glob(str(REPO / "maps" / site / "pointcloud_map" / "*.pcd")))
    return np.concatenate([np.asarray(o3d.io.read_point_cloud(f).points) for f in files])


@dataclass
class ScanRig:
    site: Site
    robot: RobotSpec
    scene: Scene
    lidar: Lidar
    map_points: NDArray[np.float64]  # (N,3) map frame
    T_world_map: NDArray[np.float64]

    @classmethod
    def for_world(cls, name: str = "university", seed: int = 0) -> ScanRig:
        world_path = assets.world_file(name)
        world = load_world(world_path)
        site = load_site(assets.site_file(world_path))
        robot = load_robot(model_file())
        scene = Scene.from_world(world)
        lidar = Lidar(robot.lidar, np.random.default_rng(seed))
        path = REPO / "maps" / name / "stops.yaml"
        loading = stops_from_dict(read_yaml(path), str(path)).loading
        anchor = world_from_map(site.station.loading, Pose2D(loading.x, loading.y, loading.yaw))
        return cls(site, robot, scene, lidar, load_map_points(name), anchor)

    def truth(self, x: float, y: float, yaw: float) -> NDArray[np.float64]:
        """4x4 world <- base_link on the ground at (x, y) [m] with heading ``yaw`` [rad]."""
        z = float(self.scene.ground_height(np.array([[x, y]]))[0])
        return pose_matrix(x, y, z, 0.0, 0.0, yaw)

    def in_map(self, world_pose: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(np.linalg.inv(self.T_world_map) @ world_pose, dtype=np.float64)

    def scan(
        self, world_pose: NDArray[np.float64], weather: WeatherState = CLEAR
    ) -> NDArray[np.float64]:
        """(N,3) [m] one sweep from ``world_pose`` (world <- base_link), in base_link."""
        extrinsic = np.asarray(self.robot.lidar.pose, dtype=np.float64)
        sweep = self.lidar.scan(self.scene, world_pose @ extrinsic, 0.0, weather)
        pts = sweep.points.astype(np.float64)
        return np.asarray(pts @ extrinsic[:3, :3].T + extrinsic[:3, 3], dtype=np.float64)


def random_walkway_pose(site: Site, rng: np.random.Generator) -> tuple[float, float, float]:
    """(x, y, yaw) uniformly along the walkways' length, within their width, heading random."""
    nodes = site.walkways.nodes
    edges = site.walkways.edges
    lengths = np.array([math.dist(nodes[a], nodes[b]) for a, b, _ in edges])
    a, b, width = edges[int(rng.choice(len(edges), p=lengths / lengths.sum()))]
    (ax, ay), (bx, by) = nodes[a], nodes[b]
    t = rng.uniform()
    length = math.dist((ax, ay), (bx, by))
    nx, ny = -(by - ay) / length, (bx - ax) / length
    side = rng.uniform(-0.3, 0.3) * width
    return (
        ax + t * (bx - ax) + side * nx,
        ay + t * (by - ay) + side * ny,
        rng.uniform(-math.pi, math.pi),
    )
