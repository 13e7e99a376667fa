"""Differential-drive dynamics: DiffDrive's limits, ground contact, kerbs, tip-over, slip."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from drive_rig import Body, Drive
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_sim.dynamics import BodyState, DiffDriveDynamics, _grid_height, _height_grid_of
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.world import Box, Shape, World


class Terrain:
    """Ground height from a function of (x, y): a hand-built stand-in for Scene.ground_height."""

    def __init__(self, height: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray]):
        self.height = height

    def ground_height(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.height(xy[:, 0], xy[:, 1]), float)


FLAT = Terrain(lambda x, y: np.zeros_like(x))


def make(terrain: Terrain = FLAT, drive: Drive | None = None, start=(0.0, 0.0, 0.0), seed=0):
    return DiffDriveDynamics(
        drive or Drive(), Body(), terrain, np.random.default_rng(seed), rate=200.0, start=start
    )


def run(dyn: DiffDriveDynamics, seconds: float, **kw) -> list:
    events = []
    for _ in range(round(seconds / dyn.dt)):
        events += dyn.step(**kw)
    return events


def test_linear_acceleration_and_velocity_limits_are_respected() -> None:
    dyn = make()
    dyn.set_command(5.0, 0.0)
    speeds = []
    for _ in range(600):
        dyn.step()
        speeds.append(dyn.v_cmd)
    steps = np.diff([0.0, *speeds]) / dyn.dt
    assert steps.max() <= 1.0 + 1e-9  # max_linear_acceleration
    assert speeds[99] == pytest.approx(0.5)  # after 0.5 s at 1 m/s^2
    assert max(speeds) == pytest.approx(1.5)  # max_velocity
    dyn.set_command(0.0, 0.0)
    braking = []
    for _ in range(200):
        dyn.step()
        braking.append(dyn.v_cmd)
    assert np.diff([1.5, *braking]).min() / dyn.dt >= -2.0 - 1e-9  # min_linear_acceleration
    assert braking[-1] == 0.0
    dyn.set_command(-3.0, 0.0)
    run(dyn, 3.0)
    assert dyn.v_cmd == pytest.approx(-0.5)  # min_velocity


def test_angular_limits_are_respected() -> None:
    dyn = make()
    dyn.set_command(0.0, 3.0)
    rates = []
    for _ in range(400):
        dyn.step()
        rates.append(dyn.w_cmd)
    assert np.diff([0.0, *rates]).max() / dyn.dt <= 2.0 + 1e-9
    assert max(rates) == pytest.approx(1.0)


def test_pose_follows_commands_on_flat_ground() -> None:
    dyn = make()
    dyn.set_command(1.0, 0.0)
    run(dyn, 3.0)
    # 0.5 m while accelerating for 1 s, then 2 s at 1 m/s.
    assert dyn.state.x == pytest.approx(2.5, abs=0.01)
    assert dyn.state.y == pytest.approx(0.0, abs=1e-9)
    dyn.set_command(1.0, 0.5)
    run(dyn, 2 * math.pi / 0.5)  # a full circle of radius 2 m
    assert dyn.state.x == pytest.approx(2.5, abs=0.05)
    assert dyn.state.z == 0.0 and dyn.state.roll == 0.0 and dyn.state.pitch == 0.0
    assert not dyn.state.tipped


def test_ramp_pitches_the_robot_nose_up_and_lifts_it() -> None:
    slope = math.radians(6.0)
    ramp = Terrain(lambda x, y: np.clip(x - 2.0, 0.0, None) * math.tan(slope))
    dyn = make(ramp)
    dyn.set_command(0.8, 0.0)
    events = run(dyn, 6.0)
    assert events == []
    # REP 103: nose up is negative pitch.
    assert dyn.state.pitch == pytest.approx(-slope, abs=0.005)
    assert dyn.state.z == pytest.approx((dyn.state.x - 2.0) * math.tan(slope), abs=0.02)
    assert dyn.state.roll == pytest.approx(0.0, abs=1e-9)


def test_kerb_under_one_wheel_rolls_the_robot() -> None:
    kerb = Terrain(lambda x, y: np.where((y > 0.2) & (x > 1.0), 0.1, 0.0))
    dyn = make(kerb)
    dyn.set_command(0.4, 0.0)
    run(dyn, 6.0)
    # left wheel (y = +0.3) on the 0.1 m kerb, right wheel on the road: left side up.
    assert dyn.state.roll == pytest.approx(math.atan2(0.1, 0.6), abs=0.005)
    assert dyn.state.z == pytest.approx(0.05, abs=0.005)
    assert not dyn.state.tipped


def test_step_higher_than_max_step_blocks_the_robot() -> None:
    wall = Terrain(lambda x, y: np.where(x > 2.0, 0.2, 0.0))
    dyn = make(wall)
    dyn.set_command(1.0, 0.0)
    events = run(dyn, 5.0)
    assert [e.kind for e in events] == ["blocked"]
    assert "front caster" in events[0].detail
    front = dyn.contact_points(dyn.state.x, dyn.state.y, dyn.state.yaw)[2, 0]
    assert front <= 2.0 + dyn.ground_resolution  # never climbed (to within the resolution)
    assert dyn.state.blocked and not dyn.state.tipped
    dyn.set_command(-0.3, 0.0)  # backing away is allowed
    run(dyn, 1.0)
    assert not dyn.state.blocked


def test_kerb_within_max_step_is_climbed() -> None:
    kerb = Terrain(lambda x, y: np.where(x > 2.0, 0.1, 0.0))
    dyn = make(kerb)
    dyn.set_command(0.5, 0.0)
    events = run(dyn, 10.0)
    assert events == []
    assert dyn.state.x > 3.0
    assert dyn.state.z == pytest.approx(0.1, abs=0.002)


def test_steep_ramp_tips_the_robot_over_and_it_stops() -> None:
    slope = math.radians(25.0)
    ramp = Terrain(lambda x, y: np.clip(x - 1.0, 0.0, None) * math.tan(slope))
    dyn = make(ramp)
    dyn.set_command(0.5, 0.0)
    events = run(dyn, 8.0)
    assert [e.kind for e in events] == ["tipped"]
    assert "pitch" in events[0].detail
    x = dyn.state.x
    run(dyn, 1.0)
    assert dyn.state.tipped and dyn.state.x == x and dyn.v_cmd == 0.0


def test_driving_off_a_high_kerb_at_speed_tips_but_slowly_does_not() -> None:
    ledge = Terrain(lambda x, y: np.where(x < 2.0, 0.15, 0.0))
    fast = make(ledge)
    fast.set_command(1.2, 0.0)
    events = run(fast, 4.0)
    assert [e.kind for e in events] == ["tipped"]
    assert "dropped 0.150 m" in events[0].detail
    slow = make(ledge)
    slow.set_command(0.3, 0.0)
    assert run(slow, 10.0) == []
    assert slow.state.x > 2.6 and not slow.state.tipped  # rear caster is off the ledge


def test_normal_driving_never_tips() -> None:
    bumpy = Terrain(lambda x, y: 0.02 * np.sin(x) * np.cos(0.7 * y))
    dyn = make(bumpy, drive=Drive(slip_stddev=0.02))
    for k in range(20):
        dyn.set_command(1.5, 1.0 if k % 2 else -1.0)
        assert run(dyn, 1.0) == []
    assert not dyn.state.tipped


def test_slip_patch_under_one_wheel_turns_the_robot_but_not_the_encoders() -> None:
    dyn = make()
    dyn.set_command(1.0, 0.0)

    def left_on_ice(wheels: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(wheels[:, 1] > 0.0, 0.5, 0.0)  # left wheel at +y

    run(dyn, 3.0, slip_of=left_on_ice)
    assert dyn.state.left_travel == pytest.approx(dyn.state.right_travel)  # encoders
    assert dyn.state.yaw > 0.5  # the right wheel pushes harder: it turns left


def test_white_slip_makes_ground_travel_differ_from_encoders() -> None:
    dyn = make(drive=Drive(slip_stddev=0.05), seed=3)
    dyn.set_command(1.0, 0.0)
    run(dyn, 10.0)
    assert dyn.state.left_travel == pytest.approx(dyn.state.right_travel)
    assert abs(dyn.state.y) > 1e-3  # heading wandered


def test_body_pose_is_rz_ry_rx_of_its_angles() -> None:
    from scipy.spatial.transform import Rotation

    state = BodyState(x=1.0, y=2.0, z=0.3, roll=0.1, pitch=-0.2, yaw=0.7)
    expected = Rotation.from_euler("ZYX", [0.7, -0.2, 0.1]).as_matrix()
    np.testing.assert_allclose(state.rotation(), expected, atol=1e-12)
    np.testing.assert_allclose(state.world_from_base()[:3, :3], expected, atol=1e-12)
    np.testing.assert_allclose(state.world_from_base()[:3, 3], [1.0, 2.0, 0.3])


def test_start_on_a_kerb_takes_its_height() -> None:
    kerb = Terrain(lambda x, y: np.full_like(x, 0.1))
    dyn = make(kerb, start=(5.0, 3.0, 1.0))
    assert dyn.state.z == pytest.approx(0.1)
    assert (dyn.state.x, dyn.state.y, dyn.state.yaw) == (5.0, 3.0, 1.0)


# ---- the compiled tick on a Scene's height grid ---------------------------------------------
def _yard_scene() -> Scene:
    """Ground, a yawed 0.1 m kerb, a 1:8 ramp and a 0.3 m step: every kind of height change."""

    def shape(name: str, size: tuple[float, float, float], xyz, rpy, category: str) -> Shape:
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
        pose[:3, 3] = xyz
        return Shape(name, Box(size), pose, name, category)

    slope = math.atan(1 / 8)
    shapes = (
        shape("ground", (60.0, 60.0, 0.1), (0.0, 0.0, -0.05), (0, 0, 0), "ground"),
        shape("kerb", (12.0, 3.0, 0.1), (4.0, 4.0, 0.05), (0, 0, 0.4), "kerb"),
        shape("ramp", (6.0, 3.0, 0.2), (6.0, -5.0, 0.2), (0, -slope, 0), "ramp"),
        shape("step", (3.0, 3.0, 0.3), (-6.0, 0.0, 0.15), (0, 0, 0), "kerb"),
    )
    return Scene.from_world(World("yard", Path("yard.sdf"), shapes, None))


class _OnlyGroundHeight:
    """A Scene seen only through ``ground_height`` (the dynamics' generic path)."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def ground_height(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.scene.ground_height(xy)


def test_kernel_height_lookup_matches_scene_ground_height() -> None:
    scene = _yard_scene()
    grid = _height_grid_of(scene)
    assert grid is not None, "Scene's height grid layout changed: update _height_grid_of"
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.uniform(-40.0, 40.0, (4000, 2)), rng.uniform(-1e4, 1e4, (50, 2))])
    got = [_grid_height(float(x), float(y), *grid) for x, y in xy]
    np.testing.assert_array_equal(got, scene.ground_height(xy))
    assert _height_grid_of(FLAT) is None


