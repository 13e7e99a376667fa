"""The mapping estimate (xiaomanlv_mapping.slam) on drives of the lockstep simulator."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation
from sim_drive import SimDrive, simulate_drive

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.geodesy import geodetic_to_enu, geodetic_to_local, local_to_geodetic
from xiaomanlv_mapping.model import (
    GnssSeries,
    ImuSeries,
    MappingError,
    MappingResult,
    OdometrySeries,
    PoseSeries,
    Scan,
)
from xiaomanlv_mapping.slam import SlamConfig, _gnss_inflation, estimate

STRAIGHT_START = (150.0, -150.0, 0.0)  # on the walkway north of the station, facing east
# A 165 m loop on the block east of the station, ending 35 m into the segment it began on.
LOOP = [(150, -150), (195, -150), (195, -125), (152, -125), (152, -150), (185, -150)]


def _run(drive: SimDrive, start: tuple[float, float, float], **config: float) -> MappingResult:
    robot = drive.simulator.robot
    return estimate(
        drive,
        lidar_pose=robot.lidar.pose,
        gnss_antenna=robot.gnss.pose,
        imu_pose=robot.imu.pose,
        start=start,
        config=SlamConfig(**config),
    )


def _truth_at(drive: SimDrive, stamps: NDArray[np.float64]) -> NDArray[np.float64]:
    assert drive.truth is not None
    i = np.clip(np.searchsorted(drive.truth.stamps, stamps - 1e-6), 0, len(drive.truth.stamps) - 1)
    out: NDArray[np.float64] = drive.truth.poses[i]
    return out


def _errors(drive: SimDrive, series: PoseSeries) -> NDArray[np.float64]:
    truth = _truth_at(drive, series.stamps)
    out: NDArray[np.float64] = np.linalg.norm(series.poses[:, :3, 3] - truth[:, :3, 3], axis=1)
    return out


def _yaw(pose: NDArray[np.float64]) -> float:
    return math.atan2(float(pose[1, 0]), float(pose[0, 0]))


@pytest.fixture(scope="module")
def straight() -> tuple[SimDrive, MappingResult]:
    drive = simulate_drive(waypoints=[(150, -150), (200, -150)], start=STRAIGHT_START)
    return drive, _run(drive, STRAIGHT_START)


def _accelerometer_tilt(drive: SimDrive) -> float:
    """[rad] the largest tilt the simulated IMU's accelerometer bias (x or y) makes."""
    bias = drive.simulator.imu.accel_bias
    return float(np.abs(bias[:2]).max()) / 9.80665


def test_straight_drive_stays_within_a_few_cm_of_truth(
    straight: tuple[SimDrive, MappingResult],
) -> None:
    drive, result = straight
    err = _errors(drive, result.trajectory)
    assert len(result.trajectory.stamps) == drive.scan_count  # a pose for every sweep
    assert float(np.sqrt(np.mean(err**2))) < 0.06 + 50.0 * _accelerometer_tilt(drive)
    truth = _truth_at(drive, result.trajectory.stamps)
    poses = result.trajectory.poses
    # Horizontally within a few cm. In height, a drive that never turns cannot tell the
    # accelerometer's bias from a slope (the bias turns with the body, a slope does not): the
    # height may lean by that tilt over the distance driven, and no more.
    horizontal = np.linalg.norm(poses[:, :2, 3] - truth[:, :2, 3], axis=1)
    assert float(np.sqrt(np.mean(horizontal**2))) < 0.06
    assert float(horizontal.max()) < 0.12
    driven = np.linalg.norm(truth[:, :2, 3] - truth[0, :2, 3], axis=1)
    height = np.abs(poses[:, 2, 3] - truth[:, 2, 3])
    assert np.all(height < 0.03 + 1.2 * _accelerometer_tilt(drive) * driven)
    yaw_err = [_yaw(np.linalg.inv(t) @ p) for t, p in zip(truth, poses, strict=True)]
    assert max(abs(math.degrees(y)) for y in yaw_err) < 0.3
    assert result.stats["sweeps_registered"] >= result.stats["sweeps_used"] - 1
    assert result.stats["keyframes"] >= 30  # one every metre or so over 50 m


