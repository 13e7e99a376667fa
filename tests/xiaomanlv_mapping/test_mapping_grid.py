"""grid_from_cloud: occupied, free and unknown cells from synthetic map clouds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_mapping import grid as grid_module
from xiaomanlv_mapping.grid import GridConfig
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MappingError, PoseSeries

F64 = NDArray[np.float64]
STEP = 0.05  # [m] spacing of synthetic points
_ROBOT = load_robot(model_file())
#: The shipped robot's limits: max_step 0.12 m, max_slope 0.175 rad (10 deg), height 1.9 m.
LIMITS = {
    "max_step": _ROBOT.body.max_step,
    "max_slope": _ROBOT.body.max_slope,
    "robot_height": _ROBOT.height,
}


def grid_from_cloud(
    cloud: NDArray[np.floating],
    trajectory: PoseSeries,
    *,
    config: GridConfig | None = None,
    **limits: float,
) -> Grid:
    """The grid with the shipped robot's limits, any of them overridden by `limits`."""
    return grid_module.grid_from_cloud(cloud, trajectory, config=config, **(LIMITS | limits))


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


def cell_at(grid: Grid, x: float, y: float) -> int:
    """The cell holding (x, y), asked at its centre's side of any border rounding."""
    return cell(grid, x + 1e-6, y + 1e-6)


def ramp_drive(x0: float, x1: float, surface: Callable[[F64], F64]) -> PoseSeries:
    """Poses every 0.05 m along y = 0 from x0 to x1 on the ground `surface(x)` [m]."""
    xs = np.arange(x0, x1 + 1e-9, 0.05)
    poses = np.repeat(np.eye(4)[None], len(xs), axis=0)
    poses[:, 0, 3] = xs
    poses[:, 2, 3] = surface(xs)
    return PoseSeries(np.arange(len(xs)) * 0.1, poses)


def tilted_ramp(lip: float, shadow: float) -> tuple[NDArray[np.float64], PoseSeries]:
    """Flat ground z = 0; a 3 m wide ramp along +x from z = 0 at x = 0 rising 0.1 m/m (5.7 deg)
    to its far end at x = 10 lip [m], where it stops: a lip of `lip` metres. The drive comes
    along the ground and up the ramp to 0.6 m before the lip. As a lidar 1.9 m above the ramp
    sees it: the lip's face and the ground within `shadow` [m] beyond it, and a 0.3 m strip
    beside each side of the ramp, lie in its shadow (no points)."""
    end = 10.0 * lip

    def surface(x: F64) -> F64:
        out: F64 = np.clip(x, 0.0, None) * 0.1
        return out

    ground = plane(-6.0, end + 6.0, -6.0, 6.0)
    on = (ground[:, 0] >= 0.0) & (ground[:, 0] < end - 0.01) & (np.abs(ground[:, 1]) < 1.5)
    ground[on, 2] = surface(ground[on, 0])
    hidden = ~on & (ground[:, 0] >= 0.0) & (ground[:, 0] < end + shadow)
    hidden &= np.abs(ground[:, 1]) < 1.8
    return ground[~hidden], ramp_drive(-5.0, end - 0.6, surface)


def test_the_lip_of_a_tilted_ramp_is_an_obstacle_though_its_drop_lies_in_shadow() -> None:
    # a 0.25 m lip, its drop unseen for 0.9 m beyond it (the lidar's lowest beam, -15 deg from
    # 1.9 m up, meets the ground 3.7 lip heights beyond the lip at the nearest)
    cloud, drive = tilted_ramp(lip=0.25, shadow=0.9)
    grid = grid_from_cloud(cloud, drive)
    end = 2.5
    lip = [cell_at(grid, end - 0.1, y) for y in np.arange(-1.2, 1.2, 0.1)]
    assert lip == [OCCUPIED] * len(lip)
    # where the ramp stands higher than the robot climbs its sides are edges too, not below
    for y in (-1.5, 1.4):
        assert cell_at(grid, 2.0, y) == OCCUPIED
        assert cell_at(grid, 0.5, y) != OCCUPIED
    # the ramp itself is ground the robot drove up
    assert np.all(region(grid, 0.0, 1.8, -1.0, 1.0) == FREE)


def test_a_drop_within_the_step_the_robot_climbs_is_no_obstacle() -> None:
    cloud, drive = tilted_ramp(lip=0.10, shadow=0.4)
    grid = grid_from_cloud(cloud, drive)
    assert not np.any(region(grid, -1.0, 3.0, -1.4, 1.4) == OCCUPIED)


