"""Map evaluation: trajectory alignment, cloud-to-surface distances, grid scores, the picture."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_bringup.map_evaluation import (
    CloudConfig,
    Evaluation,
    GridEvaluationConfig,
    evaluate_cloud,
    evaluate_grid,
    evaluate_map,
    evaluate_trajectory,
    map_in_world,
    prior_in_world,
    render_evaluation,
    true_obstacles,
    umeyama_rigid,
)
from xiaomanlv_core.site import load_site
from xiaomanlv_mapping.mapfiles import write_map
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MappingError, PoseSeries
from xiaomanlv_sim.render import PANEL_WIDTH
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.world import Box, Geometry, Plane, Shape, Sphere, World

RES = 0.1  # [m]


def pose(x: float, y: float, z: float, yaw: float = 0.0) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
    out[:3, 3] = (x, y, z)
    return out


def shape(name: str, geometry: Geometry, at: NDArray[np.float64], category: str) -> Shape:
    return Shape(name=name, geometry=geometry, pose=at, model=name, category=category)


def box_world(*extra: Shape) -> World:
    """A 40 m ground plane with a 4 x 4 x 3 m building at (5, 0)."""
    shapes = (
        shape("ground", Plane((0.0, 0.0, 1.0), (40.0, 40.0)), pose(0, 0, 0), "ground"),
        shape("house", Box((4.0, 4.0, 3.0)), pose(5.0, 0.0, 1.5), "building"),
        *extra,
    )
    return World(name="box", source=Path("box.sdf"), shapes=shapes, spherical_coordinates=None)


def frame(x0: float = -10.0, y0: float = -10.0, w: int = 200, h: int = 200) -> Grid:
    return Grid(RES, (x0, y0, 0.0), np.full((h, w), FREE, dtype=np.int8))


def at(grid: Grid, x: float, y: float) -> tuple[int, int]:
    return (math.floor((y - grid.origin[1]) / RES), math.floor((x - grid.origin[0]) / RES))


# ---- trajectory -----------------------------------------------------------------------------
def circle_drive(n: int = 400, t0: float = 0.0) -> PoseSeries:
    t = t0 + np.arange(n) * 0.1
    ang = t / 8.0
    poses = np.stack([pose(10 * math.cos(a), 10 * math.sin(a), 0.1 * math.sin(3 * a),
                           a + math.pi / 2) for a in ang])  # fmt: skip
    return PoseSeries(stamps=t, poses=poses)


def test_umeyama_recovers_a_known_rigid_motion() -> None:
    rng = np.random.default_rng(4)
    src = rng.uniform(-20.0, 20.0, (50, 3))
    motion = np.eye(4)
    motion[:3, :3] = Rotation.from_euler("zyx", [0.7, -0.1, 0.05]).as_matrix()
    motion[:3, 3] = (3.0, -7.0, 0.4)
    dst = src @ motion[:3, :3].T + motion[:3, 3]
    np.testing.assert_allclose(umeyama_rigid(src, dst), motion, atol=1e-9)
    with pytest.raises(MappingError, match="N >= 3"):
        umeyama_rigid(src[:2], dst[:2])


def test_ate_after_alignment_is_the_noise_and_without_it_the_offset() -> None:
    truth = circle_drive()
    estimate_t = circle_drive(n=390, t0=0.05)  # other stamps: truth is interpolated there
    offset = pose(2.0, -1.0, 0.3, yaw=0.2)
    noise = np.random.default_rng(2).normal(0.0, 0.02, (len(estimate_t.stamps), 3))
    moved = np.einsum("ij,njk->nik", offset, estimate_t.poses)
    moved[:, :3, 3] += noise
    result = evaluate_trajectory(PoseSeries(estimate_t.stamps, moved), truth)
    assert result.poses == 390
    assert result.ate_rmse_m == pytest.approx(0.02 * math.sqrt(3), rel=0.25)
    assert result.ate_max_m >= result.ate_rmse_m
    assert result.ate_rmse_unaligned_m > 1.0
    assert result.ate_rot_rmse_deg < 0.5
    np.testing.assert_allclose(result.alignment, np.linalg.inv(offset), atol=0.02)
    assert result.errors.shape == (390,)


def test_ate_needs_estimate_stamps_within_the_truth() -> None:
    truth = circle_drive(n=50)
    late = circle_drive(n=20, t0=100.0)
    with pytest.raises(MappingError, match="0 of 20 stamps lie within"):
        evaluate_trajectory(late, truth)
    backwards = PoseSeries(truth.stamps[::-1].copy(), truth.poses)
    with pytest.raises(MappingError, match="increasing"):
        evaluate_trajectory(truth, backwards)


# ---- cloud ----------------------------------------------------------------------------------
def box_surface_points(rng: np.random.Generator, noise: float) -> NDArray[np.float64]:
    """Points on the ground round the house and on its four walls and roof, with noise [m]."""
    ground = rng.uniform(-15.0, 15.0, (4000, 2))
    ground = ground[(np.abs(ground[:, 0] - 5.0) > 2.2) | (np.abs(ground[:, 1]) > 2.2)]
    pts = [np.column_stack([ground, np.zeros(len(ground))])]
    u = rng.uniform(-2.0, 2.0, (500, 4))
    z = rng.uniform(0.0, 3.0, (500, 4))
    pts += [np.column_stack([np.full(500, 3.0), u[:, 0], z[:, 0]])]
    pts += [np.column_stack([np.full(500, 7.0), u[:, 1], z[:, 1]])]
    pts += [np.column_stack([5.0 + u[:, 2], np.full(500, -2.0), z[:, 2]])]
    pts += [np.column_stack([5.0 + u[:, 3], np.full(500, 2.0), z[:, 3]])]
    pts += [np.column_stack([5.0 + rng.uniform(-2, 2, 500), rng.uniform(-2, 2, 500),
                             np.full(500, 3.0)])]  # fmt: skip
    cloud = np.vstack(pts)
    return cloud + rng.normal(0.0, noise, cloud.shape)


def test_a_cloud_on_the_true_surfaces_scores_its_noise() -> None:
    world = box_world()
    cloud = box_surface_points(np.random.default_rng(7), noise=0.01)
    result = evaluate_cloud(cloud, world)
    # distance to the nearest surface is about the noise across it
    assert result.map_rms_m == pytest.approx(0.01, rel=0.3)
    assert result.map_p95_m < 0.03
    assert result.map_points == len(cloud)
    assert result.map_outlier_share == 0.0
    lifted = cloud + np.array([0.0, 0.0, 0.5])  # half a metre up: the ground points are 0.5 m off
    worse = evaluate_cloud(lifted, world, config=CloudConfig(max_points=1000))
    assert worse.map_rms_m > 0.3
    assert worse.map_points <= 1000
    assert worse.map_outlier_share > 0.5


def test_cloud_errors_name_the_input() -> None:
    with pytest.raises(MappingError, match=r"non-empty \(N,3\)"):
        evaluate_cloud(np.zeros((0, 3)), box_world())
    empty = World(name="void", source=Path("void.sdf"), shapes=(), spherical_coordinates=None)
    with pytest.raises(MappingError, match="void"):
        evaluate_cloud(np.zeros((3, 3)), empty)


# ---- grid -----------------------------------------------------------------------------------
def test_truth_holds_what_the_robot_cannot_cross() -> None:
    world = box_world(
        shape("kerb_high", Box((10.0, 0.15, 0.13)), pose(0.0, -5.0, 0.065), "kerb"),
        shape("kerb_low", Box((10.0, 0.15, 0.08)), pose(0.0, 5.0, 0.04), "kerb"),
        shape("track", Box((6.0, 3.0, 0.03)), pose(-6.0, 8.0, 0.015), "field"),
        shape("landing", Box((2.0, 3.0, 0.15)), pose(-2.0, 0.0, 0.075), "ramp"),
        shape("crown", Sphere(1.5), pose(0.0, -8.0, 4.0), "tree"),
    )
    grid = frame()
    truth = true_obstacles(world, grid)
    assert truth[at(grid, 5.0, 0.0)] and truth[at(grid, 3.05, 0.0)]  # the house, solid
    assert not truth[at(grid, 2.95, 0.0)]
    assert truth[at(grid, 0.0, -5.0)]  # a 0.13 m kerb is above the 0.12 m step
    assert not truth[at(grid, 0.0, 5.0)]  # a 0.08 m one is not
    assert not truth[at(grid, -6.0, 8.0)]  # the track surface
    assert not truth[at(grid, -2.95, 8.0)]  # and its 0.03 m edge
    assert not truth[at(grid, 0.0, -8.0)]  # a crown 2.5 m up
    assert truth[at(grid, -2.95, 0.0)]  # the landing's 0.15 m edge is a step...
    assert truth[at(grid, -2.0, 0.0)]  # ...and no ramp reaches its top: not drivable either


def tilted(x: float, y: float, z: float, pitch: float) -> NDArray[np.float64]:
    out = pose(x, y, z)
    out[:3, :3] = Rotation.from_euler("y", pitch).as_matrix()
    return out


def test_truth_holds_walkable_tops_steeper_than_the_robot_drives() -> None:
    """A ramp is driven when it is within the robot's slope limit (10 deg), not when steeper;
    the slope rule reads the top face's tilt from the world, never the build."""
    world = box_world(
        shape("gentle", Box((3.0, 2.0, 0.1)), tilted(-5.0, 5.0, 0.1, math.radians(5.7)), "ramp"),
        shape("steep", Box((3.0, 2.0, 0.1)), tilted(-5.0, -5.0, 0.3, math.radians(15.0)), "ramp"),
    )
    grid = frame()
    truth = true_obstacles(world, grid)
    assert not truth[at(grid, -5.0, 5.0)]  # 5.7 deg: driven
    assert truth[at(grid, -5.0, -5.0)] and truth[at(grid, -4.0, -5.5)]  # 15 deg: not
    lenient = true_obstacles(world, grid, config=GridEvaluationConfig(truth_max_slope=0.3))
    assert not lenient[at(grid, -5.0, -5.0)]  # a robot that climbs 17 deg drives it


