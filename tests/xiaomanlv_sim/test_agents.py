"""Crowd: no agent passes through walls or others, runs repeat by seed, goals are reached,
the robot is avoided, cyclists ride fast on wide walkways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_sim.agents import CYCLIST, PEDESTRIAN, Crowd, CrowdError
from xiaomanlv_sim.footprint import Footprints
from xiaomanlv_sim.scenario import CrowdSpec, ObstacleSpec
from xiaomanlv_sim.site import MappingRoute, Pose2D, Site, Station, Walkways
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
    speeds = {PEDESTRIAN: [], CYCLIST: []}
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
    from xiaomanlv_sim.assets import site_file, world_file
    from xiaomanlv_sim.sdf import load_world
    from xiaomanlv_sim.site import load_site

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
