"""Crowd: no agent passes through walls or others, runs repeat by seed, goals are reached,
the robot is avoided, cyclists ride fast on wide walkways; the compiled kernels agree with a
straightforward numpy/shapely reference of the same model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from xiaomanlv_core.site import MappingRoute, Site, Walkways
from xiaomanlv_core.types import Pose2D, Station
from xiaomanlv_sim import crowd_kernels as kernels
from xiaomanlv_sim.agents import CYCLIST, PEDESTRIAN, Crowd, CrowdError, WallIndex
from xiaomanlv_sim.footprint import Footprint, Footprints
from xiaomanlv_sim.scenario import CrowdSpec, ObstacleSpec
from xiaomanlv_sim.world import Box, Shape, World

DT = 0.05  # [s]


def box(name: str, cx: float, cy: float, sx: float, sy: float) -> Shape:
    pose = np.eye(4)
    pose[:3, 3] = (cx, cy, 1.5)
    return Shape(name, Box((sx, sy, 3.0)), pose, name, "wall")


def corridor(width: float, length: float = 40.0) -> tuple[Footprints, Site]:
    """A corridor along x between two walls, closed at both ends, a door at each end."""
    half = width / 2
    shapes = (
        box("north", length / 2, half + 0.25, length + 1, 0.5),
        box("south", length / 2, -half - 0.25, length + 1, 0.5),
        box("west", -0.25, 0, 0.5, width + 1),
        box("east", length + 0.25, 0, 0.5, width + 1),
    )
    world = World("corridor", Path("corridor.sdf"), shapes, None)
    nodes = {"w": (2.0, 0.0), "m": (length / 2, 0.0), "e": (length - 2.0, 0.0)}
    walk = Walkways(nodes, (("w", "m", width), ("m", "e", width)))
    site = Site(
        "corridor",
        world.source,
        Station("s", Pose2D(1, 0), Pose2D(1, 0)),
        (),
        MappingRoute(((2.0, 0.0), (length - 2.0, 0.0)), False, length - 4.0),
        walk,
        {"west_door": (0.0, 0.0), "east_door": (length, 0.0)},
    )
    return Footprints.from_world(world), site


def check_separation(crowd: Crowd, fp: Footprints) -> tuple[float, float]:
    """Smallest wall clearance (exact) and smallest pair gap, in metres."""
    s = crowd.state
    dist, _ = fp.nearest(s.positions)
    wall_gap = float(np.min(dist - s.radii))
    d = np.linalg.norm(s.positions[:, None] - s.positions[None], axis=2)
    gap = d - (s.radii[:, None] + s.radii[None])
    np.fill_diagonal(gap, np.inf)
    return wall_gap, float(gap.min()) if len(gap) > 1 else np.inf


FAR = np.array([1e4, 1e4])  # a robot nowhere near
STILL = np.zeros(2)


def test_narrow_corridor_no_agent_crosses_a_wall_or_another() -> None:
    fp, site = corridor(width=2.5)
    spec = CrowdSpec(pedestrians=30, cyclists=0, group_fraction=0.4, loiter_fraction=0.1)
    crowd = Crowd(spec, site, fp, np.random.default_rng(3))
    worst_wall, worst_pair = np.inf, np.inf
    for _ in range(1500):  # 75 s: walkers meet head-on in a corridor for two abreast
        crowd.step(DT, FAR, STILL, 0.4)
        wall_gap, pair_gap = check_separation(crowd, fp)
        worst_wall, worst_pair = min(worst_wall, wall_gap), min(worst_pair, pair_gap)
    assert worst_wall >= 0.0
    assert worst_pair >= -0.01  # the projection's tolerance: 1 cm in a dense crowd
    assert np.all(np.abs(crowd.state.positions[:, 1]) < 1.25)
    assert np.all(np.isfinite(crowd.state.velocities))


def test_same_seed_same_run_other_seed_other_run() -> None:
    fp, site = corridor(width=4.0)
    spec = CrowdSpec(pedestrians=20, cyclists=2)

    def run(seed: int) -> np.ndarray:
        crowd = Crowd(spec, site, fp, np.random.default_rng(seed))
        robot = np.array([20.0, 0.0])
        for _ in range(300):
            crowd.step(DT, robot, np.array([0.3, 0.0]), 0.45)
        return crowd.state.positions

    a, b, c = run(5), run(5), run(6)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_walkers_reach_both_doors_again_and_again() -> None:
    fp, site = corridor(width=3.0)
    crowd = Crowd(
        CrowdSpec(pedestrians=1, group_fraction=0, loiter_fraction=0, crossing_fraction=0),
        site,
        fp,
        np.random.default_rng(1),
    )
    visits = {"west": 0, "east": 0}
    near_prev = ""
    for _ in range(2400):  # 120 s: about three corridor lengths at 1.3 m/s
        crowd.step(DT, FAR, STILL, 0.4)
        x = crowd.state.positions[0, 0]
        here = "west" if x < 2.0 else "east" if x > 38.0 else ""
        if here and here != near_prev:
            visits[here] += 1
        near_prev = here or near_prev
    assert visits["west"] >= 1 and visits["east"] >= 1
    assert sum(visits.values()) >= 3


def test_pedestrian_gives_way_to_the_robot() -> None:
    fp, site = corridor(width=6.0, length=60.0)
    spec = CrowdSpec(pedestrians=1, group_fraction=0, loiter_fraction=0, crossing_fraction=0)
    robot_r = 0.45

    def closest_approach(robot: np.ndarray) -> tuple[float, float]:
        crowd = Crowd(spec, site, fp, np.random.default_rng(2))
        crowd.pos[0] = (5.0, 0.0)  # walking east along the centre line, robot ahead
        crowd.vel[0] = (1.3, 0.0)
        crowd.lane[0] = 0.0
        crowd._set_route(0, np.array([[5.0, 0.0], [58.0, 0.0]]), 1)
        best, lateral = np.inf, 0.0
        for _ in range(700):
            crowd.step(DT, robot, STILL, robot_r)
            p = crowd.state.positions[0]
            d = float(np.linalg.norm(p - robot)) - robot_r - crowd.state.radii[0]
            if d < best:
                best, lateral = d, abs(float(p[1] - robot[1]))
            if p[0] > 45:
                break
        assert p[0] > 45, "the pedestrian must get past the robot"
        return best, lateral

    gap, lateral = closest_approach(np.array([25.0, 0.0]))
    assert gap > 0.2  # no contact, and a margin
    assert lateral > robot_r + 0.2  # stepped aside rather than stopping
    free_gap, _ = closest_approach(np.array([25.0, 2.9]))  # robot in the corner, out of the way
    assert free_gap > gap


def test_cyclists_ride_fast_on_wide_walkways_only() -> None:
    fp, site = corridor(width=4.0, length=80.0)
    narrow = Walkways(
        {**site.walkways.nodes, "n": (40.0, 1.5)}, (*site.walkways.edges, ("m", "n", 1.5))
    )
    site = Site(site.name, site.world, site.station, (), site.mapping_route, narrow, site.entrances)
    crowd = Crowd(CrowdSpec(pedestrians=10, cyclists=4), site, fp, np.random.default_rng(4))
    speeds: dict[int, list[float]] = {PEDESTRIAN: [], CYCLIST: []}
    for _ in range(600):
        crowd.step(DT, FAR, STILL, 0.4)
        s = crowd.state
        sp = np.linalg.norm(s.velocities, axis=1)
        for k in (PEDESTRIAN, CYCLIST):
            speeds[k].extend(sp[s.kinds == k])
        assert "n" not in crowd.cycle_graph
    assert np.percentile(speeds[CYCLIST], 75) > 3.5
    assert np.percentile(speeds[PEDESTRIAN], 95) < 2.5
    assert np.all(crowd.state.radii[crowd.state.kinds == CYCLIST] > 0.4)


def test_groups_keep_together() -> None:
    fp, site = corridor(width=4.0, length=60.0)
    spec = CrowdSpec(pedestrians=12, group_fraction=1.0, loiter_fraction=0.0)
    crowd = Crowd(spec, site, fp, np.random.default_rng(7))
    groups = [np.flatnonzero(crowd.group == g) for g in np.unique(crowd.group)]
    assert all(2 <= len(g) <= 4 for g in groups)
    spreads = []
    for _ in range(800):
        crowd.step(DT, FAR, STILL, 0.4)
        pos = crowd.state.positions
        spreads += [
            float(np.max(np.linalg.norm(pos[g] - pos[g].mean(axis=0), axis=1))) for g in groups
        ]
    assert np.median(spreads) < 1.5


def test_obstacle_added_at_run_time_blocks_agents() -> None:
    fp, site = corridor(width=3.0)
    crowd = Crowd(CrowdSpec(pedestrians=15), site, fp, np.random.default_rng(8))
    fp.add_obstacle("trolley", ObstacleSpec("trolley", Pose2D(20.0, 0.0, 0.0), (1.0, 0.6, 1.0)))
    for _ in range(800):
        crowd.step(DT, FAR, STILL, 0.4)
        wall_gap, _ = check_separation(crowd, fp)
        assert wall_gap >= 0.0


def test_empty_crowd_and_no_walkways() -> None:
    fp, site = corridor(width=3.0)
    empty = Crowd(CrowdSpec(), site, fp, np.random.default_rng(0))
    empty.step(DT, FAR, STILL, 0.4)
    assert empty.state.positions.shape == (0, 2)
    bare = Site(site.name, site.world, site.station, (), site.mapping_route, Walkways({}, ()), {})
    with pytest.raises(CrowdError, match="no walkway nodes"):
        Crowd(CrowdSpec(pedestrians=3), bare, fp, np.random.default_rng(0))


def test_shipped_university_crowd_keeps_clear_of_walls_and_each_other() -> None:
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim.assets import site_file, world_file
    from xiaomanlv_sim.sdf import load_world

    path = world_file("university")
    fp = Footprints.from_world(load_world(path))
    site = load_site(site_file(path))
    crowd = Crowd(CrowdSpec(pedestrians=100, cyclists=10), site, fp, np.random.default_rng(11))
    robot = np.array([site.station.loading.x, site.station.loading.y])
    start = crowd.state.positions
    for _ in range(400):
        crowd.step(DT, robot, STILL, 0.45)
        wall_gap, pair_gap = check_separation(crowd, fp)
        assert wall_gap >= 0.0
        assert pair_gap >= -0.01
    moved = np.linalg.norm(crowd.state.positions - start, axis=1)
    assert np.median(moved) > 5.0  # 20 s of walking, not stuck


# -- the compiled kernels against a plain numpy/shapely reference of the same model ----------


def _steer_ref(e: np.ndarray, n: np.ndarray, clearance: np.ndarray, reach: float) -> None:
    into = np.einsum("ij,ij->i", e, n)
    sel = (into < 0) & (clearance < reach)
    if not np.any(sel):
        return
    w = np.clip(1.0 - clearance[sel] / reach, 0.0, 1.0) * (-into[sel])
    tangent = np.stack([-n[sel, 1], n[sel, 0]], axis=1)
    tangent *= np.where(np.einsum("ij,ij->i", tangent, e[sel]) < -1e-9, -1.0, 1.0)[:, None]
    es = (1.0 - w)[:, None] * e[sel] + w[:, None] * tangent
    e[sel] = es / np.maximum(np.hypot(es[:, 0], es[:, 1]), 1e-9)[:, None]


def _cap_ref(crowd: Crowd, vel: np.ndarray) -> None:
    cap = crowd.cfg.max_speed_factor * crowd.v0
    sp = np.hypot(vel[:, 0], vel[:, 1])
    over = sp > cap
    vel[over] *= (cap[over] / sp[over])[:, None]


def _project_walls_ref(crowd: Crowd) -> None:
    fp = crowd.footprints
    cand = np.flatnonzero(fp.distance(crowd.pos) < crowd.radius + 2.0 * fp.cell)
    for _ in range(3):
        if not len(cand):
            return
        p, r = crowd.pos[cand], crowd.radius[cand]
        dist, near = fp.nearest(p)  # shapely, exact
        bad = dist < r
        if not np.any(bad):
            return
        inside = bad & (dist <= 0.0)
        outside = bad & ~inside
        away = p[outside] - near[outside]
        crowd.pos[cand[outside]] = (
            near[outside] + away / dist[outside, None] * (r[outside] + 1e-4)[:, None]
        )
        if np.any(inside):
            dg, g = fp.distance_and_gradient(p[inside])
            gn = np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-9)
            step = (r[inside] - dg + fp.cell)[:, None] * g / gn[:, None]
            crowd.pos[cand[inside]] = p[inside] + step


def _project_ref(crowd: Crowd, pairs: np.ndarray) -> None:
    k, pos = len(crowd.pos), crowd.pos
    inv_mass = np.where(crowd.kind == CYCLIST, 1.0 / 3.0, 1.0)
    if len(pairs):
        reach = 2 * float(crowd.radius.max()) + 0.3
        pairs = pairs[np.hypot(*(pos[pairs[:, 0]] - pos[pairs[:, 1]]).T) < reach]
    for _ in range(crowd.cfg.projection_iterations):
        _project_walls_ref(crowd)
        if not len(pairs):
            continue
        i, j = pairs[:, 0], pairs[:, 1]
        diff = pos[i] - pos[j]
        dist = np.hypot(diff[:, 0], diff[:, 1])
        overlap = crowd.radius[i] + crowd.radius[j] - dist + 1e-4
        if not np.any(overlap > 5e-4):
            break
        hit = overlap > 0
        i, j, diff, dist, overlap = i[hit], j[hit], diff[hit], dist[hit], overlap[hit]
        same = dist < 1e-9
        ang = (i[same] * 2.399963) % (2 * math.pi)
        diff[same] = np.stack([np.cos(ang), np.sin(ang)], axis=1)
        dist[same] = 1.0
        n = diff / dist[:, None]
        wi = inv_mass[i] / (inv_mass[i] + inv_mass[j])
        shift_i = (overlap * wi)[:, None] * n
        shift_j = -(overlap * (1.0 - wi))[:, None] * n
        cnt = np.bincount(i, minlength=k) + np.bincount(j, minlength=k)
        scale = 1.0 / np.sqrt(np.maximum(cnt, 1))
        for axis in (0, 1):
            moved = np.bincount(i, shift_i[:, axis], k) + np.bincount(j, shift_j[:, axis], k)
            pos[:, axis] += moved * scale
    _project_walls_ref(crowd)


def _advance_ref(crowd: Crowd, dt: float) -> None:
    cfg, k = crowd.cfg, len(crowd.pos)
    target = crowd._wp[np.arange(k), crowd._wp_idx]
    d = np.hypot(*(target - crowd.pos).T)
    radius = np.where(crowd.kind == CYCLIST, cfg.cyclist_waypoint_radius, cfg.waypoint_radius)
    last = crowd._wp_idx >= crowd._wp_len - 1
    reached = d < np.where(last, 0.5 * radius, radius)
    crowd._wp_idx[:] = np.where(reached & ~last, crowd._wp_idx + 1, crowd._wp_idx)
    better = d < crowd._best - 0.5
    crowd._best[:] = np.where(reached, np.inf, np.where(better, d, crowd._best))
    crowd._since[:] = np.where(better | reached, 0.0, crowd._since + dt)
    expired = (crowd.timer > 0) & (crowd.timer <= dt)
    crowd.timer[:] = np.maximum(crowd.timer - dt, 0.0)
    moving = (crowd._standing == 0) & (crowd.mode != 1)
    arrived = reached & last & moving
    stuck = (crowd._since > cfg.stuck_time) & moving
    for i in np.flatnonzero(arrived | stuck | expired):
        crowd._event(int(i), bool(arrived[i]), bool(stuck[i]))


def reference_step(
    crowd: Crowd, dt: float, robot: np.ndarray, robot_v: np.ndarray, rr: float
) -> None:
    """One crowd step as vectorised numpy with shapely's exact distances (no kernels)."""
    cfg, k, pos, vel = crowd.cfg, len(crowd.pos), crowd.pos, crowd.vel
    crowd.time += dt
    _advance_ref(crowd, dt)
    target = crowd._wp[np.arange(k), crowd._wp_idx]
    seg = robot_v * cfg.robot_horizon
    rel = pos - robot
    t = np.clip(rel @ seg / (seg @ seg), 0.0, 1.0) if seg @ seg > 1e-12 else np.zeros(k)
    diff_r = rel - t[:, None] * seg
    dist_r = np.maximum(np.hypot(diff_r[:, 0], diff_r[:, 1]), 1e-6)
    n_r = diff_r / dist_r[:, None]
    gap = dist_r - crowd.radius - rr
    to_target = target - pos
    dist_t = np.hypot(to_target[:, 0], to_target[:, 1])
    e = to_target / np.maximum(dist_t, 1e-9)[:, None]
    d_wall, g_wall = crowd.footprints.distance_and_gradient(pos)
    n_wall = g_wall / np.maximum(np.hypot(g_wall[:, 0], g_wall[:, 1]), 1e-9)[:, None]
    clearance = d_wall - crowd.radius
    _steer_ref(e, n_r, gap, cfg.robot_steer_distance)
    _steer_ref(e, n_wall, clearance, cfg.wall_slide_distance)
    wanted = crowd.v0 * np.clip(dist_t / 0.5, 0.0, 1.0)
    wanted[(crowd.mode == 1) | (crowd._standing != 0)] = 0.0
    acc = (wanted[:, None] * e - vel) / crowd.tau[:, None]
    sp = np.hypot(vel[:, 0], vel[:, 1])
    heading = np.where((sp > 0.1)[:, None], vel / np.maximum(sp, 1e-9)[:, None], e)
    cutoff = max(cfg.interaction_radius, 2.0 * float(crowd.radius.max()) + 0.5)
    pairs = np.asarray(cKDTree(pos).query_pairs(cutoff, output_type="ndarray"), dtype=np.intp)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        diff = pos[i] - pos[j]
        dist = np.maximum(np.hypot(diff[:, 0], diff[:, 1]), 1e-6)
        n_ij = diff / dist[:, None]
        cyc = (crowd.kind[i] == CYCLIST) | (crowd.kind[j] == CYCLIST)
        b = np.where(cyc, cfg.cyclist_range, cfg.agent_range)
        mag = cfg.agent_strength * np.exp((crowd.radius[i] + crowd.radius[j] - dist) / b)
        mag = np.where(crowd.group[i] == crowd.group[j], mag * cfg.group_strength_factor, mag)
        lam = cfg.anisotropy
        w_i = lam + (1 - lam) * 0.5 * (1 - np.einsum("ij,ij->i", n_ij, heading[i]))
        w_j = lam + (1 - lam) * 0.5 * (1 + np.einsum("ij,ij->i", n_ij, heading[j]))
        for axis in (0, 1):
            fi, fj = mag * w_i * n_ij[:, axis], -mag * w_j * n_ij[:, axis]
            acc[:, axis] += np.bincount(i, fi, k) + np.bincount(j, fj, k)
    near = clearance < 2.0
    acc[near] += (cfg.wall_strength * np.exp(-clearance[near] / cfg.wall_range))[:, None] * (
        n_wall[near]
    )
    close = gap < 4.0
    lam = cfg.anisotropy
    w_r = lam + (1 - lam) * 0.5 * (1 - np.einsum("ij,ij->i", n_r[close], heading[close]))
    acc[close] += (cfg.robot_strength * np.exp(-gap[close] / cfg.robot_range) * w_r)[:, None] * n_r[
        close
    ]
    counts = np.bincount(crowd.group, minlength=k).astype(float)
    centre = np.stack(
        [np.bincount(crowd.group, pos[:, a], k) / np.maximum(counts, 1) for a in (0, 1)], axis=1
    )[crowd.group]
    to_c = centre - pos
    dist_c = np.hypot(to_c[:, 0], to_c[:, 1])
    spread = 0.5 * cfg.group_spacing * (counts[crowd.group] - 1) + 0.3
    grouped = crowd._grouped != 0
    pull = np.where(grouped & (dist_c > spread), cfg.cohesion * (dist_c - spread), 0.0)
    acc += (pull / np.maximum(dist_c, 1e-9))[:, None] * to_c
    vel += acc * dt
    _cap_ref(crowd, vel)
    before = pos.copy()
    pos += vel * dt
    _project_ref(crowd, pairs)
    vel[:] = (pos - before) / dt
    _cap_ref(crowd, vel)