def test_start_anchors_the_first_pose(straight: tuple[SimDrive, MappingResult]) -> None:
    drive, result = straight
    first = result.keyframes[0]
    truth = _truth_at(drive, np.array([first.stamp]))[0]
    assert np.linalg.norm(first.pose[:3, 3] - truth[:3, 3]) < 0.01
    assert abs(math.degrees(_yaw(np.linalg.inv(truth) @ first.pose))) < 0.01
    # The start defines the map frame: another start moves the whole estimate rigidly. A
    # shift by whole voxels gives the same registrations; a turn changes how the sweeps fall
    # into the (map-aligned) voxels, so the estimate differs by its own noise.
    x, y, yaw = STRAIGHT_START
    for dx, dy, dyaw, tolerance in ((7.0, -14.0, 0.0, 0.005), (5.0, -3.0, 0.3, 0.25)):
        moved = _run(drive, (x + dx, y + dy, yaw + dyaw))
        shift = np.eye(4)
        c, s = math.cos(dyaw), math.sin(dyaw)
        shift[:2, :2] = [[c, -s], [s, c]]
        shift[:2, 3] = np.array([x + dx, y + dy]) - shift[:2, :2] @ np.array([x, y])
        expected = shift @ result.trajectory.poses
        assert np.abs(moved.trajectory.poses[:, :3, 3] - expected[:, :3, 3]).max() < tolerance
        assert moved.keyframes[0].pose[:2, 3] == pytest.approx(expected[0, :2, 3], abs=0.01)


def test_datum_matches_the_worlds_spherical_coordinates(
    straight: tuple[SimDrive, MappingResult],
) -> None:
    drive, result = straight
    world = drive.simulator.world.spherical_coordinates
    assert world is not None
    datum = result.datum
    origin_error = geodetic_to_enu(world, (datum.latitude, datum.longitude, datum.altitude))
    # 50 m of GNSS at 1 m noise fix the heading to a few tenths of a degree, which is most
    # of the origin's error 200 m away; where the robot drove, the fit is much closer.
    assert np.linalg.norm(origin_error[:2]) < 1.5
    assert abs(origin_error[2]) < 1.0
    assert abs(datum.heading_deg - world.heading_deg) < 0.5
    truth = _truth_at(drive, result.trajectory.stamps)[::20, :3, 3]
    lla = local_to_geodetic(world, truth)
    assert np.abs(geodetic_to_local(datum, lla)[:, :2] - truth[:, :2]).max() < 0.3
    assert result.stats["gnss_used"] >= 0.8 * result.stats["gnss_fixes"]


@pytest.fixture(scope="module")
def loop() -> SimDrive:
    return simulate_drive(waypoints=LOOP, start=STRAIGHT_START)


def test_loop_closure_reduces_end_drift(loop: SimDrive) -> None:
    drive = loop
    # A deliberately poor lidar odometry (few coarse points, a small local map) so the loop
    # has drift to close; the default odometry drifts only centimetres over 165 m.
    result = _run(drive, STRAIGHT_START, voxel=2.0, max_points=100, map_radius=30.0)
    odometry_end = float(_errors(drive, result.odometry_only)[-1])
    trajectory_end = float(_errors(drive, result.trajectory)[-1])
    assert odometry_end > 0.3
    assert trajectory_end < 0.5 * odometry_end
    assert result.loop_closures
    assert all(later - earlier > 50 for earlier, later in result.loop_closures)
    assert result.stats["loops_accepted"] == len(result.loop_closures)


# ---- the IMU as honest as a real one ----------------------------------------------------------
def _tilt_errors(drive: SimDrive, result: MappingResult) -> NDArray[np.float64]:
    """[rad] angle between the true and the estimated "up" of every keyframe."""
    poses = np.array([k.pose for k in result.keyframes])
    truth = _truth_at(drive, np.array([k.stamp for k in result.keyframes]))
    out: NDArray[np.float64] = np.linalg.norm(np.cross(truth[:, 2, :3], poses[:, 2, :3]), axis=1)
    return out


