"""grid_from_cloud: occupied, free and unknown cells from synthetic map clouds."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_mapping.grid import GridConfig, grid_from_cloud
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MappingError, PoseSeries

STEP = 0.05  # [m] spacing of synthetic points


def straight_drive(x: float = 0.0, y0: float = -5.0, y1: float = 5.0) -> PoseSeries:
    """Poses every 0.1 m along x = `x` from y0 to y1, heading north, on the ground (z = 0)."""
    ys = np.arange(y0, y1 + 1e-9, 0.1)
    poses = np.repeat(np.eye(4)[None], len(ys), axis=0)
    poses[:, 0, 3] = x
    poses[:, 1, 3] = ys
    return PoseSeries(stamps=np.arange(len(ys)) * 0.1, poses=poses)


def plane(x0: float, x1: float, y0: float, y1: float, z: float = 0.0) -> NDArray[np.float64]:
    xs, ys = np.meshgrid(np.arange(x0, x1, STEP), np.arange(y0, y1, STEP))
    return np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)], axis=1)


def wall_x(x: float, y0: float, y1: float, z0: float, z1: float) -> NDArray[np.float64]:
    """Points on the vertical face x = `x` between y0..y1 and z0..z1."""
    ys, zs = np.meshgrid(np.arange(y0, y1, STEP), np.arange(z0, z1, STEP))
    return np.stack([np.full(ys.size, x), ys.ravel(), zs.ravel()], axis=1)


def cell(grid: Grid, x: float, y: float) -> int:
    col = int(np.floor((x - grid.origin[0]) / grid.resolution))
    row = int(np.floor((y - grid.origin[1]) / grid.resolution))
    return int(grid.cells[row, col])


def region(grid: Grid, x0: float, x1: float, y0: float, y1: float) -> NDArray[np.int8]:
    c0 = int(np.floor((x0 - grid.origin[0]) / grid.resolution))
    c1 = int(np.floor((x1 - grid.origin[0]) / grid.resolution))
    r0 = int(np.floor((y0 - grid.origin[1]) / grid.resolution))
    r1 = int(np.floor((y1 - grid.origin[1]) / grid.resolution))
    out: NDArray[np.int8] = grid.cells[r0:r1, c0:c1]
    return out


def test_a_wall_seen_from_the_drive_is_occupied_with_free_space_before_it() -> None:
    # ground in front of a 2.5 m wall at x = 5.02 (12 m long); its shadow holds no points
    ground = plane(-4.0, 5.0, -6.0, 6.0)
    cloud = np.vstack([ground, wall_x(5.02, -6.0, 6.0, 0.0, 2.5)])
    grid = grid_from_cloud(cloud, straight_drive(y0=-4.0, y1=4.0))
    assert grid.resolution == pytest.approx(0.1)
    assert grid.origin[2] == 0.0
    assert grid.cells.dtype == np.int8
    assert set(np.unique(grid.cells)) <= {FREE, OCCUPIED, UNKNOWN}
    wall = region(grid, 5.0, 5.1, -1.4, 1.4)
    assert np.all(wall == OCCUPIED)
    between = region(grid, 0.5, 4.6, -1.4, 1.4)
    assert np.all(between == FREE)
    behind = region(grid, 5.3, 8.0, -1.0, 1.0)  # no points there, rays stop at the wall
    assert np.all(behind == UNKNOWN)
    assert np.sum(grid.cells == OCCUPIED) == pytest.approx(120, abs=4)  # the wall's cells


def test_free_space_by_ray_casting_alone_when_the_cloud_holds_no_ground() -> None:
    cloud = wall_x(5.02, -1.5, 1.5, 0.2, 2.5)
    grid = grid_from_cloud(cloud, straight_drive(), config=GridConfig(visibility_range=8.0))
    assert np.all(region(grid, 5.0, 5.1, -1.4, 1.4) == OCCUPIED)
    assert np.all(region(grid, 0.5, 4.8, -1.4, 1.4) == FREE)  # up to two cells before it
    off = grid_from_cloud(cloud, straight_drive(), config=GridConfig(visibility_range=0.0))
    assert np.all(region(off, 0.5, 4.8, -1.4, 1.4) == UNKNOWN)


@pytest.mark.parametrize(("height", "blocks"), [(0.06, False), (0.13, True), (0.30, True)])
def test_a_kerb_is_an_obstacle_only_above_the_step_the_robot_climbs(
    height: float, blocks: bool
) -> None:
    # a 0.15 m wide kerb along x = 3.0..3.15, seen from the west: its face, its top, and the
    # ground behind it only from 0.5 m on (its shadow)
    cloud = np.vstack(
        [
            plane(-4.0, 3.0, -6.0, 6.0),
            wall_x(3.0, -6.0, 6.0, 0.0, height),
            plane(3.0, 3.15, -6.0, 6.0, z=height),
            plane(3.65, 8.0, -6.0, 6.0),
        ]
    )
    grid = grid_from_cloud(cloud, straight_drive())
    kerb = region(grid, 3.0, 3.1, -4.0, 4.0)
    if blocks:
        assert np.all(kerb == OCCUPIED)
    else:
        assert np.all(kerb == FREE)
        assert not np.any(grid.cells == OCCUPIED)


def test_the_top_of_a_wide_low_obstacle_is_not_ground() -> None:
    # a 6 m wide, 0.6 m high basin: its top is seen from above, the ground all round it
    top = plane(4.0, 10.0, -3.0, 3.0, z=0.6)
    ground = plane(-4.0, 14.0, -8.0, 8.0)
    ground = ground[~((ground[:, 0] >= 4.0) & (ground[:, 0] < 10.0) & (np.abs(ground[:, 1]) < 3))]
    faces = np.vstack([wall_x(4.0, -3.0, 3.0, 0.0, 0.6)])
    grid = grid_from_cloud(np.vstack([ground, top, faces]), straight_drive())
    assert np.all(region(grid, 4.2, 9.8, -2.8, 2.8) == OCCUPIED)


def test_a_ramp_and_its_landing_are_ground() -> None:
    # a 1.5 m slope (5.7 deg) up to a 0.15 m landing, driven over
    ground = plane(-4.0, 12.0, -6.0, 6.0)
    ramp_zone = (ground[:, 0] >= 2.0) & (ground[:, 0] < 5.5)
    xs = ground[ramp_zone, 0]
    ground[ramp_zone, 2] = np.clip((xs - 2.0) / 1.5, 0.0, 1.0) * 0.15
    poses = np.repeat(np.eye(4)[None], 100, axis=0)
    poses[:, 0, 3] = np.linspace(-3.0, 5.0, 100)
    poses[:, 2, 3] = np.clip((poses[:, 0, 3] - 2.0) / 1.5, 0.0, 1.0) * 0.15
    grid = grid_from_cloud(ground, PoseSeries(np.arange(100) * 0.1, poses))
    assert np.all(region(grid, 1.0, 5.3, -4.0, 4.0) == FREE)


def test_tree_crowns_above_the_robot_do_not_block() -> None:
    crown = plane(2.0, 4.0, -1.0, 1.0, z=2.6)
    grid = grid_from_cloud(np.vstack([plane(-4.0, 8.0, -6.0, 6.0), crown]), straight_drive())
    assert not np.any(grid.cells == OCCUPIED)
    assert cell(grid, 3.0, 0.0) == FREE


def test_grid_covers_the_cloud_and_the_trajectory_with_a_margin() -> None:
    cloud = plane(10.0, 11.0, 20.0, 21.0)
    cfg = GridConfig(margin=1.0)
    grid = grid_from_cloud(cloud, straight_drive(), config=cfg)
    x0, y0, _ = grid.origin
    h, w = grid.cells.shape
    assert x0 <= -1.0 and y0 <= -6.0
    assert x0 + w * grid.resolution >= 12.0 - 1e-9
    assert y0 + h * grid.resolution >= 22.0 - 1e-9
    assert x0 / grid.resolution == pytest.approx(round(x0 / grid.resolution))


def test_bad_inputs_name_what_is_wrong() -> None:
    with pytest.raises(MappingError, match=r"cloud must be an \(N,3\) array"):
        grid_from_cloud(np.zeros((5, 2)), straight_drive())
    with pytest.raises(MappingError, match="NaN"):
        grid_from_cloud(np.array([[0.0, np.nan, 0.0]]), straight_drive())
    empty = PoseSeries(stamps=np.zeros(0), poses=np.zeros((0, 4, 4)))
    with pytest.raises(MappingError, match=r"trajectory\.poses"):
        grid_from_cloud(plane(0.0, 1.0, 0.0, 1.0), empty)
    with pytest.raises(MappingError, match="obstacle_max_height"):
        GridConfig(obstacle_min_height=0.5, obstacle_max_height=0.4)
    with pytest.raises(ConfigError, match="resolution"):
        GridConfig(resolution=0.0)