def test_compiled_step_agrees_with_the_numpy_reference() -> None:
    """A dense corridor with cyclists, groups, loiterers, a moving robot, a run-time obstacle,
    overlapping and coincident agents and one agent pushed into a wall: the compiled step and
    the reference (numpy forces, cKDTree pairs, shapely nearest points) stay together."""
    fp_a, site = corridor(width=3.0)
    fp_b, _ = corridor(width=3.0)
    spec = CrowdSpec(pedestrians=24, cyclists=3, group_fraction=0.5, loiter_fraction=0.15)
    crowds = [Crowd(spec, site, fp, np.random.default_rng(21)) for fp in (fp_a, fp_b)]
    for fp in (fp_a, fp_b):
        fp.add_obstacle("trolley", ObstacleSpec("trolley", Pose2D(21.0, 0.5, 0.3), (1.0, 0.6, 1)))
    for c in crowds:
        c.pos[1] = c.pos[0]  # coincident
        c.pos[2] = c.pos[3] + (0.1, 0.05)  # deep overlap
        c.pos[4] = (10.0, 1.45)  # inside the north wall's footprint
        c.pos[5] = (21.0, 0.4)  # inside the trolley
    kernel, ref = crowds
    assert np.array_equal(kernel.pos, ref.pos)
    cutoff = 2.0 * float(kernel.radius.max()) + 0.1  # the projection alone, as at spawn
    kernel._project(cutoff)
    _project_ref(ref, np.asarray(cKDTree(ref.pos).query_pairs(cutoff, output_type="ndarray")))
    np.testing.assert_allclose(kernel.pos, ref.pos, rtol=0, atol=1e-9)
    assert np.linalg.norm(kernel.pos[1] - kernel.pos[0]) > 0.4  # coincident pair separated
    robot, robot_v = np.array([18.0, -0.3]), np.array([0.8, 0.1])
    for n in range(40):
        kernel.step(DT, robot, robot_v, 0.45)
        reference_step(ref, DT, robot, robot_v, 0.45)
        robot = robot + robot_v * DT
        np.testing.assert_allclose(kernel.pos, ref.pos, rtol=0, atol=1e-9, err_msg=f"step {n}")
        np.testing.assert_allclose(kernel.vel, ref.vel, rtol=0, atol=1e-7, err_msg=f"step {n}")
        assert np.array_equal(kernel._wp_idx, ref._wp_idx)
        assert np.array_equal(kernel.mode, ref.mode)
    wall_gap, pair_gap = check_separation(kernel, fp_a)
    assert wall_gap >= 0.0 and pair_gap >= -0.01


