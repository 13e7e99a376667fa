"""The fusion EKF on synthetic readings: gating, slip, late measurements, stale sources, bad input.

A robot drives straight along the map's x at 1 m/s on level ground (heading 30 deg): the IMU
reads gravity and no rotation, the wheels 1 m/s, the localiser and GNSS the truth (GNSS through
a datum, at the antenna). Every reading is exact, so what a test changes is what it sees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.stats import chi2

from xiaomanlv_core.geodesy import Datum, local_to_geodetic
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_nav.fusion.config import EkfConfig
from xiaomanlv_nav.fusion.ekf import (
    GNSS,
    GNSS_VEL,
    GRAVITY,
    IMU,
    INITIAL,
    POSE,
    WHEEL,
    Ekf,
    GnssFix,
    GnssVelocity,
    ImuSample,
    PoseFix,
    WheelOdometry,
    build_ekf,
    so3_exp,
    so3_log,
)

ROBOT = load_robot(model_file())
DATUM = Datum(30.2, 120.2, 8.0, heading_deg=20.0)
SPEED = 1.0  # [m/s]
YAW = math.radians(30.0)
POSE_COV = np.diag([0.05**2] * 3 + [0.01**2] * 3)
GNSS_COV = np.diag([1.0, 1.0, 4.0])
VEL_COV = np.diag([0.05**2] * 3)


def truth(t: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = so3_exp(np.array([0.0, 0.0, YAW]))
    pose[:3, 3] = [2.0 + SPEED * t * math.cos(YAW), -1.0 + SPEED * t * math.sin(YAW), 0.0]
    return pose


def make() -> Ekf:
    return build_ekf(EkfConfig(), ROBOT, DATUM)


def gnss_at(t: float, offset: tuple[float, float] = (0.0, 0.0)) -> GnssFix:
    pose = truth(t)
    antenna = pose[:3, :3] @ ROBOT.gnss.pose[:3, 3] + pose[:3, 3]
    antenna[:2] += offset
    return GnssFix(t, local_to_geodetic(DATUM, antenna), GNSS_COV)


def velocity_at(t: float) -> GnssVelocity:
    h = math.radians(DATUM.heading_deg)
    v = SPEED * np.array([math.cos(YAW + h), math.sin(YAW + h), 0.0])
    return GnssVelocity(t, v, VEL_COV)


def events(start: float, end: float) -> list[tuple[float, str, Any]]:
    """Every reading in [start, end): IMU 100 Hz, wheels 50 Hz, pose 10 Hz, GNSS 5 Hz."""
    out: list[tuple[float, str, Any]] = []
    for k in range(round(start * 100), round(end * 100)):
        t = k / 100
        out.append((t, "imu", ImuSample(t, np.zeros(3), np.array([0.0, 0.0, GRAVITY]))))
        if k % 2 == 1:
            out.append((t + 0.001, "wheel", WheelOdometry(t + 0.001, SPEED, 0.0, 1e-4, 1e-4)))
        if k % 10 == 3:
            out.append((t + 0.003, "pose", PoseFix(t + 0.003, truth(t + 0.003), POSE_COV)))
        if k % 20 == 7:
            out.append((t + 0.002, "gnss", gnss_at(t + 0.002)))
            out.append((t + 0.0025, "vel", velocity_at(t + 0.0025)))
    return out


def feed(ekf: Ekf, items: list[tuple[float, str, Any]], skip: tuple[str, ...] = ()) -> None:
    add: dict[str, Callable[[Any], bool]] = {
        "imu": ekf.add_imu,
        "wheel": ekf.add_wheel,
        "pose": ekf.add_pose,
        "gnss": ekf.add_gnss,
        "vel": ekf.add_gnss_velocity,
    }
    for _, kind, item in items:
        if kind not in skip:
            add[kind](item)


def position_error(ekf: Ekf) -> float:
    est = ekf.estimate()
    assert est is not None
    return float(np.linalg.norm(est.pose[:3, 3] - truth(est.stamp)[:3, 3]))


def test_nothing_is_estimated_before_a_pose_then_the_pose_starts_it() -> None:
    ekf = make()
    feed(ekf, [e for e in events(0.0, 0.5) if e[1] != "pose"])
    assert ekf.estimate() is None and not ekf.initialized
    assert ekf.counts[f"{GNSS} gated"] == 0  # waiting is not an error
    feed(ekf, events(0.5, 3.0))
    est = ekf.estimate()
    assert est is not None and ekf.counts["filter initialised"] == 1
    assert position_error(ekf) < 0.02
    assert abs(so3_log(est.pose[:3, :3].T @ truth(est.stamp)[:3, :3])[2]) < 0.005
    np.testing.assert_allclose(est.linear_velocity, [SPEED, 0.0, 0.0], atol=0.02)
    assert ekf.timings.update_median_ms() > 0.0
    assert set(ekf.timings.medians_ms()) == {"predict", "wheel", "pose", "gnss", "gnss_vel"}


@pytest.mark.parametrize("jump", [10.0, 25.0, 50.0])
def test_a_gnss_jump_is_rejected(jump: float) -> None:
    ekf = make()
    feed(ekf, events(0.0, 5.0), skip=("gnss",))
    before = position_error(ekf)
    for k in range(10):  # two seconds of multipath, the localiser silent
        t = 5.0 + 0.2 * k
        feed(ekf, [e for e in events(t, t + 0.2) if e[1] in ("imu", "wheel")])
        ekf.add_gnss(gnss_at(t + 0.19, (jump * 0.6, -jump * 0.8)))
    assert ekf.counts[f"{GNSS} gated"] == 10
    assert position_error(ekf) < before + 0.05


def test_good_gnss_alone_holds_the_position() -> None:
    ekf = make()
    feed(ekf, events(0.0, 1.0))
    feed(ekf, events(1.0, 30.0), skip=("pose",))
    assert ekf.counts[f"{GNSS} gated"] == 0 and ekf.counts[f"{GNSS_VEL} gated"] == 0
    assert position_error(ekf) < 0.3


def test_wheel_slip_is_noticed_and_does_not_drag_the_speed() -> None:
    ekf = make()
    feed(ekf, events(0.0, 3.0))
    spinning = [
        (t, k, WheelOdometry(i.stamp, 2.5 * SPEED, 0.0, 1e-4, 1e-4) if k == "wheel" else i)
        for t, k, i in events(3.0, 4.0)
    ]
    feed(ekf, spinning)
    assert ekf.counts[f"{WHEEL} slip"] >= 40 and ekf.slipping
    est = ekf.estimate()
    assert est is not None and abs(est.linear_velocity[0] - SPEED) < 0.2


# The localiser's latency: its registration (0.3 s), and what the DDS test saw of GNSS and the
# localiser with the sim graph on two loaded shared cores (more than 1 s, the old history).
@pytest.mark.parametrize("delay", [0.3, 2.5])
def test_a_late_measurement_gives_the_in_order_result(delay: float) -> None:
    items = events(0.0, 5.0)
    in_order, late = make(), make()
    feed(in_order, items)
    delayed = [e for e in items if e[1] == "pose" and e[0] > 1.0]
    assert delayed
    rest = [e for e in items if e not in delayed]
    for e in rest:
        feed(late, [e])
        for d in [d for d in delayed if d[0] + delay <= e[0] < d[0] + delay + 0.01]:
            feed(late, [d])  # arrives `delay` after its stamp
    feed(late, [d for d in delayed if d[0] + delay > rest[-1][0]])  # the last ones at the end
    assert late.counts[f"{POSE} out_of_order"] == 0  # in order per source, late overall
    assert late.counts[f"{POSE} too_old"] == 0
    a, b = in_order.estimate(), late.estimate()
    assert a is not None and b is not None and a.stamp == b.stamp
    np.testing.assert_allclose(b.pose, a.pose, atol=1e-9)
    np.testing.assert_allclose(b.covariance, a.covariance, atol=1e-12)


def test_a_stale_source_is_reported_and_the_covariance_grows() -> None:
    ekf = make()
    feed(ekf, events(0.0, 3.0))
    assert ekf.stale(3.0) == []
    est = ekf.estimate()
    assert est is not None
    variance = est.pose_covariance[0, 0]  # with the map's offset (map_error_stddev) in it
    feed(ekf, events(3.0, 13.0), skip=("pose", "gnss", "vel"))  # wheels and IMU only
    assert set(ekf.stale(13.0)) == {POSE, GNSS, GNSS_VEL}
    later = ekf.estimate()
    assert later is not None and later.pose_covariance[0, 0] > 2 * variance
    # Without the IMU the filter coasts, and its covariance grows faster.
    coasted = ekf.estimate(at=15.0)
    assert coasted is not None and IMU in ekf.stale(15.0)
    assert coasted.pose_covariance[0, 0] > later.pose_covariance[0, 0]


def test_a_late_message_is_not_silence() -> None:
    """Five IMU periods are 50 ms: a node a loaded machine starves hears its IMU that late
    while the IMU runs on. Stale needs ``stale_min`` (0.25 s) of silence as well."""
    ekf = make()
    feed(ekf, events(0.0, 3.0))
    last = 2.99  # the newest IMU stamp fed
    assert IMU not in ekf.stale(last + 0.1)  # 10 periods late, not yet a quarter second
    assert IMU in ekf.stale(last + 0.26)
    assert IMU in build_ekf(EkfConfig(stale_min=0.0), ROBOT, DATUM).stale(0.0)  # never heard


def test_bad_input_is_counted_never_raised() -> None:
    ekf = build_ekf(EkfConfig(history=1.0), ROBOT, DATUM)
    feed(ekf, events(0.0, 3.0))
    nan3 = np.array([math.nan, 0.0, 0.0])
    up = np.array([0.0, 0.0, GRAVITY])
    assert not ekf.add_imu(ImuSample(3.0, nan3, np.zeros(3)))
    assert not ekf.add_imu(ImuSample(math.inf, np.zeros(3), np.zeros(3)))
    assert not ekf.add_wheel(WheelOdometry(3.0, math.nan, 0.0, 1e-4, 1e-4))
    assert not ekf.add_wheel(WheelOdometry(3.0, 1.0, 0.0, -1.0, 1e-4))
    assert not ekf.add_gnss(GnssFix(3.0, np.array([math.nan, 120.0, 0.0]), GNSS_COV))
    assert not ekf.add_gnss(GnssFix(3.0, gnss_at(3.0).lla, -GNSS_COV))
    assert not ekf.add_gnss_velocity(GnssVelocity(3.0, nan3, VEL_COV))
    bad_pose = truth(3.0)
    bad_pose[0, 3] = math.nan
    assert not ekf.add_pose(PoseFix(3.0, bad_pose, POSE_COV))
    assert not ekf.add_pose(PoseFix(3.0, truth(3.0), np.zeros((6, 6))))
    assert not ekf.add_imu(ImuSample(2.99, np.zeros(3), up))  # its stamp again
    assert ekf.add_imu(ImuSample(2.985, np.zeros(3), up))  # out of order, still in the history
    assert not ekf.add_wheel(WheelOdometry(1.0, SPEED, 0.0, 1e-4, 1e-4))  # beyond the history
    ekf.count(GNSS, "no_fix")
    counts = ekf.counts
    assert counts[f"{IMU} non_finite"] == 2
    assert counts[f"{WHEEL} non_finite"] == 1 and counts[f"{WHEEL} bad_covariance"] == 1
    assert counts[f"{GNSS} non_finite"] == 1 and counts[f"{GNSS} bad_covariance"] == 1
    assert counts[f"{GNSS_VEL} non_finite"] == 1
    assert counts[f"{POSE} non_finite"] == 1 and counts[f"{POSE} bad_covariance"] == 1
    assert counts[f"{IMU} duplicate"] == 1 and counts[f"{IMU} out_of_order"] == 1
    assert counts[f"{WHEEL} out_of_order"] == 1 and counts[f"{WHEEL} too_old"] == 1
    assert counts[f"{GNSS} no_fix"] == 1
    assert ekf.initialized and position_error(ekf) < 0.05


def test_gnss_without_a_datum_is_counted() -> None:
    ekf = build_ekf(EkfConfig(), ROBOT)
    assert not ekf.add_gnss(gnss_at(0.0))
    assert ekf.counts[f"{GNSS} no_datum"] == 1
    ekf.set_datum(DATUM)
    assert ekf.add_gnss(gnss_at(0.1))


def test_time_going_back_resets_the_filter() -> None:
    ekf = make()
    feed(ekf, events(0.0, 3.0))
    assert ekf.initialized
    feed(ekf, events(0.0, 0.25), skip=("pose",))  # a bag looped, a simulator restarted
    assert ekf.counts["filter time_jump"] == 1 and not ekf.initialized
    feed(ekf, events(0.25, 1.0))
    assert ekf.initialized and position_error(ekf) < 0.05


def test_a_kidnapped_robot_is_restarted_from_the_localiser() -> None:
    ekf = make()
    feed(ekf, events(0.0, 3.0))
    moved = [
        (t, k, PoseFix(i.stamp, _shifted(i.pose, 30.0), POSE_COV) if k == "pose" else i)
        for t, k, i in events(3.0, 5.0)
    ]
    feed(ekf, moved, skip=("gnss", "vel"))
    assert ekf.counts["filter restarted_from_localizer"] == 1
    est = ekf.estimate()
    assert est is not None
    assert np.linalg.norm(est.pose[:3, 3] - _shifted(truth(est.stamp), 30.0)[:3, 3]) < 0.1


def _shifted(pose: np.ndarray, dy: float) -> np.ndarray:
    out = np.array(pose, float)
    out[1, 3] += dy
    return out


# RViz's 2D Pose Estimate: x, y 0.5 m and yaw 15 deg; z, roll and pitch all zero.
RVIZ_COV = np.zeros((6, 6))
RVIZ_COV[0, 0] = RVIZ_COV[1, 1] = 0.25
RVIZ_COV[5, 5] = 0.0685


def test_an_operator_pose_as_rviz_sends_it_starts_the_filter() -> None:
    ekf = make()
    feed(ekf, [e for e in events(0.0, 0.5) if e[1] in ("imu", "wheel")])
    guess = truth(0.491)  # the newest event: a wheel reading
    guess[:2, 3] += (0.3, -0.2)  # the operator is a little off; z = 0 as RViz sends it
    guess[2, 3] = 0.0
    # Unstamped (RViz in some set-ups, a script): the newest event's time.
    assert ekf.initialize(guess, RVIZ_COV, 0.0, source=INITIAL)
    assert ekf.initialized and ekf.counts[f"{INITIAL} bad_covariance"] == 0
    est = ekf.estimate()
    assert est is not None and est.stamp == pytest.approx(0.491)
    # The filter says what it was told: the operator's 0.5 m and 15 deg, not more.
    cov = est.pose_covariance
    assert cov[0, 0] == pytest.approx(0.25, rel=0.05) and cov[5, 5] == pytest.approx(0.0685)
    assert cov[2, 2] == pytest.approx(EkfConfig().init_height_stddev ** 2, rel=0.05)
    # The localiser's first match pulls it onto the truth.
    feed(ekf, events(0.5, 2.0), skip=("gnss",))
    assert position_error(ekf) < 0.05


def test_an_operator_pose_without_x_y_or_yaw_variance_is_refused_and_counted() -> None:
    ekf = make()
    feed(ekf, [e for e in events(0.0, 0.2) if e[1] == "imu"])
    no_yaw = RVIZ_COV.copy()
    no_yaw[5, 5] = 0.0
    assert not ekf.initialize(truth(0.1), no_yaw, 0.1, source=INITIAL)
    assert not ekf.initialize(truth(0.1), np.zeros((6, 6)), 0.1, source=INITIAL)
    assert ekf.counts[f"{INITIAL} bad_covariance"] == 2 and not ekf.initialized
    assert ekf.counts[f"{POSE} bad_covariance"] == 0  # the localiser's count is its own


def test_wheel_slip_from_the_robot_description_loosens_the_wheels_only_when_moving() -> None:
    # The encoders cannot see slip, so the odometry's covariance leaves it out; the filter adds
    # the robot description's share of each wheel's travel (DiffDriveSpec.slip_stddev).
    assert ROBOT.drive.slip_stddev > 0.0
    no_slip = dataclasses.replace(ROBOT, drive=dataclasses.replace(ROBOT.drive, slip_stddev=0.0))

    def along_growth(robot: Any, speed: float) -> float:
        """[m^2] growth of the along-track variance over 5 s of dead reckoning."""
        ekf = build_ekf(EkfConfig(), robot, DATUM)
        along = np.array([math.cos(YAW), math.sin(YAW)])
        variances = []
        for start in (0.0, 1.01):
            for t, kind, item in events(start, 1.01 if start == 0.0 else 6.0):
                if kind == "wheel":
                    item = WheelOdometry(item.stamp, speed, 0.0, 1e-6, 1e-6)
                if kind in ("gnss", "vel") or (kind == "pose" and t > 1.0):
                    continue  # the localiser silent after 1 s: IMU and wheels alone
                feed(ekf, [(t, kind, item)])
            est = ekf.estimate()
            assert est is not None
            variances.append(float(along @ est.pose_covariance[:2, :2] @ along))
        return variances[1] - variances[0]

    assert along_growth(ROBOT, SPEED) > 1.5 * along_growth(no_slip, SPEED)
    assert along_growth(ROBOT, 0.0) == pytest.approx(along_growth(no_slip, 0.0), rel=1e-6)


def test_an_operator_guess_the_first_match_contradicts_is_replaced_at_once() -> None:
    # The operator's pose only seeds the localiser; while the filter has fused no match it is
    # a guess (here 1.5 m off and claiming 0.1 m), and the first match that disagrees replaces
    # it instead of waiting for localizer_reset_after matches.
    ekf = make()
    feed(ekf, [e for e in events(0.0, 0.5) if e[1] in ("imu", "wheel")])
    guess = truth(0.491)
    guess[:2, 3] += (1.2, -0.9)
    cov = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-3])
    assert ekf.initialize(guess, cov, 0.491, source=INITIAL)
    first = next(e for e in events(0.5, 2.0) if e[1] == "pose")[0]
    feed(ekf, [e for e in events(0.5, 2.0) if e[0] <= first + 0.005 and e[1] != "gnss"])
    assert ekf.counts["filter restarted_from_localizer"] == 1
    assert position_error(ekf) < 0.05
    # Once on the map, a disagreeing match is gated as before (a jump is the match's fault).
    feed(ekf, [e for e in events(0.5, 2.0) if e[0] > first + 0.005 and e[1] != "gnss"])
    jumped = truth(2.003)
    jumped[:2, 3] += (1.2, -0.9)
    ekf.add_pose(PoseFix(2.003, jumped, POSE_COV))
    assert ekf.counts["filter restarted_from_localizer"] == 1 and position_error(ekf) < 0.05


def _offset_stream_anees(
    map_error_stddev: float, seed: int, drives: int = 40
) -> tuple[float, float, float]:
    """ANEES of the position (x, y) and its 95 % bounds when every localiser pose carries the
    map's offset at its place: a first-order Gauss-Markov process in the distance driven
    (2 cm stationary over 10 m, the defaults), plus white noise of the covariance the
    localiser reports. ``map_error_stddev`` is the filter's. One sample at the end of each
    drive of 15 m, each over a fresh stretch of map: independent, as the chi-square
    bounds assume (samples along one drive share its offset)."""
    cfg = dataclasses.replace(EkfConfig(), map_error_stddev=map_error_stddev)
    sd, length = EkfConfig().map_error_stddev, cfg.map_error_length  # [m] the world's offset
    white = np.diag([0.01**2] * 3 + [0.002**2] * 3)  # what the localiser reports
    rng = np.random.default_rng(seed)
    drive = [e for e in events(0.0, 15.0) if e[1] != "gnss"]  # GNSS would see the offset too
    nees = []
    for _ in range(drives):
        ekf = build_ekf(cfg, ROBOT, DATUM)
        offset = rng.normal(0.0, sd, 2)
        for t, kind, item in drive:
            if kind == "pose":
                decay = math.exp(-SPEED * 0.1 / length)  # 0.1 s between poses
                offset = decay * offset + rng.normal(0.0, sd * math.sqrt(1.0 - decay**2), 2)
                seen = truth(t)
                seen[:2, 3] += offset + rng.normal(0.0, 0.01, 2)
                seen[:3, :3] = seen[:3, :3] @ so3_exp(rng.normal(0.0, 0.002, 3))
                item = PoseFix(t, seen, white)
            feed(ekf, [(t, kind, item)])
        est = ekf.estimate()
        assert est is not None
        err = est.pose[:2, 3] - truth(est.stamp)[:2, 3]
        nees.append(float(err @ np.linalg.solve(est.pose_covariance[:2, :2], err)))
    n = len(nees)
    return float(np.mean(nees)), chi2.ppf(0.025, 2 * n) / n, chi2.ppf(0.975, 2 * n) / n


def test_a_localiser_with_the_maps_slowly_varying_offset_is_fused_consistently() -> None:
    anees, low, high = _offset_stream_anees(EkfConfig().map_error_stddev, seed=3)
    assert low <= anees <= high, (anees, low, high)
    # The same stream taken as independent poses: the filter believes it averages the
    # offset away and claims far less than its error.
    anees, low, high = _offset_stream_anees(0.0, seed=3, drives=5)
    assert anees > 3 * high, (anees, low, high)


def test_gnss_alone_does_not_make_an_operator_guess_look_localised() -> None:
    # Started from an operator's pose (0.5 m), no match yet, 10 s of fixes 1.5 m off
    # (multipath: not in their covariance): the filter moves towards them but does not claim
    # to know the position better than the guess did (the localiser seeds from a fused pose
    # only when its std is below 0.3 m, docs/localization.md).
    ekf = make()
    feed(ekf, [e for e in events(0.0, 0.5) if e[1] in ("imu", "wheel")])
    assert ekf.initialize(truth(0.491), RVIZ_COV, 0.491, source=INITIAL)
    for t, kind, item in events(0.5, 10.5):
        if kind == "gnss":
            item = gnss_at(t, (1.5, 0.0))
        if kind != "pose":
            feed(ekf, [(t, kind, item)])
    assert ekf.counts[f"{GNSS} gated"] < 5
    est = ekf.estimate()
    assert est is not None
    assert np.linalg.eigvalsh(est.pose_covariance[:2, :2])[0] >= 0.25 * 0.999
    # The first match makes it localised, and GNSS then fuses as before.
    feed(ekf, events(10.5, 12.0))
    est = ekf.estimate()
    assert est is not None and math.sqrt(est.pose_covariance[0, 0]) < 0.05
