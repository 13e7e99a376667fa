"""Configuration of the fusion: :class:`EkfConfig`, every default of the ``ekf`` node.

Noise densities are continuous-time (per square root of a second), so they hold whatever the
IMU's rate; the measurement covariances of GNSS, /gnss/vel and the localiser's pose come with
their messages and are used as given. config/ YAML only overrides these defaults; the node
declares one parameter per field (`xiaomanlv_core.ros.params.declare_config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xiaomanlv_core.config import ConfigError, param, validate_fields

__all__ = ["EkfConfig"]


@dataclass(frozen=True)
class EkfConfig:
    """The error-state EKF and its node (docs/fusion.md)."""

    # ---- process noise (IMU) -------------------------------------------------------------
    gyro_noise: float = param(
        0.001, low=1e-6, high=1.0, unit="rad/s/sqrt(Hz)", description="gyro white noise density"
    )  # [rad/s/sqrt(Hz)]
    accel_noise: float = param(
        0.03,
        low=1e-5,
        high=10.0,
        unit="m/s^2/sqrt(Hz)",
        description="accelerometer white noise density (lever arm, suspension, vibration)",
    )  # [m/s^2/sqrt(Hz)]
    gyro_bias_walk: float = param(
        2e-5, low=0.0, high=0.1, unit="rad/s^2/sqrt(Hz)", description="gyro bias random walk"
    )  # [rad/s^2/sqrt(Hz)]
    accel_bias_walk: float = param(
        2e-4, low=0.0, high=1.0, unit="m/s^3/sqrt(Hz)", description="accel bias random walk"
    )  # [m/s^3/sqrt(Hz)]
    coast_accel_noise: float = param(
        1.0,
        low=0.0,
        high=100.0,
        unit="m/s^2/sqrt(Hz)",
        description="acceleration noise of the constant-velocity model while the IMU is stale",
    )  # [m/s^2/sqrt(Hz)]
    coast_gyro_noise: float = param(
        0.3,
        low=0.0,
        high=10.0,
        unit="rad/s/sqrt(Hz)",
        description="angular rate noise of the constant-velocity model while the IMU is stale",
    )  # [rad/s/sqrt(Hz)]
    # ---- initial uncertainty -------------------------------------------------------------
    init_velocity_stddev: float = param(
        0.5, low=1e-3, high=100.0, unit="m/s", description="velocity at initialisation"
    )  # [m/s]
    init_tilt_stddev: float = param(
        0.02,
        low=1e-4,
        high=1.0,
        unit="rad",
        description="roll/pitch levelled from the accelerometer at initialisation",
    )  # [rad]
    init_height_stddev: float = param(
        2.0,
        low=1e-3,
        high=100.0,
        unit="m",
        description="height at initialisation from a pose that gives none (RViz: x, y, yaw)",
    )  # [m]
    init_gyro_bias_stddev: float = param(
        0.002, low=1e-6, high=1.0, unit="rad/s", description="gyro bias at initialisation"
    )  # [rad/s]
    init_accel_bias_stddev: float = param(
        0.05, low=1e-5, high=10.0, unit="m/s^2", description="accel bias at initialisation"
    )  # [m/s^2]
    # ---- wheel odometry ------------------------------------------------------------------
    lateral_velocity_stddev: float = param(
        0.01,
        low=1e-4,
        high=10.0,
        unit="m/s",
        description="nonholonomic constraint: base_link's sideways speed",
    )  # [m/s]
    vertical_velocity_stddev: float = param(
        0.05,
        low=1e-4,
        high=10.0,
        unit="m/s",
        description="nonholonomic constraint: base_link's vertical speed (suspension, kerbs)",
    )  # [m/s]
    min_wheel_speed_stddev: float = param(
        0.005,
        low=1e-4,
        high=10.0,
        unit="m/s",
        description="floor under the wheel odometry's reported speed standard deviation",
    )  # [m/s]
    min_wheel_rate_stddev: float = param(
        0.01,
        low=1e-5,
        high=10.0,
        unit="rad/s",
        description="floor under the wheel odometry's reported yaw rate standard deviation",
    )  # [rad/s]
    # ---- the localiser's pose ---------------------------------------------------------------
    map_error_stddev: float = param(
        0.02,
        low=0.0,
        high=10.0,
        unit="m",
        description="stationary std of the map's local offset per horizontal axis, which every "
        "localiser pose at a place shares (0: poses independent)",
    )  # [m] the localiser's min_position_std: the least error it claims for a pose
    map_error_length: float = param(
        10.0,
        low=0.1,
        high=1e4,
        unit="m",
        description="distance driven over which the map's local offset decorrelates",
    )  # [m] the reach of most walkway returns a sweep matches
    # ---- gating --------------------------------------------------------------------------
    gate_probability: float = param(
        0.999,
        low=0.5,
        high=0.999999,
        unit="",
        description="chi-square gate: an innovation beyond this quantile is an outlier",
    )
    localizer_reset_after: int = param(
        10,
        low=1,
        high=1000,
        description="consecutive gated localiser poses after which the filter restarts from one",
    )
    # ---- time ----------------------------------------------------------------------------
    history: float = param(
        3.0,
        low=0.5,
        high=10.0,
        unit="s",
        description="state history kept: a measurement this late is applied at its stamp",
    )  # [s]
    time_jump_reset: float = param(
        1.0,
        low=0.01,
        high=3600.0,
        unit="s",
        description="time going back by more than this (IMU stamps, /clock) resets the filter",
    )  # [s]
    max_imu_gap: float = param(
        0.1,
        low=0.005,
        high=10.0,
        unit="s",
        description="longest IMU interval integrated; a longer gap coasts at constant velocity",
    )  # [s]
    imu_period: float = param(
        0.01, low=1e-4, high=10.0, unit="s", description="expected interval of /imu/data"
    )  # [s]
    wheel_period: float = param(
        0.02, low=1e-4, high=10.0, unit="s", description="expected interval of /wheel/odom"
    )  # [s]
    gnss_period: float = param(
        0.2, low=1e-3, high=100.0, unit="s", description="expected interval of /gnss/fix, /gnss/vel"
    )  # [s]
    pose_period: float = param(
        0.1,
        low=1e-3,
        high=100.0,
        unit="s",
        description="expected interval of /localization/pose",
    )  # [s]
    stale_factor: float = param(
        5.0,
        low=1.0,
        high=1000.0,
        unit="periods",
        description="a source silent for this many of its periods is stale",
    )  # [periods]
    stale_min: float = param(
        0.25,
        low=0.0,
        high=100.0,
        unit="s",
        description="and silent at least this long: a busy machine delays messages by tens of ms",
    )  # [s]
    # ---- node ----------------------------------------------------------------------------
    datum_file: str = param(
        "",
        description="the map's datum.yaml; empty: take /map/datum from the map server",
    )
    diagnostics_rate: float = param(
        1.0, low=0.1, high=50.0, unit="Hz", description="rate of /diagnostics"
    )  # [Hz]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.history < 5.0 * self.imu_period:
            raise ConfigError(
                f"history {self.history:g} s must hold at least 5 IMU periods "
                f"(imu_period {self.imu_period:g} s)"
            )
