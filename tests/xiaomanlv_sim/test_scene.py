"""Scene ray casting: static shapes, agents, obstacles, ground height, sky, culling."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial.transform import Rotation

from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.scene import CATEGORIES, RayFan, Scene, build_raycaster
from xiaomanlv_sim.world import Box, Cylinder, Geometry, Mesh, Plane, Shape, Sphere, World


def pose(
    x: float = 0, y: float = 0, z: float = 0, rpy: tuple[float, ...] = (0, 0, 0)
) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
    out[:3, 3] = (x, y, z)
    return out


def shape(name: str, geometry: Geometry, at: np.ndarray, category: str = "") -> Shape:
    return Shape(name=name, geometry=geometry, pose=at, model=name, category=category)


def scene_of(*shapes: Shape) -> Scene:
    return Scene.from_world(World("t", Path("t.sdf"), tuple(shapes), None))


GROUND = shape("ground", Plane((0.0, 0.0, 1.0), (200.0, 200.0)), pose(), "ground")


def cast1(scene: Scene, origin: tuple[float, ...], direction: tuple[float, ...]) -> float:
    d = np.asarray(direction, dtype=np.float64)
    return float(scene.cast(np.array([origin]), np.array([d / np.linalg.norm(d)]))[0])


def test_box_hit_at_known_distance() -> None:
    scene = scene_of(shape("b", Box((1.0, 2.0, 3.0)), pose(5, 0, 1.5), "building"))
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(4.5, abs=1e-4)
    assert cast1(scene, (0, 0, 1), (-1, 0, 0)) == math.inf
    # From above onto the top face.
    assert cast1(scene, (5, 0.5, 10), (0, 0, -1)) == pytest.approx(7.0, abs=1e-4)


def test_yawed_box_face() -> None:
    scene = scene_of(shape("b", Box((2.0, 2.0, 2.0)), pose(10, 0, 1, (0, 0, math.pi / 4))))
    # Towards the centre the ray meets a vertical edge, half a diagonal before the centre.
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(10 - math.sqrt(2), abs=1e-4)
    # Along a face normal (45 deg) through the centre: one half-size before the centre.
    d = (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0)
    assert cast1(scene, (10 - 5 * d[0], -5 * d[1], 1), d) == pytest.approx(4.0, abs=1e-4)


def test_cylinder_and_sphere_hits_are_exact() -> None:
    """Curved shapes are analytic: no facets, the hit is on the true surface."""
    scene = scene_of(
        shape("c", Cylinder(0.5, 2.0), pose(5, 0, 1), "lamp_post"),
        shape("s", Sphere(1.5), pose(0, 8, 3), "tree"),
    )
    for azimuth in np.linspace(-0.09, 0.09, 7):  # across the post, at every angle
        d = (math.cos(azimuth), math.sin(azimuth), 0.0)
        b = 5 * math.cos(azimuth)  # ray-circle: t = b - sqrt(b^2 - (|c|^2 - r^2))
        assert cast1(scene, (0, 0, 1), d) == pytest.approx(
            b - math.sqrt(b * b - (25 - 0.25)), abs=1e-5
        )
    assert cast1(scene, (0, 0, 2.5), (1, 0, 0)) == math.inf  # above its top
    assert cast1(scene, (5, 0, 4), (0, 0, -1)) == pytest.approx(2.0, abs=1e-5)  # top cap
    d = np.array([0.3, 8.0, 0.0]) / np.linalg.norm([0.3, 8.0, 0.0])
    hit = cast1(scene, (0, 0, 3), tuple(d))
    assert np.linalg.norm(hit * d - (0, 8, 0)) == pytest.approx(1.5, abs=1e-5)


def test_ray_from_inside_a_shape_hits_its_far_side() -> None:
    """First surface crossing, as a ray tracer over closed meshes gives."""
    scene = scene_of(
        shape("b", Box((4.0, 4.0, 4.0)), pose(0, 0, 0)),
        shape("c", Cylinder(1.0, 2.0), pose(20, 0, 0)),
        shape("s", Sphere(1.0), pose(-20, 0, 0)),
    )
    assert cast1(scene, (0, 0, 0), (1, 0, 0)) == pytest.approx(2.0, abs=1e-6)
    assert cast1(scene, (20, 0, 0), (0, 1, 0)) == pytest.approx(1.0, abs=1e-6)
    assert cast1(scene, (20, 0, 0.5), (0, 0, 1)) == pytest.approx(0.5, abs=1e-6)
    assert cast1(scene, (-20, 0, 0), (0, 0, -1)) == pytest.approx(1.0, abs=1e-6)


def test_analytic_shapes_agree_with_an_embree_triangulation() -> None:
    """Independent check of the compiled caster against Open3D/Embree on the same shapes:
    flat faces to float precision, curved ones within the triangulation's sagitta."""
    shapes = [
        GROUND,
        shape("b", Box((3.0, 1.0, 2.0)), pose(6, 2, 1, (0, 0, 0.4)), "building"),
        shape("r", Box((4.0, 2.0, 0.3)), pose(-5, -4, 0.1, (0.15, 0.1, -0.7)), "ramp"),
        shape("c", Cylinder(0.4, 3.0), pose(-3, 5, 1.5), "lamp_post"),
        shape("s", Sphere(1.2), pose(2, -7, 2.5), "tree"),
    ]
    scene = scene_of(*shapes)
    embree, tri_category, _ = build_raycaster(shapes)
    fan = RayFan.grid(
        np.linspace(-math.pi, math.pi, 360, endpoint=False), np.linspace(-0.6, 0.4, 9)
    )
    sensor = pose(0.3, -0.2, 1.1, (0.05, -0.03, 0.2))
    ours = scene.cast_fan(fan, sensor)
    dirs = (fan.directions @ sensor[:3, :3].T).astype(np.float32)
    rays = np.concatenate([np.broadcast_to(sensor[:3, 3], dirs.shape), dirs], axis=1)
    out = embree.cast_rays(o3d.core.Tensor.from_numpy(np.ascontiguousarray(rays, np.float32)))
    ref = out["t_hit"].numpy()
    prim = out["primitive_ids"].numpy()
    hit = np.isfinite(ref)
    cat = np.where(hit, tri_category[np.where(hit, prim, 0)], -1)
    curved = np.isin(cat, [CATEGORIES.index("lamp_post"), CATEGORIES.index("tree")])
    flat = ~curved & hit
    assert flat.sum() > 1000 and curved.sum() > 50
    np.testing.assert_allclose(ours.distance[flat], ref[flat], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(ours.category[flat], cat[flat])
    np.testing.assert_array_equal(np.isfinite(ours.distance[~hit]), False)
    # Curved, away from grazing incidence: within the facet depth over the incidence cosine
    # (sphere resolution 12 is coarse: r (1 - cos(pi/12)) = 4 cm for r = 1.2 m).
    cos_inc = np.abs(np.einsum("ij,ij->i", ours.normal, dirs))
    facing = curved & (cos_inc > 0.5)
    assert facing.sum() > 30
    depth = 1.2 * (1 - math.cos(math.pi / 12))
    assert np.abs(ours.distance[facing] - ref[facing]).max() < depth / 0.5


def test_sphere_pole_hit() -> None:
    scene = scene_of(shape("s", Sphere(1.0), pose(0, 0, 5), "tree"))
    assert cast1(scene, (0, 0, 10), (0, 0, -1)) == pytest.approx(4.0, abs=1e-4)
    assert cast1(scene, (0, 0, 0), (0, 0, 1)) == pytest.approx(4.0, abs=1e-4)


def test_plane_is_finite() -> None:
    scene = scene_of(shape("p", Plane((0.0, 0.0, 1.0), (10.0, 10.0)), pose(0, 0, 0.2)))
    assert cast1(scene, (1, 1, 2), (0, 0, -1)) == pytest.approx(1.8, abs=1e-4)
    assert cast1(scene, (20, 0, 2), (0, 0, -1)) == math.inf


def test_tilted_plane() -> None:
    # A wall-like plane: normal +x in the shape frame, at x = 3.
    scene = scene_of(shape("p", Plane((1.0, 0.0, 0.0), (4.0, 4.0)), pose(3, 0, 1)))
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(3.0, abs=1e-4)
    assert cast1(scene, (0, 0, 1), (1, 3, 0)) == math.inf  # passes beside its 4 m width


def test_mesh_file_with_scale(tmp_path: Path) -> None:
    cube = o3d.geometry.TriangleMesh.create_box(1, 1, 1)  # corner at the origin
    cube.compute_triangle_normals()
    o3d.io.write_triangle_mesh(str(tmp_path / "cube.stl"), cube)
    scene = scene_of(shape("m", Mesh(tmp_path / "cube.stl", (2.0, 2.0, 2.0)), pose(5, -1, 0)))
    # Scaled cube spans x 5..7, y -1..1, z 0..2.
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(5.0, abs=1e-4)
    assert cast1(scene, (6, 0, 10), (0, 0, -1)) == pytest.approx(8.0, abs=1e-4)


def test_hit_category_and_normal() -> None:
    scene = scene_of(shape("b", Box((1.0, 1.0, 1.0)), pose(3, 0, 0.5), "car"), GROUND)
    hits = scene.cast_hits(np.array([[0, 0, 0.5], [0, 0, 0.5]]), np.array([[1, 0, 0], [0, 0, -1]]))
    assert [CATEGORIES[c] for c in hits.category] == ["car", "ground"]
    assert abs(hits.normal[0, 0]) == pytest.approx(1.0)
    assert abs(hits.normal[1, 2]) == pytest.approx(1.0)


def test_agents_hit_at_right_distance_and_miss_when_moved() -> None:
    scene = scene_of(GROUND)
    scene.set_agents(np.array([[5.0, 0.0]]), np.array([0.3]), np.array([1.7]))
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(4.7, abs=1e-5)
    assert cast1(scene, (0, 0, 2), (1, 0, 0)) == math.inf  # over its head
    assert cast1(scene, (5, 0, 5), (0, 0, -1)) == pytest.approx(3.3, abs=1e-5)  # onto its head
    # A ray grazing at 0.2 m off-centre: sqrt(0.3^2 - 0.2^2) short of the centre.
    assert cast1(scene, (0, 0.2, 1), (1, 0, 0)) == pytest.approx(5 - math.sqrt(0.05), abs=1e-5)
    scene.set_agents(np.array([[5.0, 2.0]]), np.array([0.3]), np.array([1.7]))
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == math.inf
    scene.set_agents(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    assert cast1(scene, (5, 2, 5), (0, 0, -1)) == pytest.approx(5.0, abs=1e-4)


def test_agent_behind_wall_is_hidden_and_in_front_is_seen() -> None:
    scene = scene_of(shape("w", Box((0.2, 10.0, 3.0)), pose(6, 0, 1.5), "wall"))
    scene.set_agents(np.array([[8.0, 0.0]]), np.array([0.3]), np.array([1.8]))
    assert cast1(scene, (0, 0, 1), (1, 0, 0)) == pytest.approx(5.9, abs=1e-4)
    scene.set_agents(np.array([[4.0, 0.0]]), np.array([0.3]), np.array([1.8]))
    hits = scene.cast_hits(np.array([[0, 0, 1]]), np.array([[1, 0, 0]]))
    assert hits.distance[0] == pytest.approx(3.7, abs=1e-5)
    assert CATEGORIES[hits.category[0]] == "agent"
    np.testing.assert_allclose(hits.normal[0], [-1, 0, 0], atol=1e-6)


def test_agents_stand_on_kerb() -> None:
    kerb = shape("k", Box((4.0, 4.0, 0.15)), pose(5, 0, 0.075), "kerb")
    scene = scene_of(GROUND, kerb)
    scene.set_agents(np.array([[5.0, 0.0]]), np.array([0.3]), np.array([1.0]))
    # Top of the agent is 0.15 + 1.0.
    assert cast1(scene, (5, 0, 5), (0, 0, -1)) == pytest.approx(5 - 1.15, abs=1e-4)


def test_obstacles_added_and_removed() -> None:
    scene = scene_of(GROUND)
    scene.add_obstacle("trolley", Pose2D(5.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    hits = scene.cast_hits(np.array([[0, 0, 0.5]]), np.array([[1, 0, 0]]))
    assert hits.distance[0] == pytest.approx(4.5, abs=1e-5)
    assert CATEGORIES[hits.category[0]] == "obstacle"
    assert cast1(scene, (0, 0, 1.2), (1, 0, 0)) == math.inf  # above it
    scene.add_obstacle("trolley", Pose2D(5.0, 0.0, math.pi / 4), (1.0, 1.0, 1.0))  # replaced
    assert cast1(scene, (0, 0, 0.5), (1, 0, 0)) == pytest.approx(5 - math.sqrt(0.5), abs=1e-5)
    scene.remove_obstacle("trolley")
    assert cast1(scene, (0, 0, 0.5), (1, 0, 0)) == math.inf
    scene.remove_obstacle("never-added")
    with pytest.raises(ValueError, match="size must be positive"):
        scene.add_obstacle("bad", Pose2D(0, 0), (1.0, 0.0, 1.0))


def test_cast_fan_culling_matches_brute_force(tmp_path: Path) -> None:
    """The per-object row/column bounds and the nearest-first skipping are exact: a fan gives
    what testing every ray against every object gives, for every kind of shape, tilted."""
    rng = np.random.default_rng(3)
    cube = o3d.geometry.TriangleMesh.create_box(1, 1, 1)
    o3d.io.write_triangle_mesh(str(tmp_path / "cube.obj"), cube)
    statics = [GROUND, shape("w", Box((1.0, 30.0, 4.0)), pose(-12, 0, 2), "wall")]
    for i in range(30):
        x, y = rng.uniform(-20, 20, 2)
        rpy = tuple(rng.uniform(-0.4, 0.4, 3))
        geometry = [
            Box(tuple(rng.uniform(0.3, 6.0, 3))),
            Cylinder(float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.5, 5.0))),
            Sphere(float(rng.uniform(0.3, 2.0))),
            Plane((0.0, 0.0, 1.0), (3.0, 1.5)),
            Mesh(tmp_path / "cube.obj", (2.0, 1.0, 3.0)),
        ][i % 5]
        statics.append(shape(f"s{i}", geometry, pose(x, y, rng.uniform(0, 3), rpy), "car"))
    scene = scene_of(*statics)
    xy = rng.uniform(-15, 15, (60, 2))
    scene.set_agents(xy, rng.uniform(0.2, 0.6, 60), rng.uniform(0.5, 2.0, 60))
    scene.add_obstacle("a", Pose2D(3.0, -2.0, 0.4), (2.0, 0.5, 1.0))
    scene.add_obstacle("b", Pose2D(-4.0, 6.0, 1.2), (0.6, 0.6, 2.5))
    full = RayFan.grid(
        np.linspace(-math.pi, math.pi, 720, endpoint=False), np.linspace(-0.5, 0.5, 12)
    )
    part = RayFan.grid(np.linspace(2.0, 3.5, 40), np.linspace(-0.3, 0.2, 5))
    cases = [(0, 0, 0.3, 1.0), (0.3, -0.25, 2.0, 0.6), (-0.35, 0.3, -1, 2.5), (0, 1.2, 0, 1.0)]
    seen: set[int] = set()
    for fan in (full, part):
        for roll, pitch, yaw, z in cases:
            sensor = pose(0.5, -0.7, z, (roll, pitch, yaw))
            fast = scene.cast_fan(fan, sensor, max_range=25.0)
            dirs = fan.directions.astype(np.float64) @ sensor[:3, :3].T
            brute = scene.cast_hits(np.broadcast_to(sensor[:3, 3], dirs.shape), dirs)
            brute.distance[brute.distance > 25.0] = np.inf
            brute.category[np.isinf(brute.distance)] = -1
            np.testing.assert_allclose(fast.distance, brute.distance, rtol=1e-6)
            np.testing.assert_array_equal(fast.category, brute.category)
            seen |= set(fast.category.tolist())
    assert {CATEGORIES.index(c) for c in ("agent", "obstacle", "car", "wall", "ground")} <= seen


def test_narrow_fan_matches_brute_force() -> None:
    """A ranger-sized fan with a few objects near gives the hits of testing every pair."""
    scene = scene_of(GROUND)
    scene.set_agents(
        np.array([[1.5, 0.1], [2.0, -0.5], [-3.0, 0.0]]), np.full(3, 0.3), np.full(3, 1.7)
    )
    scene.add_obstacle("a", Pose2D(1.2, 0.6, 0.5), (0.4, 0.4, 1.0))
    fan = RayFan.grid(np.linspace(-0.3, 0.3, 5), np.linspace(-0.1, 0.1, 3))
    sensor = pose(0, 0, 0.4, (0, 0.05, 0.1))
    fast = scene.cast_fan(fan, sensor, max_range=5.5)
    dirs = fan.directions @ sensor[:3, :3].T
    brute = scene.cast_hits(np.broadcast_to(sensor[:3, 3], dirs.shape), dirs)
    np.testing.assert_allclose(fast.distance, brute.distance, rtol=1e-5)
    np.testing.assert_array_equal(fast.category, brute.category)
    assert {CATEGORIES.index("agent"), CATEGORIES.index("obstacle")} <= set(fast.category.tolist())


def test_cast_fans_equals_one_cast_fan_per_fan() -> None:
    """The batched cast gives each fan exactly its own cast, agents and range cut included."""
    rng = np.random.default_rng(5)
    scene = scene_of(GROUND, shape("w", Box((1.0, 30.0, 4.0)), pose(-6, 0, 2), "wall"))
    scene.set_agents(rng.uniform(-8, 8, (40, 2)), rng.uniform(0.2, 0.4, 40), np.full(40, 1.7))
    scene.add_obstacle("a", Pose2D(2.0, 1.0, 0.3), (1.0, 0.6, 1.0))
    small = RayFan.grid(np.linspace(-0.3, 0.3, 5), np.linspace(-0.1, 0.1, 3))
    wide = RayFan.grid(np.linspace(-math.pi, math.pi, 90, endpoint=False), np.array([0.0, 0.2]))
    fans = [small, small, wide, small]
    sensors = [pose(0, 0, 0.4, (0, 0, a)) for a in (0.0, 1.5, 0.0)] + [pose(30, 30, 0.4)]
    cut = [4.5, 4.5, math.inf, 4.5]
    batched = scene.cast_fans(fans, sensors, cut)
    hit_agent = False
    for fan, sensor, max_range, hits in zip(fans, sensors, cut, batched, strict=True):
        one = scene.cast_fan(fan, sensor, max_range=max_range)
        np.testing.assert_array_equal(hits.distance, one.distance)
        np.testing.assert_array_equal(hits.normal, one.normal)
        np.testing.assert_array_equal(hits.category, one.category)
        hit_agent |= bool((hits.category == CATEGORIES.index("agent")).any())
    assert hit_agent
    assert set(batched[3].category.tolist()) <= {CATEGORIES.index("ground"), -1}


def test_azimuth_sectors_joined_match_brute_force() -> None:
    """A sweep cast in azimuth sectors, each from its own pose (the lidar in motion): every
    sector's rays give what testing every ray against every object gives from that pose, so
    the culling of primitives outside a sector's arc loses nothing, tilted, across the +-pi
    seam and with a sector of one column."""
    rng = np.random.default_rng(11)
    statics = [GROUND, shape("w", Box((1.0, 30.0, 4.0)), pose(-9, 0, 2), "wall")]
    for i in range(40):
        x, y = rng.uniform(-15, 15, 2)
        geometry = [Box((1.0, 2.0, 3.0)), Cylinder(0.4, 3.0), Sphere(0.8)][i % 3]
        statics.append(shape(f"s{i}", geometry, pose(x, y, 1.0, (0.1, 0.0, x)), "car"))
    scene = scene_of(*statics)
    scene.set_agents(rng.uniform(-10, 10, (50, 2)), np.full(50, 0.3), np.full(50, 1.7))
    az = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    el = np.linspace(-0.26, 0.26, 6)
    for bounds in ([0, 90, 180, 270, 360], [0, 1, 2, 50, 179, 181, 359, 360]):
        fans = [RayFan.grid(az[lo:hi], el) for lo, hi in itertools.pairwise(bounds)]
        sensors = [pose(0.2 * k, 0.05 * k, 1.9, (0.03, -0.02, 0.1 * k)) for k in range(len(fans))]
        joined = scene.cast_fans_joined(fans, sensors, [30.0] * len(fans))
        at = 0
        for fan, sensor in zip(fans, sensors, strict=True):
            n = len(fan.directions)
            dirs = fan.directions.astype(np.float64) @ sensor[:3, :3].T
            brute = scene.cast_hits(np.broadcast_to(sensor[:3, 3], dirs.shape), dirs)
            brute.distance[brute.distance > 30.0] = np.inf
            np.testing.assert_allclose(joined.distance[at : at + n], brute.distance, rtol=1e-6)
            at += n
        assert at == len(joined.distance)


def test_sweep_cast_in_one_pass_matches_each_sector_brute_force() -> None:
    """`cast_sweep` (one pass over the primitives for every sector, the lidar in motion) gives
    each sector's rays what testing every ray against every object gives from that sector's
    pose, in the whole fan's ray order: tilted poses metres apart (far more than a sweep's
    motion), across the +-pi seam, a sector of one column, and a partial fan."""
    rng = np.random.default_rng(12)
    statics = [GROUND, shape("w", Box((1.0, 30.0, 4.0)), pose(-9, 0, 2), "wall")]
    for i in range(40):
        x, y = rng.uniform(-15, 15, 2)
        geometry = [Box((1.0, 2.0, 3.0)), Cylinder(0.4, 3.0), Sphere(0.8), Box((6.0, 0.3, 2.0))]
        statics.append(shape(f"s{i}", geometry[i % 4], pose(x, y, 1.0, (0.1, 0.0, x)), "car"))
    scene = scene_of(*statics)
    scene.set_agents(rng.uniform(-10, 10, (50, 2)), np.full(50, 0.3), np.full(50, 1.7))
    el = np.linspace(-0.26, 0.26, 6)
    full = RayFan.grid(np.linspace(-math.pi, math.pi, 360, endpoint=False), el)
    part = RayFan.grid(np.linspace(2.0, 4.0, 120), el)
    cases = [
        (full, [0, 90, 180, 270, 360]),
        (full, [0, 1, 2, 50, 179, 181, 359, 360]),
        (part, [0, 7, 60, 119, 120]),
        (full, [0, 360]),
    ]
    for fan, bounds in cases:
        k = len(bounds) - 1
        sensors = np.array(
            [pose(0.4 * j, 0.1 * j, 1.9, (0.03 * j, -0.02, 0.2 * j)) for j in range(k)]
        )
        hits = scene.cast_sweep(fan, np.array(bounds), sensors, max_range=30.0)
        seen = np.zeros(fan.rows * fan.cols, dtype=bool)
        for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            ray = (np.arange(fan.rows)[:, None] * fan.cols + np.arange(lo, hi)[None, :]).ravel()
            dirs = fan.directions[ray].astype(np.float64) @ sensors[j, :3, :3].T
            brute = scene.cast_hits(np.broadcast_to(sensors[j, :3, 3], dirs.shape), dirs)
            brute.distance[brute.distance > 30.0] = np.inf
            brute.category[np.isinf(brute.distance)] = -1
            np.testing.assert_allclose(hits.distance[ray], brute.distance, rtol=1e-6)
            np.testing.assert_array_equal(hits.category[ray], brute.category)
            seen[ray] = True
        assert seen.all()
        assert np.isfinite(hits.distance).mean() > 0.4


def test_sweep_cast_names_bad_sectors_and_poses() -> None:
    scene = scene_of(GROUND)
    fan = RayFan.grid(np.linspace(-1.0, 1.0, 10), np.array([-0.1, 0.1]))
    two = np.array([pose(), pose()])
    with pytest.raises(ValueError, match=r"sectors \[0, 5, 9\] must rise from 0 to the fan's 10"):
        scene.cast_sweep(fan, np.array([0, 5, 9]), two)
    with pytest.raises(ValueError, match="must rise"):
        scene.cast_sweep(fan, np.array([0, 5, 5, 10]), np.array([pose()] * 3))
    with pytest.raises(ValueError, match=r"expected \(2, 4, 4\), one per sector"):
        scene.cast_sweep(fan, np.array([0, 5, 10]), two[:1])


def test_ground_height_on_kerb_and_ramp() -> None:
    kerb = shape("k", Box((4.0, 1.0, 0.15)), pose(0, 5, 0.075, (0, 0, 0.3)), "kerb")
    # A 4 m ramp rising along +x at 1:8, 0.2 m thick, centred at x=10.
    slope = math.atan(1 / 8)
    ramp = shape("r", Box((4.0, 2.0, 0.2)), pose(10, 0, 0.25, (0, -slope, 0)), "ramp")
    building = shape("b", Box((5.0, 5.0, 10.0)), pose(-10, -10, 5), "building")
    scene = scene_of(GROUND, kerb, ramp, building)
    h = scene.ground_height(np.array([[0.0, 5.0], [0.0, 5.6], [30.0, 30.0], [-10.0, -10.0]]))
    np.testing.assert_allclose(h, [0.15, 0.0, 0.0, 0.0], atol=1e-4)
    xs = np.array([9.0, 10.0, 11.0])
    top = 0.25 + (xs - 10.0) * math.tan(slope) + 0.1 / math.cos(slope)
    got = scene.ground_height(np.column_stack([xs, np.zeros(3)]))
    np.testing.assert_allclose(got, top, atol=0.01)
    # Off the grid altogether.
    assert scene.ground_height(np.array([[1e4, 1e4]]))[0] == 0.0


def test_ground_height_follows_kerb_edge_within_a_cell() -> None:
    kerb = shape("k", Box((10.0, 10.0, 0.12)), pose(0.013, 0, 0.06), "kerb")
    scene = scene_of(GROUND, kerb)
    # The edge at x = 5.013: cells are 0.05 m, so 0.06 m either side is unambiguous.
    h = scene.ground_height(np.array([[4.95, 0.0], [5.08, 0.0]]))
    np.testing.assert_allclose(h, [0.12, 0.0], atol=1e-5)


def test_sky_blocked_fraction() -> None:
    wall = shape("w", Box((1.0, 400.0, 20.0)), pose(1.0, 0, 10), "building")
    roof = shape("r", Box((20.0, 20.0, 0.5)), pose(-30, 0, 3), "building")
    scene = scene_of(GROUND, wall, roof)
    # From 81 m away the wall top is below the 0.26 rad cut-off.
    assert scene.sky_blocked_fraction(np.array([-80.0, 0.0, 1.0])) == 0.0
    assert scene.sky_blocked_fraction(np.array([-30.0, 0.0, 1.0])) == 1.0
    # Next to a tall, long wall about half the sky (the +x half) is hidden.
    assert scene.sky_blocked_fraction(np.array([0.0, 0.0, 1.0])) == pytest.approx(0.5, abs=0.05)


def test_bounds_leave_out_planes() -> None:
    scene = scene_of(GROUND, shape("b", Box((2.0, 4.0, 1.0)), pose(10, 20, 0.5)))
    assert scene.bounds == pytest.approx((9.0, 18.0, 11.0, 22.0))