@pytest.fixture(scope="module")
def loop_estimate(loop: SimDrive) -> MappingResult:
    return _run(loop, STRAIGHT_START)


def test_the_imus_orientation_is_not_believed(loop: SimDrive, loop_estimate: MappingResult) -> None:
    # An attitude filter's roll and pitch lean with braking and cornering and with its biases;
    # the build takes gravity from the accelerometer instead, so an orientation 1 degree off
    # (or none at all) changes nothing.
    q = loop.imu.orientation
    leaning = Rotation.from_euler("xy", [1.0, -1.0], degrees=True)
    for orientation in ((Rotation.from_quat(q) * leaning).as_quat(), np.full_like(q, np.nan)):
        imu = dataclasses.replace(loop.imu, orientation=orientation)
        other = _run(dataclasses.replace(loop, imu=imu), STRAIGHT_START)
        assert np.allclose(other.trajectory.poses, loop_estimate.trajectory.poses, atol=1e-9)


def test_ground_stays_level_and_the_accelerometer_bias_is_found(
    loop: SimDrive, loop_estimate: MappingResult
) -> None:
    # On a drive that turns, the bias (a lean fixed in the body) is told from the ground's
    # slope; a further 0.05 m/s^2 (5 mrad, 0.3 deg) on x and y is found as well, and the
    # keyframes keep their tilt and height.
    extra = np.array([0.05, -0.05, 0.0])
    imu = dataclasses.replace(loop.imu, linear_acceleration=loop.imu.linear_acceleration + extra)
    biased = _run(dataclasses.replace(loop, imu=imu), STRAIGHT_START)
    true_bias = loop.simulator.imu.accel_bias[:2] / 9.80665
    for result, bias in ((loop_estimate, true_bias), (biased, true_bias + extra[:2] / 9.80665)):
        found = [result.stats["attitude_bias_x_rad"], result.stats["attitude_bias_y_rad"]]
        assert found == pytest.approx(bias, abs=1e-3)
        tilt = _tilt_errors(loop, result)
        assert float(np.sqrt(np.mean(tilt**2))) < 1e-3  # 0.06 deg
        poses = np.array([k.pose for k in result.keyframes])
        truth = _truth_at(loop, np.array([k.stamp for k in result.keyframes]))
        assert np.abs(poses[:, 2, 3] - truth[:, 2, 3]).max() < 0.05


# ---- inputs the estimate refuses --------------------------------------------------------------
_NO_IMU = ImuSeries(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)))


@dataclasses.dataclass(frozen=True)
class _Drive:
    """A hand-built DriveSource: a corridor of two walls, driven straight along x."""

    scan_list: tuple[Scan, ...]
    odometry: OdometrySeries
    gnss: GnssSeries
    imu: ImuSeries = dataclasses.field(default_factory=lambda: _NO_IMU)
    truth: PoseSeries | None = None
    path: Path = Path("hand-built")
    duration: float = 1.0

    @property
    def scan_count(self) -> int:
        return len(self.scan_list)

    def scans(self) -> Iterator[Scan]:
        return iter(self.scan_list)


def _hand_drive(n: int = 8) -> _Drive:
    """The robot drives 1 m per sweep along x (east) between two walls, towards a third."""
    t = np.arange(n) * 0.5
    x = np.arange(n) * 1.0
    walls = [[wx, side, z] for wx in np.arange(-10, 20, 0.25) for side in (-4.0, 4.0)
             for z in (0.5, 1.5, 2.5)]  # fmt: skip
    walls += [[20.0, wy, z] for wy in np.arange(-4, 4, 0.25) for z in (0.5, 1.5, 2.5)]
    world = np.array(walls)
    scans = tuple(
        Scan(
            float(s), (world - [xi, 0.0, 0.0]).astype(np.float32), np.zeros(len(world), np.float32)
        )
        for s, xi in zip(t, x, strict=True)
    )
    odo = OdometrySeries(t, np.stack([x, np.zeros(n), np.zeros(n)], 1), np.zeros((n, 2)))
    metre_of_longitude = 1.0 / (111320.0 * math.cos(math.radians(30.31)))  # [deg]
    lla = np.stack([np.full(n, 30.31), 120.35 + x * metre_of_longitude, np.full(n, 5.0)], 1)
    gnss = GnssSeries(t, lla, np.full((n, 3), 0.01))
    return _Drive(scans, odo, gnss)


