"""IMU model: gyroscope and accelerometer from the true motion, with Gazebo's noise model.

Measurement (strapdown kinematics, Titterton & Weston, *Strapdown Inertial Navigation
Technology*, 2nd ed., ch. 3): with R the world <- base_link rotation, r and R_s the mounting
offset and rotation of the IMU in base_link,

    omega_s = R_s^T omega_b
    f_s     = R_s^T ( R^T (a_w + g_up) + alpha_b x r + omega_b x (omega_b x r) )

so the accelerometer sees gravity in the tilted frame, the tangential and centripetal
acceleration of base_link and the lever arm of its mounting. Noise per axis is gz-sensors'
``GaussianNoiseModel``: ``out = in + bias + N(mean, stddev)`` where ``bias`` is drawn once from
``N(bias_mean, bias_stddev)`` and given a random sign, as Gazebo does. ImuBiasStep faults add a
further bias (passed to :meth:`Imu.read`).

Orientation: a 6-axis IMU has no absolute heading, so unlike Gazebo's IMU (which reports the
true world orientation) roll and pitch are the true tilt (what an AHRS gets from gravity) and
yaw is the start yaw plus the integral of the measured yaw rate: it drifts with the gyro bias
and noise, as a real one does. ``orientation_covariance`` says so: roll/pitch variance
``(accel_stddev / g)^2``, yaw variance growing with the integrated gyro noise and bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_sim.dynamics import GRAVITY, BodyState


class NoiseParams(Protocol):
    """One axis of ``xiaomanlv_sim.robot.NoiseSpec`` (an SDF ``<noise type="gaussian">``)."""

    @property
    def mean(self) -> float: ...
    @property
    def stddev(self) -> float: ...
    @property
    def bias_mean(self) -> float: ...
    @property
    def bias_stddev(self) -> float: ...


class ImuParams(Protocol):
    """The fields of ``xiaomanlv_sim.robot.ImuSpec`` the model reads."""

    @property
    def name(self) -> str: ...
    @property
    def rate(self) -> float: ...  # [Hz]
    @property
    def pose(self) -> NDArray[np.float64]: ...  # 4x4 base_link <- imu
    @property
    def gyro(self) -> Sequence[NoiseParams]: ...  # x, y, z [rad/s]
    @property
    def accel(self) -> Sequence[NoiseParams]: ...  # x, y, z [m/s^2]


@dataclass(frozen=True)
class ImuReading:
    stamp: float  # [s] sim time
    frame_id: str
    orientation: NDArray[np.float64]  # (4,) x, y, z, w: world <- imu (yaw from the gyro)
    angular_velocity: NDArray[np.float64]  # (3,) [rad/s] in the imu frame
    linear_acceleration: NDArray[np.float64]  # (3,) [m/s^2] specific force in the imu frame
    orientation_covariance: NDArray[np.float64] = field(repr=False)  # (9,) row-major [rad^2]
    angular_velocity_covariance: NDArray[np.float64] = field(repr=False)  # (9,) [(rad/s)^2]
    linear_acceleration_covariance: NDArray[np.float64] = field(repr=False)  # (9,) [(m/s^2)^2]


def gazebo_bias(noise: NoiseParams, rng: np.random.Generator) -> float:
    """The turn-on bias of one axis as gz-sensors draws it: N(bias_mean, bias_stddev), then a
    random sign with equal probability."""
    sd = noise.bias_stddev
    bias = float(rng.normal(noise.bias_mean, sd)) if sd > 0 else float(noise.bias_mean)
    return -bias if rng.uniform() < 0.5 else bias


def _quat_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """x, y, z, w of Rz(yaw) Ry(pitch) Rx(roll); written out because it runs at 100 Hz and
    scipy's Rotation costs ~20 us per construction (bench/sim_speed.py)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def _quat_mul(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


