"""GNSS: noise and its DOP-scaled covariance, multipath, outage, jump fault (the WGS84
conversion is tested in core)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import chi2

from xiaomanlv_core.geodesy import Datum, geodetic_to_enu
from xiaomanlv_sim.sensors.gnss import STATUS_FIX, STATUS_NO_FIX, Gnss, dop_scale
from xiaomanlv_sim.world import Box, Shape, World

ORIGIN = Datum(31.0252, 121.4365, 10.0, 0.0)


@dataclass(frozen=True)
class GnssSpecLike:
    name: str = "gnss"
    rate: float = 5.0
    pose: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    horizontal_stddev: float = 0.0
    vertical_stddev: float = 0.0
    velocity_stddev: float = 0.0
    multipath_height: float = 12.0
    multipath_distance: float = 25.0
    multipath_jump_stddev: float = 3.0
    outage_sky_fraction: float = 0.5


class OpenSky:
    def __init__(self, blocked: float = 0.1) -> None:
        self.blocked = blocked

    def sky_blocked_fraction(self, xyz: NDArray[np.float64], min_elevation: float = 0.26) -> float:
        return self.blocked


def world(*shapes: Shape) -> World:
    return World("test", Path("test.sdf"), tuple(shapes), ORIGIN)


def building(x: float, y: float, height: float, name: str = "tower") -> Shape:
    pose = np.eye(4)
    pose[:3, 3] = (x, y, height / 2)
    return Shape(f"{name}::walls", Box((20.0, 20.0, height)), pose, name, "building")


def pose_at(x: float, y: float) -> NDArray[np.float64]:
    p = np.eye(4)
    p[:2, 3] = (x, y)
    return p


@pytest.mark.parametrize("blocked", [0.0, 0.36])
def test_noise_has_the_declared_stddev_scaled_by_the_blocked_sky(blocked: float) -> None:
    spec = GnssSpecLike(horizontal_stddev=0.5, vertical_stddev=1.0, velocity_stddev=0.1)
    gnss = Gnss(spec, world(), np.random.default_rng(0))
    sky = OpenSky(blocked)
    fixes = [gnss.read(pose_at(50.0, 20.0), np.zeros(3), k * 0.2, sky) for k in range(3000)]
    enu = geodetic_to_enu(ORIGIN, [(f.latitude, f.longitude, f.altitude) for f in fixes])
    scale = 1.0 / math.sqrt(1.0 - blocked)  # 1.25 with 36 % of the sky hidden
    np.testing.assert_allclose(enu.mean(axis=0), [50.0, 20.0, 0.0], atol=0.05 * scale)
    np.testing.assert_allclose(enu.std(axis=0), np.array([0.5, 0.5, 1.0]) * scale, rtol=0.05)
    velocity = np.array([f.velocity_enu for f in fixes])
    np.testing.assert_allclose(velocity.std(axis=0), 0.1 * scale, rtol=0.05)
    assert fixes[0].status == STATUS_FIX
    np.testing.assert_allclose(
        fixes[0].position_covariance[[0, 4, 8]], np.array([0.25, 0.25, 1.0]) * scale**2
    )
    np.testing.assert_allclose(fixes[0].velocity_covariance[[0, 4, 8]], 0.01 * scale**2)
    assert gnss.dop_scale == pytest.approx(scale)


def test_dop_scale_is_one_over_the_root_of_the_visible_sky() -> None:
    assert dop_scale(0.0) == 1.0
    assert dop_scale(0.75) == pytest.approx(2.0)
    assert dop_scale(-0.1) == 1.0 and dop_scale(1.0) == math.inf


def test_reported_covariance_near_tall_buildings_exceeds_the_open_field_one() -> None:
    from xiaomanlv_sim.scene import Scene

    tall = world(building(0.0, 0.0, 30.0))
    scene = Scene.from_world(tall)
    gnss = Gnss(GnssSpecLike(horizontal_stddev=1.0, vertical_stddev=2.0), tall, rng(0))
    near = gnss.read(pose_at(0.0, 15.0), np.zeros(3), 0.0, scene)  # 5 m from the wall
    field_fix = gnss.read(pose_at(0.0, 150.0), np.zeros(3), 0.2, scene)
    assert near.status == field_fix.status == STATUS_FIX
    np.testing.assert_allclose(field_fix.position_covariance[[0, 4, 8]], [1.0, 1.0, 4.0])
    assert near.position_covariance[0] > 1.4 * field_fix.position_covariance[0]
    assert near.position_covariance[8] > 1.4 * field_fix.position_covariance[8]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_fixes_outside_multipath_are_consistent_with_their_covariance() -> None:
    """NEES of the fixes (error^T cov^-1 error, 3 dof) over a drive past a tall building: within
    the chi-square 95 % bounds where no multipath offset is active, far beyond them where one
    is (the receiver does not report multipath)."""
    from xiaomanlv_sim.scene import Scene

    tall = world(building(0.0, 0.0, 30.0))
    scene = Scene.from_world(tall)
    spec = GnssSpecLike(horizontal_stddev=1.0, vertical_stddev=2.0, multipath_jump_stddev=3.0)
    gnss = Gnss(spec, tall, rng(3))
    clean, reflected, scales = [], [], []
    for k in range(2000):  # 400 s at 5 Hz, 1 m/s along y = 14 (4 m from the wall) and back
        x = -100.0 + abs(((k * 0.2) % 400.0) - 200.0)
        fix = gnss.read(pose_at(x, 14.0), np.zeros(3), k * 0.2, scene)
        assert fix.status == STATUS_FIX
        err = geodetic_to_enu(ORIGIN, (fix.latitude, fix.longitude, fix.altitude)) - (x, 14.0, 0)
        nees = float(err @ np.linalg.solve(fix.position_covariance.reshape(3, 3), err))
        (reflected if np.any(gnss.multipath_offset != 0.0) else clean).append(nees)
        scales.append(gnss.dop_scale)
    assert max(scales) > 1.2 and min(scales) == pytest.approx(1.0, abs=0.02)
    n = len(clean)
    assert n > 1000 and len(reflected) > 100
    lo, hi = chi2.ppf([0.025, 0.975], 3 * n)
    assert lo <= sum(clean) <= hi
    assert np.mean(np.array(clean) > chi2.ppf(0.95, 3)) < 0.07
    # Multipath goes unreported: the same bound, far exceeded (mean NEES 7.4 against 3).
    assert sum(reflected) > 2.0 * chi2.ppf(0.975, 3 * len(reflected))


def test_no_fix_where_too_much_sky_is_blocked() -> None:
    gnss = Gnss(GnssSpecLike(), world(), np.random.default_rng(0))
    fix = gnss.read(pose_at(0.0, 0.0), np.zeros(3), 1.0, OpenSky(blocked=0.7))
    assert fix.status == STATUS_NO_FIX
    assert math.isnan(fix.latitude) and math.isnan(fix.longitude)
    ok = gnss.read(pose_at(0.0, 0.0), np.zeros(3), 1.2, OpenSky(blocked=0.4))
    assert ok.status == STATUS_FIX


def test_multipath_near_a_tall_building_jumps_and_holds_for_seconds() -> None:
    tall = world(building(0.0, 0.0, 30.0))
    gnss = Gnss(GnssSpecLike(), tall, np.random.default_rng(5))
    assert gnss.wall_distance(np.array([15.0, 0.0])) == pytest.approx(5.0)
    offsets = []
    for k in range(300):  # 60 s at 5 Hz, 5 m from the wall
        gnss.read(pose_at(15.0, 0.0), np.zeros(3), k * 0.2, OpenSky())
        offsets.append(gnss.multipath_offset.copy())
    offsets = np.array(offsets)
    changes = np.count_nonzero(np.any(np.diff(offsets, axis=0) != 0.0, axis=1))
    assert 5 <= changes <= 60  # redrawn every few seconds, not every fix
    scale = 3.0 * (1 - 5.0 / 25.0)
    assert np.abs(offsets).max() > 0.5 * scale
    far = Gnss(GnssSpecLike(), tall, np.random.default_rng(5))
    far.read(pose_at(60.0, 0.0), np.zeros(3), 0.0, OpenSky())
    assert np.all(far.multipath_offset == 0.0)


def test_low_buildings_cause_no_multipath() -> None:
    low = world(building(0.0, 0.0, 6.0))
    gnss = Gnss(GnssSpecLike(), low, np.random.default_rng(5))
    assert gnss.tall is None
    gnss.read(pose_at(12.0, 0.0), np.zeros(3), 0.0, OpenSky())
    assert np.all(gnss.multipath_offset == 0.0)


def test_jump_fault_moves_the_fix_by_its_offset() -> None:
    gnss = Gnss(GnssSpecLike(), world(), np.random.default_rng(0))
    fix = gnss.read(pose_at(5.0, 5.0), np.zeros(3), 0.0, OpenSky(), jump=(10.0, -4.0))
    np.testing.assert_allclose(
        geodetic_to_enu(ORIGIN, (fix.latitude, fix.longitude, fix.altitude)),
        [15.0, 1.0, 0.0],
        atol=1e-6,
    )


def test_antenna_lever_arm_and_velocity() -> None:
    spec = GnssSpecLike(
        pose=np.array([[1, 0, 0, 0.2], [0, 1, 0, 0], [0, 0, 1, 1.5], [0, 0, 0, 1.0]])
    )
    gnss = Gnss(spec, world(), np.random.default_rng(0))
    base = pose_at(1.0, 2.0)
    base[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # facing north
    np.testing.assert_allclose(gnss.antenna_position(base), [1.0, 2.2, 1.5])
    fix = gnss.read(base, np.array([0.0, 1.0, 0.0]), 0.0, OpenSky())
    np.testing.assert_allclose(fix.velocity_enu, [0.0, 1.0, 0.0])


def test_world_without_georeference_is_rejected() -> None:
    bare = World("bare", Path("bare.sdf"), (), None)
    with pytest.raises(ValueError, match=r"bare.*spherical_coordinates"):
        Gnss(GnssSpecLike(), bare, np.random.default_rng(0))


def test_no_fix_in_a_street_canyon_of_the_real_scene() -> None:
    from xiaomanlv_sim.scene import Scene

    canyon = world(building(-12.0, 0.0, 40.0, "west"), building(12.0, 0.0, 40.0, "east"))
    scene = Scene.from_world(canyon)
    gnss = Gnss(GnssSpecLike(), canyon, np.random.default_rng(0))
    between = gnss.read(pose_at(0.0, 0.0), np.zeros(3), 0.0, scene)  # 4 m wide street
    assert between.status == STATUS_NO_FIX
    open_sky = gnss.read(pose_at(0.0, 80.0), np.zeros(3), 0.2, scene)
    assert open_sky.status == STATUS_FIX


def test_wall_distance_is_asked_again_only_near_the_multipath_zone() -> None:
    """Skipping the distance while provably beyond reach changes no fix."""
    tall = world(building(0.0, 0.0, 30.0))
    spec = GnssSpecLike(horizontal_stddev=0.3)
    cached, exact = (Gnss(spec, tall, np.random.default_rng(5)) for _ in range(2))
    asked = 0
    wall_distance = cached.wall_distance

    def counted(xy: NDArray[np.float64]) -> float:
        nonlocal asked
        asked += 1
        return wall_distance(xy)

    cached.wall_distance = counted
    for k in range(600):  # 120 s at 5 Hz: from 90 m out to 12 m from the wall and back
        x = 22.0 + 78.0 * abs(math.cos(k * math.pi / 600.0))
        exact._wall_d = -math.inf  # always ask
        fixes = [g.read(pose_at(x, 3.0), np.zeros(3), k * 0.2, OpenSky()) for g in (cached, exact)]
        assert (fixes[0].latitude, fixes[0].longitude) == (fixes[1].latitude, fixes[1].longitude)
        np.testing.assert_array_equal(cached.multipath_offset, exact.multipath_offset)
    assert 0 < asked < 400


def test_a_turned_world_reports_fixes_in_enu() -> None:
    turned = Datum(-33.9, 18.4, 50.0, heading_deg=90.0)  # world x points north
    bare = World("turned", Path("turned.sdf"), (), turned)
    gnss = Gnss(GnssSpecLike(), bare, np.random.default_rng(0))
    fix = gnss.read(pose_at(10.0, 0.0), np.array([1.0, 0.0, 0.0]), 0.0, OpenSky())
    np.testing.assert_allclose(
        geodetic_to_enu(turned, (fix.latitude, fix.longitude, fix.altitude)),
        [0.0, 10.0, 0.0],
        atol=1e-6,
    )
    np.testing.assert_allclose(fix.velocity_enu, [0.0, 1.0, 0.0], atol=1e-12)