def test_truth_holds_a_landing_no_climbable_slope_or_step_reaches() -> None:
    """A landing 0.3 m up, reached only by a 15 deg ramp: the robot cannot be there, so all of
    it is an obstacle; the same landing reached by a 5.7 deg ramp is driven on. The drivable
    surface is the one joined to where the robot drove (or the largest one)."""
    rise, landing = 0.3, Box((2.0, 2.0, 0.3))

    def dock(pitch_deg: float) -> World:
        run = rise / math.tan(math.radians(pitch_deg))
        slope = Box((math.hypot(run, rise), 2.0, 0.02))
        return box_world(
            shape("landing", landing, pose(-5.0, 0.0, rise / 2), "ramp"),
            shape("slope", slope, tilted(-4.0 + run / 2, 0.0, rise / 2 - 0.01,
                                         math.radians(pitch_deg)), "ramp"),
        )  # fmt: skip

    grid = frame()
    steep = true_obstacles(dock(15.0), grid)
    assert steep[at(grid, -5.0, 0.0)] and steep[at(grid, -5.5, 0.5)]  # the landing's middle
    assert not steep[at(grid, 0.0, 5.0)]  # the ground
    driven = np.array([[0.0, 5.0], [1.0, 5.0]])
    seeded = true_obstacles(dock(15.0), grid, drivable_at=driven)
    assert np.array_equal(seeded, steep)
    gentle = true_obstacles(dock(5.7), grid, drivable_at=driven)
    assert not gentle[at(grid, -5.0, 0.0)] and not gentle[at(grid, -5.5, 0.5)]
    assert gentle[at(grid, -5.0, 0.95)]  # its 0.3 m sides are steps either way


