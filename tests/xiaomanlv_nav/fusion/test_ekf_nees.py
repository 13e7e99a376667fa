"""The filter's covariance tells the truth: NEES of a simulated drive within its chi-square bounds.

The lockstep simulator drives the robot (no crowd, no lidar) and gives its IMU, wheel odometry
and GNSS readings to the filter with the node's default parameters; the localiser is emulated
as the filter models it: the true pose plus the map's local offset (a first-order Gauss-Markov
process in the distance driven, ``map_error_stddev`` and ``map_error_length``) plus white noise
drawn from the covariance it reports. Only the test sees the truth.
The map frame is the world's here (datum: the world's <spherical_coordinates>).

The normalised estimation error squared of the planar pose (x, y, yaw: what the stack steers
by) is sampled once a second after a 10 s settling time; its mean times N is chi-square with
3N degrees of freedom for a consistent filter (Bar-Shalom, Li & Kirubarajan, *Estimation with
Applications to Tracking and Navigation*, 2001, 5.4.2).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import chi2

from xiaomanlv_nav.fusion.config import EkfConfig
from xiaomanlv_nav.fusion.ekf import (
    GnssFix,
    GnssVelocity,
    ImuSample,
    PoseFix,
    WheelOdometry,
    build_ekf,
    so3_exp,
    so3_log,
)
from xiaomanlv_sim.sensors.gnss import STATUS_FIX, GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig

POSE_SD, ROT_SD = 0.05, 0.01  # [m], [rad] the emulated localiser's noise
SETTLE, DURATION = 10.0, 70.0  # [s]


def test_nees_of_a_short_drive_lies_within_its_bounds() -> None:
    sim = Simulator.from_world_name(
        "university", seed=0, config=SimulatorConfig(lidar=False, ultrasonic=False)
    )
    assert sim.world.spherical_coordinates is not None
    # The map's offset decorrelates over 1 m here (10 m by default): 70 s of driving then hold
    # many independent offsets, as the chi-square bounds on samples 1 s apart assume.
    cfg = EkfConfig(map_error_length=1.0)
    ekf = build_ekf(cfg, sim.robot, sim.world.spherical_coordinates)
    rng = np.random.default_rng(7)
    offset = rng.normal(0.0, cfg.map_error_stddev, 2)  # [m] the map's, where the robot is
    last_xy = sim.ground_truth.pose[:2, 3].copy()
    pose_cov = np.diag([POSE_SD**2] * 3 + [ROT_SD**2] * 3)
    nees: list[float] = []
    rate = sim.physics_rate
    for tick in range(1, round(DURATION * rate) + 1):
        sim.set_cmd_vel(1.2, 0.3 * math.sin(0.2 * tick / rate))
        for r in sim.step():
            if isinstance(r, ImuReading):
                ekf.add_imu(ImuSample(r.stamp, r.angular_velocity, r.linear_acceleration))
            elif isinstance(r, OdomReading):
                cov = r.twist_covariance
                ekf.add_wheel(
                    WheelOdometry(r.stamp, r.twist[0], r.twist[1], float(cov[0]), float(cov[1]))
                )
            elif isinstance(r, GnssReading) and r.status >= STATUS_FIX:
                lla = np.array([r.latitude, r.longitude, r.altitude])
                ekf.add_gnss(GnssFix(r.stamp, lla, r.position_covariance.reshape(3, 3)))
                vel_cov = r.velocity_covariance.reshape(3, 3)
                ekf.add_gnss_velocity(GnssVelocity(r.stamp, r.velocity_enu, vel_cov))
        truth = sim.ground_truth
        if tick % round(rate / 10) == 0:  # the localiser at 10 Hz
            xy = truth.pose[:2, 3]
            decay = math.exp(-float(np.linalg.norm(xy - last_xy)) / cfg.map_error_length)
            last_xy = xy.copy()
            offset = decay * offset + rng.normal(0.0, cfg.map_error_stddev, 2) * math.sqrt(
                1.0 - decay**2
            )
            seen = truth.pose.copy()
            seen[:3, 3] += rng.normal(0.0, POSE_SD, 3)
            seen[:2, 3] += offset
            seen[:3, :3] = seen[:3, :3] @ so3_exp(rng.normal(0.0, ROT_SD, 3))
            ekf.add_pose(PoseFix(truth.time, seen, pose_cov))
        if tick % round(rate) == round(rate / 2) and truth.time > SETTLE:
            est = ekf.estimate(at=truth.time)
            assert est is not None
            err_xy = truth.pose[:2, 3] - est.pose[:2, 3]
            err_yaw = (est.pose[:3, :3] @ so3_log(est.pose[:3, :3].T @ truth.pose[:3, :3]))[2]
            err = np.array([*err_xy, err_yaw])
            cov = est.pose_covariance[np.ix_([0, 1, 5], [0, 1, 5])]
            nees.append(float(err @ np.linalg.solve(cov, err)))
    assert not [e for e in sim.events if e.kind in ("blocked", "collision")]
    n = len(nees)
    low, high = chi2.ppf(0.025, 3 * n) / n, chi2.ppf(0.975, 3 * n) / n
    assert low <= float(np.mean(nees)) <= high, (np.mean(nees), low, high)
    assert ekf.counts["filter initialised"] == 1
    assert ekf.counts["localizer gated"] <= 5  # a 0.999 gate on 700 honest poses