def test_a_landing_edge_over_a_shadowed_drop_is_an_obstacle() -> None:
    # the drive goes up a 5.7 deg ramp onto a 0.15 m landing (x 1.5..4); beyond the landing's
    # far edge the ground is hidden for 0.6 m; the far edge is an obstacle (0.15 > max_step)
    def surface(x: F64) -> F64:
        out: F64 = np.clip(x / 1.5, 0.0, 1.0) * 0.15
        return out

    ground = plane(-6.0, 10.0, -6.0, 6.0)
    on = (ground[:, 0] >= 0.0) & (ground[:, 0] < 3.99) & (np.abs(ground[:, 1]) < 1.5)
    ground[on, 2] = surface(ground[on, 0])
    hidden = ~on & (ground[:, 0] >= 3.99) & (ground[:, 0] < 4.6) & (np.abs(ground[:, 1]) < 1.5)
    grid = grid_from_cloud(ground[~hidden], ramp_drive(-5.0, 3.2, surface))
    edge = [cell_at(grid, 3.9, y) for y in np.arange(-1.2, 1.2, 0.1)]
    assert edge == [OCCUPIED] * len(edge)
    assert np.all(region(grid, 0.0, 3.4, -1.0, 1.0) == FREE)


def test_ground_sloping_down_into_a_shadow_within_the_slope_limit_is_no_step() -> None:
    # the drive runs along the top (z = 0.5) of a 9 deg (0.158 m/m) slope falling towards +x,
    # 1.2 m of it hidden: 0.2 m lower beyond the gap, all of it the slope's own descent
    def surface(x: F64) -> F64:
        out: F64 = 0.5 - np.clip(x, 0.0, 3.0) * 0.158
        return out

    ground = plane(-6.0, 8.0, -6.0, 6.0)
    ground[:, 2] = surface(ground[:, 0])
    hidden = (ground[:, 0] >= 1.0) & (ground[:, 0] < 2.2)
    grid = grid_from_cloud(ground[~hidden], ramp_drive(-5.0, 0.0, surface))
    assert not np.any(grid.cells == OCCUPIED)


def steep_ramp(rise: float) -> NDArray[np.float64]:
    """Flat ground, and beside the drive (x = 0) a 3 m wide ramp from z = 0 at x = 3 rising
    `rise` [m/m] along +x for 3 m, its sides and top seen; nobody drove on it."""
    ground = plane(-6.0, 12.0, -6.0, 6.0)
    on = (ground[:, 0] >= 3.0) & (ground[:, 0] < 5.99) & (np.abs(ground[:, 1]) < 1.5)
    ground[on, 2] = (ground[on, 0] - 3.0) * rise
    return ground


@pytest.mark.parametrize(("degrees", "max_slope", "blocks"), [
    (5.7, 0.175, False),  # an entrance ramp, within the shipped robot's 10 deg
    (15.0, 0.175, True),  # steeper than the robot drives
    (15.0, 0.35, False),  # a robot that climbs 20 deg
])  # fmt: skip
def test_a_slope_is_free_within_the_robots_slope_limit_and_an_obstacle_beyond(
    degrees: float, max_slope: float, blocks: bool
) -> None:
    cloud = steep_ramp(np.tan(np.radians(degrees)))
    grid = grid_from_cloud(cloud, straight_drive(), max_slope=max_slope)
    upper = region(grid, 4.5, 5.5, -1.0, 1.0)  # higher than max_step, short of its end
    if blocks:
        assert np.mean(upper == OCCUPIED) > 0.95
    else:
        assert not np.any(upper == OCCUPIED)


@pytest.mark.parametrize(("max_step", "blocks"), [(0.12, True), (0.20, False)])
def test_what_a_kerb_is_comes_from_the_robots_max_step(max_step: float, blocks: bool) -> None:
    cloud = np.vstack(
        [
            plane(-4.0, 3.0, -6.0, 6.0),
            wall_x(3.0, -6.0, 6.0, 0.0, 0.15),
            plane(3.0, 3.15, -6.0, 6.0, z=0.15),
            plane(3.65, 8.0, -6.0, 6.0),
        ]
    )
    grid = grid_from_cloud(cloud, straight_drive(), max_step=max_step)
    assert np.all((region(grid, 3.0, 3.1, -4.0, 4.0) == OCCUPIED) == blocks)


@pytest.mark.parametrize(("robot_height", "blocks"), [(1.9, True), (1.5, False)])
def test_a_sign_blocks_only_a_robot_taller_than_its_clearance(
    robot_height: float, blocks: bool
) -> None:
    sign = plane(2.0, 3.0, -1.0, 1.0, z=1.8)  # a board 1.8 m up on no posts of note
    grid = grid_from_cloud(
        np.vstack([plane(-4.0, 8.0, -6.0, 6.0), sign]), straight_drive(),
        robot_height=robot_height,
    )  # fmt: skip
    assert (cell_at(grid, 2.5, 0.0) == OCCUPIED) == blocks


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
    with pytest.raises(MappingError, match=r"max_step \(0\.01 m\) must exceed .*step_margin"):
        grid_from_cloud(plane(0.0, 1.0, 0.0, 1.0), straight_drive(), max_step=0.01)
    with pytest.raises(MappingError, match="max_slope must be a positive number"):
        grid_from_cloud(plane(0.0, 1.0, 0.0, 1.0), straight_drive(), max_slope=-0.1)
    with pytest.raises(MappingError, match="robot_height must be a positive number, got nan"):
        grid_from_cloud(plane(0.0, 1.0, 0.0, 1.0), straight_drive(), robot_height=np.nan)
    with pytest.raises(ConfigError, match="resolution"):
        GridConfig(resolution=0.0)