@pytest.mark.parametrize(
    ("start", "commands"),
    [
        ((-10.0, 0.5, 0.0), [(1.0, 0.0, 4.0), (-0.5, 0.3, 2.0), (1.0, -0.2, 3.0)]),  # step
        ((0.0, -5.2, 0.0), [(1.0, 0.0, 9.0), (1.0, 0.8, 3.0)]),  # up the ramp, off its end
        ((4.0, 0.0, 2.0), [(0.8, 0.1, 6.0), (-0.5, -0.5, 3.0)]),  # across the yawed kerb
    ],
)
def test_grid_kernel_drives_exactly_as_asking_the_scene(start, commands) -> None:
    scene = _yard_scene()
    drive = Drive(slip_stddev=0.02)
    fast = DiffDriveDynamics(drive, Body(), scene, np.random.default_rng(4), start=start)
    slow = DiffDriveDynamics(
        drive, Body(), _OnlyGroundHeight(scene), np.random.default_rng(4), start=start
    )
    assert fast._grid is not None and slow._grid is None
    events: list[list] = [[], []]
    tilt = 0.0
    for v, w, seconds in commands:
        fast.set_command(v, w)
        slow.set_command(v, w)
        for _ in range(round(seconds / fast.dt)):
            events[0] += fast.step()
            events[1] += slow.step()
            assert vars(fast.state) == vars(slow.state)
            tilt = max(tilt, abs(fast.state.roll) + abs(fast.state.pitch))
    assert [(e.kind, e.detail) for e in events[0]] == [(e.kind, e.detail) for e in events[1]]
    assert events[0] or tilt > 0.1  # the ground mattered: a block, a tip or a tilt