def test_nearest_wall_is_shapely_nearest_below_the_margin() -> None:
    """Exact distance and nearest point, inside (0) and outside, holes and run-time obstacles."""
    ring = Polygon([(0, 0), (6, 0), (6, 6), (0, 6)], holes=[[(2, 2), (4, 2), (4, 4), (2, 4)]])
    tilted = shapely.affinity.rotate(Polygon([(9, 0), (9.3, 0), (9.3, 8), (9, 8)]), 20)
    tree = shapely.Point(3, 9).buffer(0.4, quad_segs=8)
    fp = Footprints([Footprint(n, "wall", p) for n, p in (("r", ring), ("t", tilted), ("k", tree))])
    fp.add_obstacle("box", ObstacleSpec("box", Pose2D(12.0, 3.0, 0.7), (2.0, 1.0, 1.0)))
    margin = 0.8
    index = WallIndex(fp.static, margin)
    walls = index.arrays(tuple(fp.obstacles.values()), fp)
    pts = np.random.default_rng(0).uniform((-2, -2), (15, 12), (4000, 2))
    want, want_near = fp.nearest(pts)
    for p, d, near in zip(pts, want, want_near, strict=True):
        got, nx, ny = kernels.nearest_wall(*walls, p[0], p[1])  # wall_real, wall_int
        if d < margin:
            assert got == pytest.approx(d, abs=1e-9)
            assert np.allclose((nx, ny), near, atol=1e-9)
        else:
            assert got >= margin - 1e-9
    assert np.sum(want == 0.0) > 100 and np.sum((want > 0) & (want < margin)) > 200