def test_a_level_road_behind_kerbs_stays_drivable() -> None:
    """A road enclosed by 0.13 m kerbs, level with the walkway the robot drove: no step joins
    it to the drive, but it is not raised, so only the kerbs are obstacles (the robot could
    stand there; it cannot on a landing it cannot climb)."""
    kerb = Box((8.0, 0.15, 0.13))
    side = Box((0.15, 8.0, 0.13))
    world = box_world(
        shape("kerb_s", kerb, pose(-4.0, -4.0, 0.065), "kerb"),
        shape("kerb_n", kerb, pose(-4.0, 4.0, 0.065), "kerb"),
        shape("kerb_w", side, pose(-8.0, 0.0, 0.065), "kerb"),
        shape("kerb_e", side, pose(0.0, 0.0, 0.065), "kerb"),
    )
    grid = frame()
    truth = true_obstacles(world, grid, drivable_at=np.array([[8.0, 8.0]]))
    assert truth[at(grid, -4.0, -4.0)] and truth[at(grid, 0.0, 0.0)]  # the kerbs
    assert not truth[at(grid, -4.0, 0.0)] and not truth[at(grid, -7.0, 3.0)]  # the road


def test_the_truth_takes_the_robots_climbing_limits(repo: Path) -> None:
    """`for_robot` reads max_step and max_slope from the robot description: a 0.13 m kerb
    blocks the shipped robot (max_step 0.12 m) and not one that climbs 0.15 m."""
    from xiaomanlv_core.robot import load_robot

    robot = load_robot(repo / "models" / "xiaomanlv" / "model.sdf")
    cfg = GridEvaluationConfig.for_robot(robot)
    assert cfg.truth_min_height == robot.body.max_step
    assert cfg.truth_max_slope == robot.body.max_slope
    world = box_world(shape("kerb", Box((10.0, 0.15, 0.13)), pose(0.0, -5.0, 0.065), "kerb"))
    grid = frame()
    assert true_obstacles(world, grid, config=cfg)[at(grid, 0.0, -5.0)]
    climber = dataclasses.replace(robot, body=dataclasses.replace(robot.body, max_step=0.15))
    cfg_climber = GridEvaluationConfig.for_robot(climber)
    assert not true_obstacles(world, grid, config=cfg_climber)[at(grid, 0.0, -5.0)]