class Imu:
    """Gyro + accelerometer + orientation of one IMU (see module docstring).

    Args:
        spec: rate, mounting pose and per-axis noise (an ``ImuSpec``).
        rng: random generator; the turn-on biases are drawn here, once.
        start_yaw: [rad] true yaw at start, where the integrated heading begins.
    """

    def __init__(self, spec: ImuParams, rng: np.random.Generator, start_yaw: float = 0.0) -> None:
        self.spec = spec
        self.rng = rng
        self.frame_id = spec.name
        pose = np.asarray(spec.pose, float)
        self._mount = pose[:3, :3]
        self._mount_t = np.ascontiguousarray(self._mount.T)
        self._lever = pose[:3, 3].copy()
        self._lever_xyz = (float(pose[0, 3]), float(pose[1, 3]), float(pose[2, 3]))
        self._has_lever = bool(np.any(self._lever != 0.0))
        self._mount_identity = bool(np.allclose(self._mount, np.eye(3), atol=1e-12, rtol=0.0))
        mq = Rotation.from_matrix(self._mount).as_quat()
        self._mount_q = (float(mq[0]), float(mq[1]), float(mq[2]), float(mq[3]))
        self.gyro_bias = np.array([gazebo_bias(n, rng) for n in spec.gyro])
        self.accel_bias = np.array([gazebo_bias(n, rng) for n in spec.accel])
        self._gyro_mean = np.array([n.mean for n in spec.gyro])
        self._accel_mean = np.array([n.mean for n in spec.accel])
        self._gyro_sd = np.array([n.stddev for n in spec.gyro])
        self._accel_sd = np.array([n.stddev for n in spec.accel])
        self._gyro_cov = np.diag(self._gyro_sd**2).ravel()
        self._accel_cov = np.diag(self._accel_sd**2).ravel()
        self._tilt_var = float(np.mean(self._accel_sd) / GRAVITY) ** 2
        self._yaw_rate_bias_sd = float(math.hypot(spec.gyro[2].bias_mean, spec.gyro[2].bias_stddev))
        self.yaw = start_yaw  # [rad] integrated heading
        self._yaw_var = 0.0
        self._elapsed = 0.0
        self._last: float | None = None
        self._noise = np.empty((0, 6))
        self._noise_i = 0

    def _draw(self) -> NDArray[np.float64]:
        if self._noise_i >= len(self._noise):
            self._noise = self.rng.standard_normal((512, 6))
            self._noise_i = 0
        n = self._noise[self._noise_i]
        self._noise_i += 1
        return n

    def true_motion(self, state: BodyState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(angular velocity [rad/s], specific force [m/s^2]) in the imu frame, noiseless.

        Scalar arithmetic instead of ``np.cross`` on 3-vectors: this runs at 100 Hz and
        numpy's per-call overhead made it 90 us a reading (bench/sim_speed.py)."""
        rot = state.rotation()
        wx, wy, wz = (float(v) for v in state.angular_velocity_body())
        a_w = state.linear_acceleration_world()
        a_w[2] += GRAVITY
        fx, fy, fz = (float(v) for v in rot.T @ a_w)
        if self._has_lever:
            rx, ry, rz = self._lever_xyz
            ax, ay, az = (float(v) for v in state.angular_acceleration_body())
            # alpha x r + omega x (omega x r)
            cx, cy, cz = wy * rz - wz * ry, wz * rx - wx * rz, wx * ry - wy * rx
            fx += ay * rz - az * ry + wy * cz - wz * cy
            fy += az * rx - ax * rz + wz * cx - wx * cz
            fz += ax * ry - ay * rx + wx * cy - wy * cx
        w_b = np.array([wx, wy, wz])
        f_b = np.array([fx, fy, fz])
        if self._mount_identity:
            return w_b, f_b
        return self._mount_t @ w_b, self._mount_t @ f_b

    def read(
        self,
        state: BodyState,
        stamp: float,
        extra_gyro_bias: NDArray[np.float64] | None = None,
        extra_accel_bias: NDArray[np.float64] | None = None,
    ) -> ImuReading:
        """One reading of the true ``state`` at sim time ``stamp`` [s].

        ``extra_*_bias`` are fault biases (ImuBiasStep) in the imu frame, added on top.
        """
        w_true, f_true = self.true_motion(state)
        n = self._draw()
        gyro = w_true + self.gyro_bias + self._gyro_mean + self._gyro_sd * n[:3]
        accel = f_true + self.accel_bias + self._accel_mean + self._accel_sd * n[3:]
        if extra_gyro_bias is not None:
            gyro = gyro + extra_gyro_bias
        if extra_accel_bias is not None:
            accel = accel + extra_accel_bias
        # Heading: integrate the measured yaw rate (body z of the measured rate, tilt-corrected).
        w_body = gyro if self._mount_identity else self._mount @ gyro
        cr, sr = math.cos(state.roll), math.sin(state.roll)
        cp = max(math.cos(state.pitch), 1e-3)
        yaw_rate = (float(w_body[1]) * sr + float(w_body[2]) * cr) / cp
        if self._last is not None:
            dt = stamp - self._last
            self.yaw = (self.yaw + yaw_rate * dt + math.pi) % (2 * math.pi) - math.pi
            self._elapsed += dt
            # Random walk of the white noise plus the (unknown) turn-on bias times the time.
            self._yaw_var = (
                float(self._gyro_sd[2] ** 2 * dt * self._elapsed)
                + (self._yaw_rate_bias_sd * self._elapsed) ** 2
            )
        self._last = stamp
        q = _quat_mul(_quat_rpy(state.roll, state.pitch, self.yaw), self._mount_q)
        cov = np.zeros(9)
        cov[0] = cov[4] = self._tilt_var
        cov[8] = self._yaw_var
        return ImuReading(
            stamp=stamp,
            frame_id=self.frame_id,
            orientation=np.array(q),
            angular_velocity=gyro,
            linear_acceleration=accel,
            orientation_covariance=cov,
            angular_velocity_covariance=self._gyro_cov,
            linear_acceleration_covariance=self._accel_cov,
        )