def test_pair_sweep_finds_exactly_the_pairs_within_the_cutoff() -> None:
    rng = np.random.default_rng(1)
    real = np.zeros((150, kernels.N_REAL))
    ints = np.zeros((150, kernels.N_INT), dtype=np.int64)
    ints[:, kernels.I_ORDER] = np.arange(150)
    real[:, : kernels.R_Y + 1] = rng.uniform(0, 30, (150, 2))
    for _ in range(3):  # the kept order is re-sorted as agents move
        pos = real[:, : kernels.R_Y + 1]
        pairs, n = kernels.find_pairs(real, ints, 3.0)
        want = cKDTree(pos).query_pairs(3.0)
        assert {(int(i), int(j)) for i, j in pairs[:n]} == want
        assert n == len(want)
        assert np.all(np.diff(pos[ints[:, kernels.I_ORDER], 0]) >= 0)
        real[:, : kernels.R_Y + 1] += rng.normal(0, 0.5, (150, 2))


def test_kernel_field_is_the_footprints_field_also_off_the_grid() -> None:
    walls, _ = corridor(width=3.0)
    fp = Footprints(walls.static, bounds=(5.0, -3.0, 30.0, 1.7))  # the grid ends in a wall
    index = WallIndex(fp.static, 1.0)
    wall_real, _ = index.arrays((), fp)
    lo_x, lo_y, hi_x, hi_y = fp.bounds
    pts = np.random.default_rng(2).uniform((lo_x - 5, lo_y - 5), (hi_x + 5, hi_y + 5), (3000, 2))
    want_d, want_g = fp.distance_and_gradient(pts)
    got = np.array([kernels._field(fp._sdf, wall_real, x, y) for x, y in pts])
    np.testing.assert_array_equal(got[:, 0], want_d)
    np.testing.assert_array_equal(got[:, 1:], want_g)
    outside = (pts[:, 0] < lo_x) | (pts[:, 0] > hi_x) | (pts[:, 1] < lo_y) | (pts[:, 1] > hi_y)
    assert outside.sum() > 500
    assert np.any(outside & (want_d == 0.0))  # clamped: off the grid never reads as inside