def test_a_grid_drawn_from_the_truth_scores_one_and_a_shifted_one_less() -> None:
    world = box_world(shape("kerb", Box((10.0, 0.15, 0.13)), pose(0.0, -5.0, 0.065), "kerb"))
    scene = Scene.from_world(world)
    grid = frame()
    truth = true_obstacles(world, grid, scene=scene)
    cells = np.where(truth, OCCUPIED, FREE).astype(np.int8)
    perfect = evaluate_grid(Grid(RES, grid.origin, cells), world, scene=scene)
    assert perfect.grid_iou == pytest.approx(1.0)
    assert perfect.grid_iou_strict == pytest.approx(1.0)
    assert perfect.grid_missed_cells == perfect.grid_phantom_cells == 0
    assert perfect.grid_known_cells == cells.size
    # a map sees walls, not interiors: an unknown interior is left out, not counted wrong
    seen = cells.copy()
    r, c = at(grid, 5.0, 0.0)
    seen[r - 15 : r + 15, c - 15 : c + 15] = UNKNOWN
    walls = evaluate_grid(Grid(RES, grid.origin, seen), world, scene=scene)
    assert walls.grid_iou == pytest.approx(1.0)
    assert walls.grid_truth_cells < perfect.grid_truth_cells
    # one cell off is within the tolerance; three cells off is not
    one = evaluate_grid(Grid(RES, grid.origin, np.roll(cells, 1, axis=1)), world, scene=scene)
    assert one.grid_iou == pytest.approx(1.0)
    assert one.grid_iou_strict < 1.0
    three = evaluate_grid(Grid(RES, grid.origin, np.roll(cells, 3, axis=0)), world, scene=scene)
    assert three.grid_iou < 0.95
    assert three.grid_missed_cells > 0 and three.grid_phantom_cells > 0
    strict = evaluate_grid(
        Grid(RES, grid.origin, np.roll(cells, 1, axis=1)),
        world,
        config=GridEvaluationConfig(tolerance=0.0),
        scene=scene,
    )
    assert strict.grid_iou == pytest.approx(strict.grid_iou_strict)


def test_phantom_cells_pct_is_the_share_of_obstacles_where_nothing_static_stands() -> None:
    """A pedestrian's trail left in the grid: occupied cells 1 m from any true obstacle are
    phantoms, counted as a percentage of all occupied cells; a cell next to the kerb is not
    (within the one-cell tolerance the IoU uses)."""
    world = box_world(shape("kerb", Box((10.0, 0.15, 0.13)), pose(0.0, -5.0, 0.065), "kerb"))
    scene = Scene.from_world(world)
    grid = frame()
    truth = true_obstacles(world, grid, scene=scene)
    cells = np.where(truth, OCCUPIED, FREE).astype(np.int8)
    clean = evaluate_grid(Grid(RES, grid.origin, cells), world, scene=scene)
    assert clean.phantom_cells_pct == 0.0
    trail = cells.copy()
    r, c = at(grid, -4.0, -4.0)
    trail[r, c - 20 : c + 20] = OCCUPIED  # 4 m of trail, 1 m north of the kerb
    _, c_kerb = at(grid, 1.0, -5.0)
    top = int(np.flatnonzero(truth[:, c_kerb]).max())
    trail[top + 1, c_kerb] = OCCUPIED  # hugging the kerb: within tolerance, not a phantom
    walked = evaluate_grid(Grid(RES, grid.origin, trail), world, scene=scene)
    assert walked.grid_phantom_cells == 40
    expected = 100.0 * 40 / walked.grid_occupied_cells
    assert walked.phantom_cells_pct == pytest.approx(expected)
    assert Evaluation(grid=walked).as_dict()["phantom_cells_pct"] == pytest.approx(expected)
    nothing = np.full_like(cells, FREE)
    assert evaluate_grid(Grid(RES, grid.origin, nothing), world, scene=scene).phantom_cells_pct == 0