def _estimate(drive: _Drive) -> MappingResult:
    return estimate(drive, lidar_pose=np.eye(4), gnss_antenna=np.zeros(3), start=(0.0, 0.0, 0.0))


def test_a_drive_without_sweeps_is_refused() -> None:
    drive = dataclasses.replace(_hand_drive(), scan_list=())
    with pytest.raises(MappingError, match=r"hand-built: no lidar sweeps \(/lidar/points\)"):
        _estimate(drive)


def test_a_drive_without_wheel_odometry_is_refused() -> None:
    drive = _hand_drive()
    empty = OdometrySeries(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 2)))
    with pytest.raises(MappingError, match=r"no wheel odometry \(/wheel/odom"):
        _estimate(dataclasses.replace(drive, odometry=empty))


def test_a_drive_without_gnss_is_refused() -> None:
    drive = _hand_drive()
    none = GnssSeries(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(MappingError, match=r"0 GNSS fixes \(/gnss/fix\)"):
        _estimate(dataclasses.replace(drive, gnss=none))


def test_unsorted_stamps_are_refused() -> None:
    drive = _hand_drive()
    t = drive.odometry.stamps.copy()
    t[[1, 2]] = t[[2, 1]]
    odo = dataclasses.replace(drive.odometry, stamps=t)
    with pytest.raises(
        MappingError, match=r"wheel odometry \(/wheel/odom\) stamps are not increasing"
    ):
        _estimate(dataclasses.replace(drive, odometry=odo))
    g = drive.gnss.stamps[::-1].copy()
    with pytest.raises(MappingError, match=r"GNSS \(/gnss/fix\) stamps are not increasing"):
        _estimate(dataclasses.replace(drive, gnss=dataclasses.replace(drive.gnss, stamps=g)))
    scans = list(drive.scan_list)
    scans[2], scans[3] = scans[3], scans[2]
    with pytest.raises(MappingError, match=r"lidar sweep 3 stamp 1.000 s is not after"):
        _estimate(dataclasses.replace(drive, scan_list=tuple(scans)))


def test_a_hand_built_drive_is_estimated() -> None:
    result = _estimate(_hand_drive())
    assert result.trajectory.poses.shape == (8, 4, 4)
    expected = np.stack([np.arange(8.0), np.zeros(8), np.zeros(8)], 1)
    assert np.abs(result.trajectory.positions() - expected).max() < 0.02
    assert result.keyframes[0].points.dtype == np.float32
    assert abs(result.datum.heading_deg) < 0.5  # x east, as the fixes say
    assert result.datum.latitude == pytest.approx(30.31, abs=1e-6)


def test_config_ranges_are_checked() -> None:
    with pytest.raises(ConfigError, match="voxel"):
        SlamConfig(voxel=-1.0)
    with pytest.raises(ConfigError, match="scan_stride"):
        SlamConfig(scan_stride=0)


def test_gnss_fixes_can_be_weighed_as_correlated() -> None:
    t = np.arange(0.0, 60.0, 0.2)  # 5 Hz
    gnss = GnssSeries(t, np.zeros((len(t), 3)), np.ones((len(t), 3)))
    assert _gnss_inflation(gnss, SlamConfig()) == 1.0  # default: independent fixes
    inflation = _gnss_inflation(gnss, SlamConfig(gnss_correlation_time=10.0))
    assert inflation == pytest.approx(math.sqrt(50.0), rel=1e-3)
    with pytest.raises(ConfigError, match="gnss_correlation_time"):
        SlamConfig(gnss_correlation_time=-1.0)
