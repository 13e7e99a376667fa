"""Footprints: slab cuts of world shapes, run-time obstacles, the signed distance field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.footprint import FootprintError, Footprints, blocks_walking, shape_footprint
from xiaomanlv_sim.scenario import ObstacleSpec
from xiaomanlv_sim.world import Box, Cylinder, Mesh, Plane, Shape, Sphere, World


def pose(x: float, y: float, z: float, yaw: float = 0.0, roll: float = 0.0) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    m = np.eye(4)
    m[:3, :3] = rz @ rx
    m[:3, 3] = (x, y, z)
    return m


def world_of(*shapes: Shape) -> World:
    return World("test", Path("test.sdf"), tuple(shapes), None)


def test_rotated_box_is_its_rotated_rectangle() -> None:
    shape = Shape("b", Box((10, 4, 8)), pose(3, -2, 4, yaw=0.5), "b", "building")
    poly = shape_footprint(shape, 0.05, 2.0)
    expected = shapely.affinity.rotate(
        shapely.box(-2, -4, 8, 0), 0.5, origin=(3, -2), use_radians=True
    )
    assert poly is not None
    assert poly.symmetric_difference(expected).area < 1e-9


def test_tilted_box_cut_by_the_slab_is_exact() -> None:
    # a 2 m cube rolled 45 deg about x, centred at z = 1: its y extent in the slab 0..1 m is
    # where the diamond cross-section is below z = 1, i.e. |y| <= sqrt(2) (widest at the centre)
    shape = Shape("c", Box((2, 2, 2)), pose(0, 0, 1.0, roll=math.pi / 4), "c", "")
    poly = shape_footprint(shape, 0.0, 1.0)
    assert poly is not None
    minx, miny, maxx, maxy = poly.bounds
    assert (minx, maxx) == pytest.approx((-1, 1))
    assert (miny, maxy) == pytest.approx((-math.sqrt(2), math.sqrt(2)))
    # the bottom edge is at z = 1 - sqrt(2); at z = 0.2 the section is 2 (0.2 + sqrt(2) - 1) wide
    low = shape_footprint(shape, 0.0, 0.2)
    assert low is not None
    assert low.bounds[3] == pytest.approx(0.2 + math.sqrt(2) - 1)


def test_tree_trunk_blocks_and_canopy_above_the_slab_does_not() -> None:
    trunk = Shape("t::trunk", Cylinder(0.2, 3.0), pose(5, 5, 1.5), "t", "tree")
    canopy = Shape("t::canopy", Sphere(2.0), pose(5, 5, 4.5), "t", "tree")
    fp = Footprints.from_world(world_of(trunk, canopy))
    assert len(fp.static) == 1
    poly = fp.static[0].polygon
    assert poly.contains(shapely.Point(5.19, 5))  # circumscribed: never smaller than the trunk
    assert poly.area == pytest.approx(math.pi * 0.2**2, rel=0.02)


def test_sphere_slice_is_the_disc_where_it_meets_the_slab() -> None:
    ball = Shape("s", Sphere(1.0), pose(0, 0, 2.5), "s", "")
    poly = shape_footprint(ball, 0.0, 2.0)  # 0.5 m below the centre: radius sqrt(1 - 0.25)
    assert poly is not None
    assert poly.area == pytest.approx(math.pi * 0.75, rel=0.01)
    assert shape_footprint(ball, 0.0, 1.4) is None


def test_kerbs_ramps_and_ground_do_not_block_walking() -> None:
    kerb = Shape("k", Box((10, 0.2, 0.12)), pose(0, 0, 0.06), "k", "kerb")
    ramp = Shape("r", Box((3, 2, 0.1)), pose(0, 5, 0.05), "r", "ramp")
    ground = Shape("g", Plane((0, 0, 1), (100, 100)), pose(0, 0, 0), "g", "ground")
    wall = Shape("w", Box((5, 0.3, 2.5)), pose(0, -5, 1.25), "w", "wall")
    fp = Footprints.from_world(world_of(kerb, ramp, ground, wall))
    assert [f.name for f in fp.static] == ["w"]
    assert not blocks_walking("kerb") and blocks_walking("bench") and blocks_walking("")


def test_vertical_plane_is_a_thin_wall_and_horizontal_planes_are_ignored() -> None:
    wall = Shape("p", Plane((1, 0, 0), (6, 3)), pose(2, 0, 1.5), "p", "")
    floor = Shape("f", Plane((0, 0, 1), (6, 6)), pose(0, 0, 0.5), "f", "")
    fp = Footprints.from_world(world_of(wall, floor))
    assert len(fp.static) == 1
    minx, miny, maxx, maxy = fp.static[0].polygon.bounds
    # as in Gazebo, the plane's local x/y (6 m x 3 m) are turned so that z meets the normal:
    # for normal +x, local x becomes vertical and the 3 m side runs along y
    assert maxx - minx == pytest.approx(0.02)
    assert maxy - miny == pytest.approx(3.0)


def test_mesh_footprint_is_the_hull_of_its_cut(tmp_path: Path) -> None:
    obj = tmp_path / "cube.obj"
    verts = [(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    faces = [(1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)]
    lines = [f"v {x} {y} {z}" for x, y, z in verts]
    for a, b, c, d in faces:
        lines += [f"f {a} {b} {c}", f"f {a} {c} {d}"]
    obj.write_text("\n".join(lines) + "\n")
    shape = Shape("m", Mesh(obj, scale=(2.0, 3.0, 1.0)), pose(10, 0, 0), "m", "building")
    poly = shape_footprint(shape, 0.05, 2.0)
    assert poly is not None
    assert poly.bounds == pytest.approx((10, 0, 12, 3))
    with pytest.raises(FootprintError, match="does not exist"):
        shape_footprint(Shape("x", Mesh(tmp_path / "missing.obj"), pose(0, 0, 0)), 0.0, 1.0)


def test_slab_must_have_thickness() -> None:
    with pytest.raises(FootprintError, match="z_max"):
        Footprints.from_world(world_of(), z_min=1.0, z_max=1.0)


@pytest.fixture
def two_buildings() -> Footprints:
    a = Shape("a", Box((10, 10, 6)), pose(0, 0, 3), "a", "building")
    b = Shape("b", Box((4, 20, 6)), pose(15, 0, 3, yaw=0.3), "b", "building")
    return Footprints.from_world(world_of(a, b))


def test_distance_field_matches_exact_distance_within_a_cell(two_buildings: Footprints) -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(-12, 25, size=(400, 2))
    grid = two_buildings.distance(pts)
    union = two_buildings.geometry
    exact = shapely.distance(union, shapely.points(pts))
    inside = shapely.contains_xy(union, pts[:, 0], pts[:, 1])
    boundary = shapely.distance(union.boundary, shapely.points(pts))
    signed = np.where(inside, -boundary, exact)
    signed = np.clip(signed, -two_buildings.max_distance, two_buildings.max_distance)
    assert np.max(np.abs(grid - signed)) < 1.2 * two_buildings.cell
    assert np.all(grid[inside] < 0.1)


def test_gradient_points_away_from_the_nearest_wall(two_buildings: Footprints) -> None:
    pts = np.array([[0.0, 7.0], [-7.0, 0.0], [0.0, -6.5]])  # north, west, south of building a
    g = two_buildings.gradient(pts)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    assert g == pytest.approx(np.array([[0, 1], [-1, 0], [0, -1]]), abs=0.05)


def test_nearest_is_exact(two_buildings: Footprints) -> None:
    dist, near = two_buildings.nearest(np.array([[0.0, 8.0], [1.0, 1.0], [-8.0, -8.0]]))
    assert dist == pytest.approx([3.0, 0.0, math.hypot(3, 3)])
    assert near[0] == pytest.approx([0.0, 5.0])
    assert near[1] == pytest.approx([1.0, 1.0])  # inside: its own nearest point
    assert near[2] == pytest.approx([-5.0, -5.0])
    assert two_buildings.segment_free((-8, 6), (8, 6), clearance=0.9)
    assert not two_buildings.segment_free((-8, 6), (8, 6), clearance=1.1)


def test_added_obstacle_blocks_and_removal_restores_the_field(two_buildings: Footprints) -> None:
    probe = np.array([[0.0, -12.0], [0.0, -12.9], [0.0, -9.0]])
    before = two_buildings.distance(probe).copy()
    spec = ObstacleSpec("trolley", Pose2D(0.0, -12.0, math.pi / 2), (1.0, 0.6, 1.0))
    two_buildings.add_obstacle("t", spec)
    d = two_buildings.distance(probe)
    assert d[0] < 0  # inside the trolley
    assert d[1] == pytest.approx(0.4, abs=0.1)  # 0.5 m half-length along y after the yaw
    assert two_buildings.nearest(probe[2:])[0][0] == pytest.approx(2.5)
    two_buildings.remove_obstacle("t")
    assert two_buildings.distance(probe) == pytest.approx(before)
    assert "t" not in two_buildings.obstacles


def test_sync_obstacles_follows_appear_and_disappear_times(two_buildings: Footprints) -> None:
    specs = [
        ObstacleSpec("box", Pose2D(0, -12), (0.6, 0.6, 0.5), appear_at=10.0, disappear_at=20.0),
        ObstacleSpec("barrier", Pose2D(0, 12), (2.0, 0.4, 1.0)),
    ]
    assert two_buildings.sync_obstacles(specs, 0.0)
    assert set(two_buildings.obstacles) == {"obstacle[1]"}
    assert not two_buildings.sync_obstacles(specs, 5.0)
    assert two_buildings.sync_obstacles(specs, 10.0)
    assert set(two_buildings.obstacles) == {"obstacle[0]", "obstacle[1]"}
    assert two_buildings.distance(np.array([[0.0, -12.0]]))[0] < 0
    two_buildings.sync_obstacles(specs, 20.0)
    assert set(two_buildings.obstacles) == {"obstacle[1]"}
    assert two_buildings.distance(np.array([[0.0, -12.0]]))[0] > 0


def test_shipped_university_world_blocks_buildings_not_kerbs() -> None:
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim.assets import site_file, world_file
    from xiaomanlv_sim.sdf import load_world

    path = world_file("university")
    world = load_world(path)
    site = load_site(site_file(path))
    fp = Footprints.from_world(world)
    cats = {f.category for f in fp.static}
    assert "building" in cats and "tree" in cats
    assert not cats & {"kerb", "ramp", "ground", "field"}
    # the station, the stops and every walkway node are free for the robot and for people
    pts = [(site.station.loading.x, site.station.loading.y)]
    pts += [(s.pose.x, s.pose.y) for s in site.stops]
    pts += list(site.walkways.nodes.values())
    dist, _ = fp.nearest(np.array(pts, dtype=float))
    assert np.all(dist > 0.3)