def test_grid_errors_name_the_field() -> None:
    with pytest.raises(MappingError, match="yaw"):
        evaluate_grid(Grid(RES, (0.0, 0.0, 0.3), np.zeros((4, 4), np.int8)), box_world())
    with pytest.raises(MappingError, match="truth_max_height"):
        GridEvaluationConfig(truth_min_height=1.0, truth_max_height=0.5)


# ---- the whole and the picture ----------------------------------------------------------------
def test_evaluation_flattens_to_named_numbers() -> None:
    truth = circle_drive(n=50)
    traj = evaluate_trajectory(truth, truth)
    report = Evaluation(trajectory=traj).as_dict()
    assert report["ate_rmse_m"] == pytest.approx(0.0, abs=1e-9)
    assert report["ate_poses"] == 50
    assert "grid_iou" not in report


@pytest.mark.parametrize(("rows", "cols"), [(150, 200), (1300, 300)])
def test_the_picture_has_the_grid_size_plus_the_legend_panel(
    tmp_path: Path, rows: int, cols: int
) -> None:
    world = box_world()
    grid = Grid(RES, (-10.0, -10.0, 0.0), np.full((rows, cols), FREE, dtype=np.int8))
    truth = circle_drive(n=200)
    out = render_evaluation(grid, world, truth, truth, tmp_path / "eval" / "map.png")
    image = cv2.imread(str(out))
    assert image is not None
    k = 2  # 0.2 m per pixel at 0.1 m cells
    assert image.shape[1] == math.ceil(cols / k) + PANEL_WIDTH
    assert image.shape[0] >= math.ceil(rows / k)
    if rows / k > 500:
        assert image.shape[0] == math.ceil(rows / k)  # taller than the legend
    without = render_evaluation(grid, world, truth, None, tmp_path / "plain.png")
    assert cv2.imread(str(without)).shape[1] == image.shape[1]


BOX_SDF = """<?xml version="1.0"?>
<sdf version="1.9" xmlns:xiaomanlv="https://github.com/xiaomanlv/sdf"><world name="box">
<model name="ground"><static>true</static><xiaomanlv:category>ground</xiaomanlv:category>
<link name="link"><collision name="c"><geometry><plane><normal>0 0 1</normal><size>40 40</size>
</plane></geometry></collision></link></model>
<model name="house"><static>true</static><pose>5 0 1.5 0 0 0</pose>
<xiaomanlv:category>building</xiaomanlv:category><link name="link"><collision name="c">
<geometry><box><size>4 4 3</size></box></geometry></collision></link></model>
</world></sdf>
"""


BOX_SITE = """name: box
world: box.sdf
station:
  name: depot
  loading: [0, -2, -1.5707963267948966]
  charging: [4, -2, -1.570796]
stops: []
entrances: {}
walkways:
  nodes: {a: [-8, -8], b: [8, -8]}
  edges: [[a, b, 3]]
mapping_route:
  waypoints: [[-8, -8], [8, -8]]
"""  # the station where map_rig's synthetic map has it: that map's frame is the world


def box_site(tmp_path: Path) -> Path:
    """box.sdf and its site sidecar in ``tmp_path``; returns the world file."""
    world_path = tmp_path / "box.sdf"
    world_path.write_text(BOX_SDF)
    (tmp_path / "box.site.yaml").write_text(BOX_SITE)
    return world_path


