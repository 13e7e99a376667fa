"""A synthetic site for the localiser's tests: surfaces sampled twice (map and sweep)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_mapping.mapfiles import write_cloud

Box = tuple[float, float, float, float, float]  # min_x, min_y, max_x, max_y, height [m]

# A courtyard 80 m x 60 m with walls and asymmetric blocks: every direction is constrained.
COURTYARD: list[Box] = [
    (-40.0, -30.0, 40.0, -29.5, 4.0),
    (-40.0, 29.5, 40.0, 30.0, 4.0),
    (-40.0, -30.0, -39.5, 30.0, 4.0),
    (39.5, -30.0, 40.0, 30.0, 4.0),
    (5.0, 4.0, 9.0, 6.0, 2.5),
    (-12.0, -8.0, -10.0, 3.0, 3.0),
    (14.0, -15.0, 15.0, -14.0, 5.0),
    (-3.0, 12.0, 4.0, 13.0, 1.5),
    (22.0, 8.0, 26.0, 20.0, 3.5),
    (-25.0, 15.0, -24.0, 16.0, 6.0),
]
# A corridor along x, 4 m wide, 200 m long: nothing fixes x.
CORRIDOR: list[Box] = [(-100.0, -2.05, 100.0, -2.0, 3.0), (-100.0, 2.0, 100.0, 2.05, 3.0)]


def sample_boxes(
    boxes: list[Box], density: float, rng: np.random.Generator, ground: Box | None = None
) -> NDArray[np.float64]:
    """Points on the four sides and top of each box, ``density`` per m^2, and on ``ground``
    (a box whose min/max x/y give the floor's extent, z = 0)."""
    out = []

    def plane(origin: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64]) -> None:
        area = float(np.linalg.norm(u) * np.linalg.norm(v))
        n = max(int(area * density), 1)
        a, b = rng.random((n, 1)), rng.random((n, 1))
        out.append(origin + a * u + b * v)

    for x0, y0, x1, y1, h in boxes:
        z = np.array([0.0, 0.0, h])
        plane(np.array([x0, y0, 0.0]), np.array([x1 - x0, 0.0, 0.0]), z)
        plane(np.array([x0, y1, 0.0]), np.array([x1 - x0, 0.0, 0.0]), z)
        plane(np.array([x0, y0, 0.0]), np.array([0.0, y1 - y0, 0.0]), z)
        plane(np.array([x1, y0, 0.0]), np.array([0.0, y1 - y0, 0.0]), z)
        plane(np.array([x0, y0, h]), np.array([x1 - x0, 0.0, 0.0]), np.array([0.0, y1 - y0, 0.0]))
    if ground is not None:
        x0, y0, x1, y1, _ = ground
        plane(np.array([x0, y0, 0.0]), np.array([x1 - x0, 0.0, 0.0]), np.array([0.0, y1 - y0, 0.0]))
    return np.concatenate(out)


def sweep(
    surface: NDArray[np.float64],
    map_base: NDArray[np.float64],
    rng: np.random.Generator,
    *,
    max_range: float = 40.0,
    noise: float = 0.01,
    blocked: tuple[float, float] | None = None,
) -> NDArray[np.float64]:
    """The points of ``surface`` (map frame) within ``max_range`` of the robot at ``map_base``,
    in base_link, with gaussian noise [m]; ``blocked``: an azimuth interval [rad] with no
    returns (a covered half of the lidar)."""
    base = (surface - map_base[:3, 3]) @ map_base[:3, :3]
    near = np.linalg.norm(base[:, :2], axis=1)
    keep = (near < max_range) & (near > 1.5)
    if blocked is not None:
        azimuth = np.arctan2(base[:, 1], base[:, 0])
        keep &= ~((azimuth >= blocked[0]) & (azimuth < blocked[1]))
    pts = base[keep]
    return pts + rng.normal(0.0, noise, pts.shape)


class Site:
    """A synthetic site: map and sweep sampled from the same surfaces."""

    def __init__(self, boxes: list[Box], ground: Box, yaw: float = 0.0) -> None:
        self.boxes = boxes
        self.ground = ground
        self.turn = planar_pose(0.0, 0.0, yaw)  # the whole site turned by yaw about the origin

    def surface(self, density: float, seed: int) -> NDArray[np.float64]:
        pts = sample_boxes(self.boxes, density, np.random.default_rng(seed), self.ground)
        return np.asarray(pts @ self.turn[:3, :3].T, dtype=np.float64)

    def sweep(
        self, map_base: NDArray[np.float64], seed: int = 2, density: float = 10.0, **kw: object
    ) -> NDArray[np.float64]:
        """A sweep of this site (its own sampling of the surfaces) from ``map_base``."""
        rng = np.random.default_rng(seed)
        return sweep(self.surface(density, seed), map_base, rng, **kw)  # type: ignore[arg-type]

    def write_map(self, directory: Path, tile_size: float = 50.0) -> Path:
        """``directory/pointcloud_map`` of this site (map sampled at 20 points per m^2)."""
        folder = directory / "pointcloud_map"
        write_cloud(self.surface(20.0, seed=1).astype(np.float32), folder, tile_size=tile_size)
        return folder


@pytest.fixture(scope="session")
def courtyard() -> Site:
    return Site(COURTYARD, (-40.0, -30.0, 40.0, 30.0, 0.0))


@pytest.fixture(scope="session")
def corridor() -> Site:
    return Site(CORRIDOR, (-100.0, -2.0, 100.0, 2.0, 0.0), yaw=np.radians(30.0))