def test_encoder_log_gives_each_tick_and_refuses_to_overflow() -> None:
    dyn = DiffDriveDynamics(
        Drive(), Body(), FLAT, np.random.default_rng(0), rate=200.0, encoder_log=5
    )
    dyn.set_command(1.0, 0.5)
    rows = []
    for _ in range(4):
        dyn.step()
        rows.append((dyn.state.left_travel, dyn.state.right_travel, dyn.time))
    log = dyn.drain_encoders()
    np.testing.assert_array_equal(log[:, :2], np.array(rows)[:, :2])
    np.testing.assert_array_equal(log[:, 2], np.arange(1, 5) / 200.0)  # tick / rate
    assert len(dyn.drain_encoders()) == 0
    run(dyn, 6 / 200.0)
    with pytest.raises(ValueError, match="encoder log overflow: 6 ticks"):
        dyn.drain_encoders()


def test_body_yaw_rate_and_speed_integrate_to_the_motion_in_turns() -> None:
    """The rates the IMU sees are those of the pose: without slip their integrals are the
    distance and the heading exactly, 0.1 s into a turn as after it (a lag on the whole
    motion made the integrated yaw rate trail the heading by velocity_lag x yaw rate)."""
    dyn = make()
    dyn.set_command(1.0, 0.0)
    travelled = 0.0
    for _ in range(200):  # accelerating for 1 s
        dyn.step()
        travelled += dyn.state.speed * dyn.dt
    assert travelled == pytest.approx(dyn.state.x, rel=1e-9)
    yaw0 = dyn.state.yaw
    turned = 0.0
    dyn.set_command(1.0, 1.0)
    for tick in range(1, 401):
        dyn.step()
        turned += dyn.state.yaw_rate * dyn.dt
        if tick in (20, 400):  # 0.1 s in (0.0081 rad turned), and 2 s
            assert turned == pytest.approx(dyn.state.yaw - yaw0, rel=1e-9)


def test_with_slip_the_integrated_yaw_rate_stays_within_the_slip_lag() -> None:
    dyn = make(drive=Drive(slip_stddev=0.02), seed=2)
    yaw = turned = worst = 0.0
    for k in range(40):
        dyn.set_command(1.5, 1.0 if k % 3 else -1.0)
        for _ in range(100):
            before = dyn.state.yaw
            dyn.step()
            yaw += (dyn.state.yaw - before + math.pi) % (2 * math.pi) - math.pi
            turned += dyn.state.yaw_rate * dyn.dt
            worst = max(worst, abs(turned - yaw))
    assert worst < 0.006  # the lag on the slip's share only (on all of it: 0.05 rad)