def test_evaluate_map_reads_a_map_directory_and_writes_the_picture(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    world_path = box_site(tmp_path)
    grid = frame()
    truth = true_obstacles(box_world(), grid)
    cells = np.where(truth, OCCUPIED, FREE).astype(np.int8)
    cloud = box_surface_points(np.random.default_rng(3), noise=0.01).astype(np.float32)
    prior = dataclasses.replace(
        map_rig.synthetic_map(site="box"),
        cloud=cloud,
        cloud_voxel=0.1,
        grid=Grid(RES, grid.origin, cells),
        trajectory=circle_drive(n=100),
    )
    map_dir = write_map(prior, tmp_path / "maps" / "box")
    png = tmp_path / "eval.png"
    report = evaluate_map(map_dir, world=world_path, png=png)
    assert report["grid_iou"] == pytest.approx(1.0)
    assert report["map_rms_m"] == pytest.approx(0.01, rel=0.3)
    assert report["drive_m"] >= 0.0
    assert "ate_rmse_m" not in report  # no bag: no ground truth to compare the drive with
    assert cv2.imread(str(png)) is not None
    with pytest.raises(MappingError, match=r"nowhere\.sdf"):
        evaluate_map(map_dir, world=tmp_path / "nowhere.sdf")


def test_evaluate_map_carries_a_map_anchored_elsewhere_into_the_world(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    """The same map in a frame shifted by (7, -3) m: stops, cloud, grid and drive all moved,
    so ``map_in_world`` brings it back and every number is the unshifted map's."""
    world_path = box_site(tmp_path)
    grid = frame()
    cells = np.where(true_obstacles(box_world(), grid), OCCUPIED, FREE).astype(np.int8)
    cloud = box_surface_points(np.random.default_rng(3), noise=0.01).astype(np.float32)
    prior = dataclasses.replace(
        map_rig.synthetic_map(site="box"),
        cloud=cloud,
        cloud_voxel=0.1,
        grid=Grid(RES, grid.origin, cells),
        trajectory=circle_drive(n=100),
    )
    shift = pose(7.0, -3.0, 0.0)
    world_map = np.linalg.inv(shift)  # the shifted map's points are shift @ world points
    assert np.allclose(map_in_world(prior, load_site(tmp_path / "box.site.yaml")), np.eye(4))
    stops = prior.stops
    moved_stops = dataclasses.replace(
        stops,
        loading=dataclasses.replace(stops.loading, x=stops.loading.x + 7, y=stops.loading.y - 3),
    )
    moved = dataclasses.replace(
        prior_in_world(prior, shift),
        stops=moved_stops,
    )
    np.testing.assert_allclose(
        map_in_world(moved, load_site(tmp_path / "box.site.yaml")), world_map, atol=1e-12
    )
    plain = evaluate_map(write_map(prior, tmp_path / "maps" / "plain"), world=world_path)
    shifted = evaluate_map(write_map(moved, tmp_path / "maps" / "shifted"), world=world_path)
    assert moved.grid.origin[:2] == pytest.approx((grid.origin[0] + 7, grid.origin[1] - 3))
    for key in ("grid_iou", "grid_known_cells", "map_rms_m", "map_outlier_share"):
        assert shifted[key] == pytest.approx(plain[key], abs=1e-6), key
    assert plain["grid_iou"] == pytest.approx(1.0)

    turned = dataclasses.replace(
        moved,
        stops=dataclasses.replace(
            moved_stops, loading=dataclasses.replace(moved_stops.loading, yaw=0.3)
        ),
    )
    with pytest.raises(MappingError, match="origin yaw must be 0"):
        evaluate_map(write_map(turned, tmp_path / "maps" / "turned"), world=world_path)
    (tmp_path / "box.site.yaml").unlink()
    with pytest.raises(MappingError, match=r"no site sidecar box\.site\.yaml"):
        evaluate_map(tmp_path / "maps" / "plain", world=world_path)


@pytest.mark.parametrize("site", ["university", "residential"])
def test_the_shipped_maps_frame_is_their_worlds(repo: Path, site: str) -> None:
    """Built from drives anchored at the loading pose: world <- map is the identity."""
    from xiaomanlv_core.frames import world_from_map
    from xiaomanlv_mapping.mapfiles.stops import read_stops

    sidecar = load_site(repo / "worlds" / f"{site}.site.yaml")
    stops = read_stops(repo / "maps" / site / "stops.yaml")
    world_map = world_from_map(sidecar.station.loading, stops.loading.pose)
    np.testing.assert_allclose(world_map, np.eye(4), atol=1e-6)
