"""The lockstep simulator on the real robot model: determinism, rates, commands, faults."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.geometry import pose_matrix
from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim import assets
from xiaomanlv_sim.scenario import (
    CrowdSpec,
    GnssJump,
    ImuBiasStep,
    ObstacleSpec,
    Scenario,
    ScenarioError,
    SensorDropout,
    WheelSlipPatch,
)
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sensors.gnss import GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.sensors.ultrasonic import RangeReading
from xiaomanlv_sim.simulator import (
    Simulator,
    SimulatorConfig,
    _interpolated_poses,
    _Schedule,
    _Timetable,
    _touching_agents,
    start_pose,
)
from xiaomanlv_sim.world import Box, Shape, World

ORIGIN = Datum(31.0252, 121.4365, 10.0, 0.0)


@pytest.fixture(scope="module")
def robot() -> RobotSpec:
    return load_robot(model_file())


def _box(name: str, xyz: tuple[float, float, float], size, category: str) -> Shape:
    pose = np.eye(4)
    pose[:3, 3] = xyz
    return Shape(f"{name}::link::c", Box(size), pose, name, category)


@pytest.fixture(scope="module")
def small_world() -> World:
    """A 60 x 60 m yard: ground, a 0.1 m kerb strip, a wall, a tall building."""
    shapes = (
        _box("ground", (0.0, 0.0, -0.05), (60.0, 60.0, 0.1), "ground"),
        _box("kerb", (0.0, 10.0, 0.05), (60.0, 2.0, 0.1), "kerb"),
        _box("wall", (15.0, 0.0, 1.0), (0.3, 8.0, 2.0), "wall"),
        _box("tower", (-20.0, -20.0, 15.0), (10.0, 10.0, 30.0), "building"),
    )
    return World("yard", Path("yard.sdf"), shapes, ORIGIN, ("ground", "kerb", "wall", "tower"))


def scenario(**kw) -> Scenario:
    base = dict(name="t", world="yard", seed=4, duration=10.0, start=Pose2D(0.0, 0.0, 0.0))
    return Scenario(**{**base, **kw})


COMMANDS = [(1.0, 0.0), (1.0, 0.3), (0.5, -0.5), (0.0, 0.0)]


def drive(sim: Simulator, seconds_each: float = 0.5) -> list:
    out = []
    for v, w in COMMANDS:
        sim.set_cmd_vel(v, w)
        out += list(sim.run(seconds_each))
    return out


def fingerprint(readings: list) -> list:
    """Everything a reading carries, as comparable plain values."""
    rows = []
    for r in readings:
        values = []
        for name, value in vars(r).items():
            if isinstance(value, np.ndarray):
                values.append((name, value.dtype.str, value.tobytes()))
            else:
                values.append((name, value))
        rows.append((type(r).__name__, tuple(values)))
    return rows


def test_same_seed_and_commands_give_identical_readings(small_world, robot) -> None:
    faults = (GnssJump(0.5, 1.0, (3.0, 0.0)), ImuBiasStep(1.0, gyro=(0.0, 0.0, 0.01)))
    obstacles = (ObstacleSpec("box", Pose2D(4.0, 0.0, 0.0), (1.0, 1.0, 1.0), appear_at=0.5),)
    runs = []
    for _ in range(2):
        sim = Simulator(small_world, robot, scenario=scenario(faults=faults, obstacles=obstacles))
        runs.append((fingerprint(drive(sim)), sim.ground_truth.pose))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = Simulator(small_world, robot, scenario=scenario(faults=faults), seed=99)
    assert fingerprint(drive(other)) != runs[0][0]


def test_sensor_counts_over_two_seconds_match_the_declared_rates(small_world, robot) -> None:
    sim = Simulator(small_world, robot, scenario=scenario())
    counts: Counter[str] = Counter()
    stamps: dict[str, list[float]] = {}
    for r in sim.run(2.0):
        key = getattr(r, "name", "") if isinstance(r, RangeReading) else type(r).__name__
        counts[key] += 1
        stamps.setdefault(key, []).append(r.stamp)
    assert counts["LidarScan"] == 2.0 * robot.lidar.rate
    assert counts["ImuReading"] == 2.0 * robot.imu.rate
    assert counts["OdomReading"] == 2.0 * robot.drive.odom_rate
    assert counts["GnssReading"] == 2.0 * robot.gnss.rate
    for spec in robot.ultrasonic:
        assert counts[spec.name] == 2.0 * spec.rate
    # Stamps are exact multiples of each period.
    imu = np.array(stamps["ImuReading"])
    np.testing.assert_allclose(imu, np.arange(1, 201) / robot.imu.rate, rtol=0, atol=1e-12)
    # A sweep is stamped with its first column's time: the one that ends at 0.1 s began at 0.
    lidar = np.array(stamps["LidarScan"])
    np.testing.assert_allclose(lidar, np.arange(20) / robot.lidar.rate, rtol=0, atol=1e-12)


def test_ground_truth_pose_follows_commands(small_world, robot) -> None:
    sim = Simulator(small_world, robot, scenario=scenario(start=Pose2D(-5.0, 0.0, math.pi / 2)))
    sim.set_cmd_vel(1.0, 0.0)
    list(sim.run(3.0))
    truth = sim.ground_truth
    # 1 m/s^2 to 1 m/s takes 1 s (0.5 m), then 2 s at 1 m/s: 2.5 m north.
    assert truth.pose[1, 3] == pytest.approx(2.5, abs=0.05)
    assert truth.pose[0, 3] == pytest.approx(-5.0, abs=0.05)
    assert truth.twist[0] == pytest.approx(1.0, abs=0.05)
    sim.set_cmd_vel(0.0, 0.5)
    list(sim.run(2.0))
    yaw = math.atan2(sim.ground_truth.pose[1, 0], sim.ground_truth.pose[0, 0])
    assert yaw > math.pi / 2 + 0.6  # turned left
    assert not sim.ground_truth.tipped


def test_odometry_imu_and_gnss_see_the_motion(small_world, robot) -> None:
    sim = Simulator(small_world, robot, scenario=scenario())
    sim.set_cmd_vel(1.0, 0.0)
    readings = list(sim.run(4.0))
    odom = [r for r in readings if isinstance(r, OdomReading)][-1]
    assert odom.pose[0] == pytest.approx(sim.ground_truth.pose[0, 3], abs=0.1)
    imu = [r for r in readings if isinstance(r, ImuReading)]
    assert np.mean([r.linear_acceleration[0] for r in imu[:90]]) == pytest.approx(1.0, abs=0.1)
    assert np.mean([r.linear_acceleration[2] for r in imu]) == pytest.approx(9.81, abs=0.1)
    fixes = [r for r in readings if isinstance(r, GnssReading)]
    assert all(f.status == 0 for f in fixes)
    assert fixes[-1].longitude > fixes[0].longitude  # drove east


def test_kerb_gives_roll_and_a_blocked_wall_is_an_event(small_world, robot) -> None:
    # Drive along the kerb edge (y = 9) with the left wheel on it.
    sim = Simulator(small_world, robot, scenario=scenario(start=Pose2D(-10.0, 8.7, 0.0)))
    sim.set_cmd_vel(0.5, 0.0)
    imu = [r for r in sim.run(3.0) if isinstance(r, ImuReading)]
    roll = math.atan2(sim.ground_truth.pose[2, 1], sim.ground_truth.pose[2, 2])
    assert roll == pytest.approx(math.atan2(0.1, robot.drive.wheel_separation), abs=0.01)
    assert imu[-1].linear_acceleration[1] == pytest.approx(9.80665 * math.sin(roll), abs=0.1)


def test_faults_drop_sensors_and_raise_events(small_world, robot) -> None:
    faults = (
        SensorDropout("lidar", 0.5, 1.0),
        SensorDropout("ultrasonic", 0.0, 2.5),
        WheelSlipPatch((0.0, 0.0), 50.0, 0.5),
    )
    sim = Simulator(small_world, robot, scenario=scenario(faults=faults))
    sim.set_cmd_vel(1.0, 0.0)
    readings = list(sim.run(2.0))
    lidar = [r.stamp for r in readings if isinstance(r, LidarScan)]
    assert lidar and not any(0.5 <= t < 1.0 for t in lidar)
    assert not any(isinstance(r, RangeReading) for r in readings)
    kinds = [(e.kind, e.detail.split()[0]) for e in sim.ground_truth.events]
    assert ("fault_start", "SensorDropout") in kinds and ("fault_end", "SensorDropout") in kinds
    odom = [r for r in readings if isinstance(r, OdomReading)][-1]
    assert odom.pose[0] > 1.5 * sim.ground_truth.pose[0, 3]  # wheels spun on the slippery patch


def test_obstacles_appear_and_disappear_on_time(small_world, robot) -> None:
    obstacle = ObstacleSpec("barrier", Pose2D(3.0, 0.0, 0.0), (0.5, 2.0, 1.0), 1.0, 2.0)
    sim = Simulator(small_world, robot, scenario=scenario(obstacles=(obstacle,)))
    front: list[tuple[float, float]] = []
    for r in sim.run(3.0):
        if isinstance(r, RangeReading) and r.name == "ultrasonic_front_left":
            front.append((r.stamp, r.range))
    before = [d for t, d in front if t < 1.0]
    during = [d for t, d in front if 1.1 <= t < 2.0]
    after = [d for t, d in front if t >= 2.1]
    # The rangers look slightly down: without the barrier they see the ground ~3 m ahead.
    assert all(d > 2.5 for d in before + after)
    assert all(d == pytest.approx(3.0 - 0.25 - 0.9, abs=0.05) for d in during)
    kinds = [e.kind for e in sim.ground_truth.events]
    assert kinds == ["obstacle_appeared", "obstacle_removed"]


def test_obstacle_present_from_the_start_is_an_event_at_time_zero(small_world, robot) -> None:
    obstacle = ObstacleSpec("barrier", Pose2D(3.0, 0.0, 0.0), (0.5, 2.0, 1.0), 0.0, 1.0)
    sim = Simulator(small_world, robot, scenario=scenario(obstacles=(obstacle,)))
    assert [(e.time, e.kind) for e in sim.pop_events()] == [(0.0, "obstacle_appeared")]


def test_start_pose_from_station_or_stop_or_pose() -> None:
    world_path = assets.world_file("university")
    site = load_site(assets.site_file(world_path))
    assert start_pose(scenario(start="station"), site) == site.station.loading
    stop = site.stops[0]
    assert start_pose(scenario(start=stop.name), site) == stop.pose
    assert start_pose(scenario(start=Pose2D(1.0, 2.0, 3.0)), site) == Pose2D(1.0, 2.0, 3.0)
    with pytest.raises(ScenarioError, match="no stop 'nowhere'"):
        start_pose(scenario(start="nowhere"), site)


def test_crowd_runs_deterministically_on_the_university_world(robot) -> None:
    world_path = assets.world_file("university")
    world = load_world(world_path)
    site = load_site(assets.site_file(world_path))
    from xiaomanlv_sim.scene import Scene

    scene = Scene.from_world(world)
    spec = scenario(world="university", start="station", crowd=CrowdSpec(pedestrians=30))
    results = []
    for _ in range(2):
        sim = Simulator(world, robot, site, spec, scene=scene)
        sim.set_cmd_vel(0.8, 0.0)
        scans = [r for r in sim.run(1.0) if isinstance(r, LidarScan)]
        truth = sim.ground_truth
        assert len(truth.agents.ids) == 30
        results.append((truth.agents.positions, fingerprint(scans)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_non_finite_command_is_rejected(small_world, robot) -> None:
    sim = Simulator(small_world, robot, scenario=scenario())
    with pytest.raises(ValueError, match="not finite"):
        sim.set_cmd_vel(math.nan, 0.0)


@pytest.mark.parametrize("rates", [(50.0, 100.0, 5.0, 20.0, 10.0), (30.0, 70.0, 3.0, 17.0, 9.5)])
def test_timetable_says_what_the_schedules_say(rates) -> None:
    """Dividing rates come from the precomputed table, others from the schedules per tick."""
    odom, imu, gnss, ranger, lidar = rates

    def schedules() -> tuple:
        return (
            _Schedule(odom, 200.0),
            _Schedule(imu, 200.0),
            _Schedule(gnss, 200.0),
            [_Schedule(ranger, 200.0), _Schedule(ranger, 200.0)],
            _Schedule(lidar, 200.0),
        )

    table = _Timetable(*schedules())
    assert (table.table is not None) == (rates[0] == 50.0)
    o, i, g, rs, li = schedules()
    for tick in range(1, 2001):
        due = table.due(tick)
        expected = (o.due(tick), i.due(tick), g.due(tick), [r.due(tick) for r in rs], li.due(tick))
        got = (
            (False, False, False, [False, False], False)
            if due is None
            else (due.odom, due.imu, due.gnss, [k in due.rangers for k in range(2)], due.lidar)
        )
        assert got == expected, tick


def test_agent_contact_kernel_matches_the_box_distance() -> None:
    rng = np.random.default_rng(2)
    positions = rng.uniform(-3.0, 3.0, (500, 2))
    radii = rng.uniform(0.2, 0.4, 500)
    x, y, yaw, box_x, hl, hw = 0.3, -0.2, 0.7, 0.1, 0.9, 0.5
    c, s = math.cos(yaw), math.sin(yaw)
    d = positions - [x, y]
    local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)
    local -= [box_x, 0.0]
    gap = np.linalg.norm(np.maximum(np.abs(local) - [hl, hw], 0.0), axis=1) - radii
    out = np.zeros(500, dtype=np.int64)
    n = _touching_agents(positions, radii, np.array([x, y, c, s, box_x, 0.0, hl, hw]), out)
    assert 0 < n < 500
    np.testing.assert_array_equal(out[:n], np.flatnonzero(gap < 0.0))


def test_static_contacts_skipped_only_while_provably_clear(robot) -> None:
    """The clearance shortcut raises exactly the collisions checking every time raises."""
    world_path = assets.world_file("university")
    world = load_world(world_path)
    site = load_site(assets.site_file(world_path))
    from xiaomanlv_sim.scene import Scene

    scene = Scene.from_world(world)
    config = SimulatorConfig(lidar=False, ultrasonic=False)
    crowd = CrowdSpec(pedestrians=1)
    results = []
    for shortcut in (True, False):
        events, checks = [], 0
        for heading in (3.6, 4.4, 5.3):  # towards walls, kerbs and a building
            sim = Simulator(
                world, robot, site, None, scene=scene, config=config, crowd=crowd,
                start=Pose2D(150.0, -158.0, heading),
            )  # fmt: skip
            assert sim.footprints is not None
            check = sim.footprints.distance

            def counted(points: np.ndarray, check=check) -> np.ndarray:
                nonlocal checks
                checks += 1
                return check(points)

            sim.footprints.distance = counted
            sim.set_cmd_vel(1.5, 0.0)
            for _ in range(200 * 7):
                if not shortcut:
                    sim._clearance = -math.inf
                sim.step()
            events += [(e.time, e.kind, e.detail) for e in sim.ground_truth.events]
        results.append((events, checks))
    assert results[0][0] == results[1][0]
    assert ("collision", "static obstacle") in [(k, d) for _, k, d in results[0][0]]
    assert results[0][1] < results[1][1] / 2  # the shortcut saves most checks


def test_integrated_gyro_follows_the_true_heading_into_and_out_of_a_turn(
    small_world, robot
) -> None:
    """The gyro reports the body's yaw rate of the tick it reads: summed at its own rate it
    gives the heading change, 0.1 s into a turn as at its end (it used to trail the heading
    by the 50 ms tyre lag times the yaw rate: 0.0033 rad summed against 0.0079 true)."""
    sim = Simulator(small_world, robot, scenario=scenario(start=Pose2D(-10.0, 0.0, 0.0)))
    sim.set_cmd_vel(1.0, 0.0)
    list(sim.run(1.0))
    yaw0 = sim.state.yaw
    sim.set_cmd_vel(1.0, 0.6)
    gyro = 0.0
    for k in range(1, 301):  # 3 s: into the turn, then straight again
        if k == 200:
            sim.set_cmd_vel(1.0, 0.0)
        for r in sim.step():
            if isinstance(r, ImuReading):
                gyro += r.angular_velocity[2] / robot.imu.rate
        true = (sim.state.yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
        if k in (20, 60):
            assert gyro == pytest.approx(true, rel=0.15, abs=2e-4), k
    assert true > 0.5
    assert gyro == pytest.approx(true, abs=3e-3)  # sampling at 100 Hz, noise, slip lag


def test_an_agent_under_the_robot_is_one_collision_event(robot) -> None:
    world_path = assets.world_file("university")
    world = load_world(world_path)
    site = load_site(assets.site_file(world_path))
    from xiaomanlv_sim.scene import Scene

    scene = Scene.from_world(world)
    config = SimulatorConfig(lidar=False, ultrasonic=False)
    crowd = CrowdSpec(pedestrians=6, cyclists=2)
    first = Simulator(world, robot, site, None, scene=scene, seed=5, config=config, crowd=crowd)
    agents = first.ground_truth.agents
    x, y = agents.positions[3]
    # The same seed spawns the same crowd; this time the robot starts on agent 3.
    sim = Simulator(
        world, robot, site, None, scene=scene, seed=5, config=config, crowd=crowd,
        start=Pose2D(float(x), float(y), 0.0),
    )  # fmt: skip
    np.testing.assert_array_equal(sim.ground_truth.agents.positions, agents.positions)
    list(sim.run(0.2))
    kind = "cyclist" if agents.kinds[3] == 1 else "pedestrian"
    collisions = [e.detail for e in sim.pop_events() if e.kind == "collision"]
    assert f"{kind} {int(agents.ids[3])}" in collisions
    assert len(collisions) == len(set(collisions))  # once per contact, not per step


def test_teleport_moves_the_body_but_not_the_odometry(small_world, robot) -> None:
    """The kidnapped robot: carried 20 m and turned, it keeps driving from there; the wheel
    odometry saw no motion in the carry."""
    sim = Simulator(small_world, robot, scenario=scenario(start=Pose2D(-5.0, -5.0, 0.0)))
    sim.set_cmd_vel(1.0, 0.0)
    before = [r for r in sim.run(2.0) if isinstance(r, OdomReading)][-1]
    sim.teleport(Pose2D(-5.0, 15.0, math.pi / 2))
    truth = sim.ground_truth
    assert truth.pose[:2, 3] == pytest.approx([-5.0, 15.0])
    assert math.atan2(truth.pose[1, 0], truth.pose[0, 0]) == pytest.approx(math.pi / 2)
    assert truth.twist[0] == 0.0  # set down at rest
    assert truth.events[-1].kind == "teleported"
    readings = list(sim.run(1.0))
    after = [r for r in readings if isinstance(r, OdomReading)]
    # The odometry moved on by what the wheels turned (< 1 m/s for 1 s), not by the carry.
    assert np.hypot(*(after[-1].pose[:2] - before.pose[:2])) < 1.05
    assert sim.ground_truth.pose[1, 3] > 15.3  # drove on, north, from the new pose
    assert not sim.ground_truth.tipped
    with pytest.raises(ValueError, match="not finite"):
        sim.teleport(Pose2D(math.nan, 0.0, 0.0))


def test_sweep_pose_kernel_interpolates_the_track_as_geometry_composes_poses() -> None:
    """The compiled sector poses equal ``geometry.pose_matrix`` of the track interpolated
    between ticks (yaw the short way across +-pi), times the mount; times before the track are
    clamped to its oldest tick and after it to the newest."""
    rng = np.random.default_rng(4)
    n, tick = 23, 140
    track = np.zeros((n, 6))
    rows = {}
    for t in range(tick - n + 1, tick + 1):
        row = (*rng.uniform(-5, 5, 3), *rng.uniform(-0.2, 0.2, 2), 3.1 + 0.01 * (t - tick + 10))
        rows[t] = np.array(row)
        track[t % n] = row
    rows[tick - 3][5] = -3.1  # across the seam: yaw from -3.1 to the next tick's +pi side
    track[(tick - 3) % n] = rows[tick - 3]
    mount = pose_matrix(0.3, -0.1, 1.2, 0.0, 0.05, 0.1)
    at = np.array([tick - 21.0, tick - 12.25, tick - 3.5, tick - 0.5, tick + 2.0, tick - 40.0])
    out = np.empty((len(at), 4, 4))
    _interpolated_poses(track, tick, at, mount, out)
    for s, when in enumerate(at):
        lo = int(min(max(math.floor(when), tick - n + 2), tick - 1))
        frac = min(max(when - lo, 0.0), 1.0)
        a, b = rows[lo], rows[lo + 1]
        step = b - a
        step[3:] = (step[3:] + math.pi) % (2 * math.pi) - math.pi
        expected = pose_matrix(*(a + frac * step)) @ mount
        np.testing.assert_allclose(out[s], expected, atol=1e-12)
    # The seam: half way from -3.1 to 3.1 + 0.01 * 8 goes through pi, not through 0.
    body = out[2] @ np.linalg.inv(mount)
    assert abs(abs(math.atan2(body[1, 0], body[0, 0])) - math.pi) < 0.1
