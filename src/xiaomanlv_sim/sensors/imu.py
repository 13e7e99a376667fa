"""IMU model: gyroscope and accelerometer from the true motion, with Gazebo's noise model, and
the orientation a 6-axis MEMS unit's onboard attitude filter reports.

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

Orientation (world <- imu), from the noisy readings only, as an AHRS chip computes it (Gazebo's
IMU would report the true world orientation instead):

* At power-on the unit levels itself from the first accelerometer reading and takes an
  arbitrary reference heading (``reference_yaw``, drawn uniformly when not given): a 6-axis
  IMU has no magnetometer and cannot know north.
* Then a complementary filter on the quaternion (Mahony, Hamel & Pflimlin, "Nonlinear
  complementary filters on the special orthogonal group", IEEE TAC 53(5), 2008, the explicit
  complementary filter with proportional gain ``k_P = 1 / tilt_time_constant``): the gyro is
  integrated, corrected by ``k_P (u x v_hat)`` towards the accelerometer's direction ``u`` of
  "up". The correction is horizontal, so the heading is the reference plus the integral of the
  measured rate and drifts with the gyro's bias and noise. The gain fades to zero as the
  accelerometer's magnitude leaves 1 g by 10 to 20 % (the adaptive gain of Valenti, Dryanovski
  & Xiao, "Keeping a good attitude", Sensors 15(8), 2015, sec. 5.1), so a kerb's jolt is not
  taken for a tilt; the specific force of braking, accelerating and turning (1-2 % off 1 g) is,
  and tilts the estimate as on a real unit.

``orientation_covariance`` (about the imu's x, y, z axes, [rad^2]) says what the filter knows:

* tilt (x, y): the accelerometer's white noise through the filter, propagated per reading as
  ``P <- (1 - a)^2 P + a^2 (sd_accel / g)^2 + (sd_gyro dt)^2`` with ``a = k_P dt``; the
  unknown turn-on biases, ``(b_gyro tau)^2 + (b_accel / g)^2`` (their steady-state tilt); and the
  dynamic error, ``D^2`` with ``D`` the same low-pass of the innovation's magnitude ``|u x
  v_hat|``. The error is the low-pass of the specific force's tilt ``d``, the innovation is
  ``d`` minus that error, so while manoeuvres are short against ``tau``, ``D`` bounds the error
  (``tests/xiaomanlv_sim/test_imu.py`` checks it against the truth over a drive with braking and
  turning);
* heading (z): ``pi^2 / 3``, the variance of a reference uniform on the circle, plus the gyro's
  random walk ``sd_gyro^2 dt t`` and its turn-on bias ``(b_gyro t)^2`` after ``t`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numba
import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.dynamics import GRAVITY, BodyState

TILT_TIME_CONSTANT = 5.0  # [s] default 1 / k_P of the attitude filter
# Valenti et al. (2015) sec. 5.1: full gain while | |f| - g | / g is below the first, none above
# the second.
GATE_FULL, GATE_NONE = 0.1, 0.2


class NoiseParams(Protocol):
    """One axis of ``xiaomanlv_core.robot.NoiseSpec`` (an SDF ``<noise type="gaussian">``)."""

    @property
    def mean(self) -> float: ...
    @property
    def stddev(self) -> float: ...
    @property
    def bias_mean(self) -> float: ...
    @property
    def bias_stddev(self) -> float: ...


class ImuParams(Protocol):
    """The fields of ``xiaomanlv_core.robot.ImuSpec`` the model reads."""

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
    orientation: NDArray[np.float64]  # (4,) x, y, z, w: world <- imu, heading from a reference
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


# Kernel-only quaternion helpers: numba cannot call scipy, and its cache would not notice a
# change to a kernel another module defines (docs/simulator.md), so the compiled reading keeps
# these two. The Python-level rotations are `xiaomanlv_core.geometry`'s; a test holds that
# `_quat_rpy` equals `geometry.quaternion_from_rpy`.
@numba.njit(cache=True)
def _quat_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """x, y, z, w of Rz(yaw) Ry(pitch) Rx(roll) [rad]."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


@numba.njit(cache=True)
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


# Constants vector (Imu._c).
_C_LEVER = 0  # 0..2: x, y, z of the mounting point in base_link [m]
_C_HAS_LEVER, _C_MOUNT_IDENTITY = 3, 4
_C_MOUNT = 5  # 5..13: R_s row-major (base_link <- imu)
_C_GYRO = 14  # 14..22: per axis bias, mean, stddev [rad/s]
_C_ACCEL = 23  # 23..31: per axis bias, mean, stddev [m/s^2]
_C_KP = 32  # [1/s] the filter's proportional gain
_C_ACCEL_DIR_VAR = 33  # [rad^2] (sd_accel / g)^2: one reading's tilt noise
_C_GYRO_VAR_XY, _C_GYRO_VAR_Z = 34, 35  # [(rad/s)^2] per-reading gyro noise variance
_C_TILT_BIAS_VAR = 36  # [rad^2] steady-state tilt of the unknown turn-on biases
_C_YAW_BIAS_SD = 37  # [rad/s] the z gyro's turn-on bias, as the filter knows it
_C_HEADING_VAR = 38  # [rad^2] the reference heading's variance
_C_REF_YAW = 39  # [rad] the reference heading at power-on
_N_CONST = 40

# State vector (Imu._s).
_S_Q = 0  # 0..3: x, y, z, w of the estimate, world <- imu
_S_LAST, _S_HAS_LAST, _S_ELAPSED, _S_NOISE_I = 4, 5, 6, 7
_S_P = 8  # tilt noise variance about each horizontal axis [rad^2]
_S_D = 9  # 9, 10: dynamic error bound about the reference frame's x, y [rad]
_S_YAW_VAR = 11  # [rad^2] the heading's drift variance so far
_N_STATE = 12

# Output vector of one reading: gyro, accel, orientation, orientation covariance.
_O_GYRO, _O_ACCEL, _O_Q, _O_COV, _N_OUT = 0, 3, 6, 10, 19


@numba.njit(cache=True)
def _motion(
    c: NDArray[np.float64],
    roll: float,
    pitch: float,
    roll_rate: float,
    pitch_rate: float,
    yaw_rate: float,
    speed: float,
    accel_forward: float,
    z_accel: float,
    roll_accel: float,
    pitch_accel: float,
    yaw_accel: float,
) -> tuple[float, float, float, float, float, float]:
    """Noiseless angular velocity [rad/s] and specific force [m/s^2] in the imu frame."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    # Body rates from the ZYX Euler rates (euler_rates_to_body).
    wx = roll_rate - yaw_rate * sp
    wy = pitch_rate * cr + yaw_rate * cp * sr
    wz = yaw_rate * cp * cr - pitch_rate * sr
    # R^T (a_w + g_up) with a_w = Rz(yaw) (a_t, a_n, 0) + (0, 0, z_accel): the yaw cancels,
    # so f = Rx(roll)^T Ry(pitch)^T (a_t, a_n, z_accel + g).
    u0 = accel_forward * cp  # tangential
    u1 = speed * cp * yaw_rate  # centripetal, towards the turn centre (left)
    u2 = z_accel + GRAVITY
    v2 = sp * u0 + cp * u2
    fx = cp * u0 - sp * u2
    fy = cr * u1 + sr * v2
    fz = cr * v2 - sr * u1
    if c[_C_HAS_LEVER] != 0.0:
        rx, ry, rz = c[_C_LEVER], c[_C_LEVER + 1], c[_C_LEVER + 2]
        ax = roll_accel - yaw_accel * sp
        ay = pitch_accel * cr + yaw_accel * cp * sr
        az = yaw_accel * cp * cr - pitch_accel * sr
        # alpha x r + omega x (omega x r)
        cx, cy, cz = wy * rz - wz * ry, wz * rx - wx * rz, wx * ry - wy * rx
        fx += ay * rz - az * ry + wy * cz - wz * cy
        fy += az * rx - ax * rz + wz * cx - wx * cz
        fz += ax * ry - ay * rx + wx * cy - wy * cx
    if c[_C_MOUNT_IDENTITY] != 0.0:
        return wx, wy, wz, fx, fy, fz
    m = _C_MOUNT  # R_s^T v
    return (
        c[m] * wx + c[m + 3] * wy + c[m + 6] * wz,
        c[m + 1] * wx + c[m + 4] * wy + c[m + 7] * wz,
        c[m + 2] * wx + c[m + 5] * wy + c[m + 8] * wz,
        c[m] * fx + c[m + 3] * fy + c[m + 6] * fz,
        c[m + 1] * fx + c[m + 4] * fy + c[m + 7] * fz,
        c[m + 2] * fx + c[m + 5] * fy + c[m + 8] * fz,
    )


@numba.njit(cache=True)
def _attitude(
    c: NDArray[np.float64],
    s: NDArray[np.float64],
    stamp: float,
    gx: float,
    gy: float,
    gz: float,
    ax: float,
    ay: float,
    az: float,
) -> None:
    """Advance the attitude filter (module docstring) and its variances by one reading."""
    norm = math.sqrt(ax * ax + ay * ay + az * az)
    if s[_S_HAS_LAST] == 0.0:
        # Power-on: level from the accelerometer, heading from the reference.
        roll = math.atan2(ay, az)
        pitch = math.atan2(-ax, math.sqrt(ay * ay + az * az))
        q0 = _quat_rpy(roll, pitch, c[_C_REF_YAW])
        for k in range(4):
            s[_S_Q + k] = q0[k]
        s[_S_P] = c[_C_ACCEL_DIR_VAR]
        s[_S_D] = s[_S_D + 1] = 0.0
        s[_S_LAST] = stamp
        s[_S_HAS_LAST] = 1.0
        return
    dt = stamp - s[_S_LAST]
    s[_S_LAST] = stamp
    if dt <= 0.0:
        return
    qx, qy, qz, qw = s[_S_Q], s[_S_Q + 1], s[_S_Q + 2], s[_S_Q + 3]
    # Estimated "up" in the imu frame: the third row of R(q).
    vx = 2.0 * (qx * qz - qw * qy)
    vy = 2.0 * (qy * qz + qw * qx)
    vz = 1.0 - 2.0 * (qx * qx + qy * qy)
    ex = ey = ez = 0.0
    gain = 0.0
    if norm > 0.0:
        ux, uy, uz = ax / norm, ay / norm, az / norm
        ex, ey, ez = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        off = abs(norm - GRAVITY) / GRAVITY
        if off <= GATE_FULL:
            gain = c[_C_KP]
        elif off < GATE_NONE:
            gain = c[_C_KP] * (GATE_NONE - off) / (GATE_NONE - GATE_FULL)
    a = gain * dt
    if a > 1.0:  # a long gap (a dropout): at most the full correction
        a, gain = 1.0, 1.0 / dt
    # q <- q (x) exp(dt/2 (omega + k_P e))
    wx, wy, wz = gx + gain * ex, gy + gain * ey, gz + gain * ez
    angle = math.sqrt(wx * wx + wy * wy + wz * wz) * dt
    if angle > 0.0:
        k = math.sin(angle / 2.0) * dt / angle
        q = _quat_mul((qx, qy, qz, qw), (wx * k, wy * k, wz * k, math.cos(angle / 2.0)))
        n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
        for i in range(4):
            s[_S_Q + i] = q[i] / n
    # Tilt variance, and the dynamic error bound per axis of the reference frame (world-fixed:
    # the error does not turn with the body, so its bound must not either).
    b = 1.0 - a
    r = a * a * c[_C_ACCEL_DIR_VAR] + c[_C_GYRO_VAR_XY] * dt * dt
    s[_S_P] = b * b * s[_S_P] + r
    # Horizontal components of R(q) e (the innovation in the reference frame).
    e0 = (1.0 - 2.0 * (qy * qy + qz * qz)) * ex + 2.0 * (qx * qy - qw * qz) * ey
    e0 += 2.0 * (qx * qz + qw * qy) * ez
    e1 = 2.0 * (qx * qy + qw * qz) * ex + (1.0 - 2.0 * (qx * qx + qz * qz)) * ey
    e1 += 2.0 * (qy * qz - qw * qx) * ez
    s[_S_D] = b * s[_S_D] + a * abs(e0)
    s[_S_D + 1] = b * s[_S_D + 1] + a * abs(e1)
    elapsed = s[_S_ELAPSED] + dt
    s[_S_ELAPSED] = elapsed
    # Random walk of the white noise plus the (unknown) turn-on bias times the time.
    s[_S_YAW_VAR] = c[_C_GYRO_VAR_Z] * dt * elapsed + (c[_C_YAW_BIAS_SD] * elapsed) ** 2


@numba.njit(cache=True)
def _read(
    c: NDArray[np.float64],
    s: NDArray[np.float64],
    noise: NDArray[np.float64],
    out: NDArray[np.float64],
    stamp: float,
    roll: float,
    pitch: float,
    roll_rate: float,
    pitch_rate: float,
    yaw_rate: float,
    speed: float,
    accel_forward: float,
    z_accel: float,
    roll_accel: float,
    pitch_accel: float,
    yaw_accel: float,
    extra: bool,
    eg0: float,
    eg1: float,
    eg2: float,
    ea0: float,
    ea1: float,
    ea2: float,
) -> bool:
    """One reading into ``out``; True when the noise block is used up."""
    wx, wy, wz, fx, fy, fz = _motion(
        c, roll, pitch, roll_rate, pitch_rate, yaw_rate, speed, accel_forward, z_accel,
        roll_accel, pitch_accel, yaw_accel,
    )  # fmt: skip
    i = int(s[_S_NOISE_I])
    s[_S_NOISE_I] = i + 1
    g = _C_GYRO
    a = _C_ACCEL
    gx = wx + c[g] + c[g + 1] + c[g + 2] * noise[i, 0]
    gy = wy + c[g + 3] + c[g + 4] + c[g + 5] * noise[i, 1]
    gz = wz + c[g + 6] + c[g + 7] + c[g + 8] * noise[i, 2]
    ax = fx + c[a] + c[a + 1] + c[a + 2] * noise[i, 3]
    ay = fy + c[a + 3] + c[a + 4] + c[a + 5] * noise[i, 4]
    az = fz + c[a + 6] + c[a + 7] + c[a + 8] * noise[i, 5]
    if extra:
        gx, gy, gz = gx + eg0, gy + eg1, gz + eg2
        ax, ay, az = ax + ea0, ay + ea1, az + ea2
    _attitude(c, s, stamp, gx, gy, gz, ax, ay, az)
    out[_O_GYRO] = gx
    out[_O_GYRO + 1] = gy
    out[_O_GYRO + 2] = gz
    out[_O_ACCEL] = ax
    out[_O_ACCEL + 1] = ay
    out[_O_ACCEL + 2] = az
    out[_O_Q : _O_Q + 4] = s[_S_Q : _S_Q + 4]
    # Tilt: R^T diag(D0^2, D1^2, 0) R (the bound in the imu frame) + the isotropic terms.
    qx, qy, qz, qw = s[_S_Q], s[_S_Q + 1], s[_S_Q + 2], s[_S_Q + 3]
    d0, d1 = s[_S_D] * s[_S_D], s[_S_D + 1] * s[_S_D + 1]
    r00, r01 = 1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qw * qz)  # R row 0, cols 0, 1
    r10, r11 = 2.0 * (qx * qy + qw * qz), 1.0 - 2.0 * (qx * qx + qz * qz)  # R row 1
    tilt = s[_S_P] + c[_C_TILT_BIAS_VAR]
    out[_O_COV : _O_COV + 9] = 0.0
    out[_O_COV] = tilt + r00 * r00 * d0 + r10 * r10 * d1
    out[_O_COV + 1] = out[_O_COV + 3] = r00 * r01 * d0 + r10 * r11 * d1
    out[_O_COV + 4] = tilt + r01 * r01 * d0 + r11 * r11 * d1
    out[_O_COV + 8] = c[_C_HEADING_VAR] + s[_S_YAW_VAR]
    return i + 1 >= noise.shape[0]


class Imu:
    """Gyro + accelerometer + orientation of one IMU (see module docstring).

    A reading is one compiled kernel (``numba.njit``) over the state's scalars: it runs at
    100 Hz, and numpy's per-call overhead on 3-vectors cost more than the arithmetic.

    Args:
        spec: rate, mounting pose and per-axis noise (an ``ImuSpec``).
        rng: random generator; the turn-on biases and the reference heading are drawn here,
            once.
        reference_yaw: [rad] the heading the unit reports at power-on; None draws it uniformly
            from [-pi, pi) (the stack cannot know it, and the covariance says so).
        tilt_time_constant: [s] 1 / k_P of the attitude filter: longer trusts the gyro more
            (less tilt from manoeuvres, more from the gyro's bias).
    Raises:
        ValueError: ``tilt_time_constant`` not positive and finite.
    """

    NOISE_ROWS = 512  # readings' noise drawn per block, (rows, 6) standard normals

    def __init__(
        self,
        spec: ImuParams,
        rng: np.random.Generator,
        *,
        reference_yaw: float | None = None,
        tilt_time_constant: float = TILT_TIME_CONSTANT,
    ) -> None:
        if not (math.isfinite(tilt_time_constant) and tilt_time_constant > 0.0):
            raise ValueError(
                f"IMU '{spec.name}': tilt_time_constant {tilt_time_constant!r} s must be a "
                "positive number"
            )
        self.spec = spec
        self.rng = rng
        self.frame_id = spec.name
        pose = np.asarray(spec.pose, float)
        mount = pose[:3, :3]
        self.gyro_bias = np.array([gazebo_bias(n, rng) for n in spec.gyro])
        self.accel_bias = np.array([gazebo_bias(n, rng) for n in spec.accel])
        if reference_yaw is None:
            reference_yaw = float(rng.uniform(-math.pi, math.pi))
        self.reference_yaw = reference_yaw  # [rad] truth for tests; the stack never sees it
        gyro_sd = np.array([n.stddev for n in spec.gyro])
        accel_sd = np.array([n.stddev for n in spec.accel])
        gyro_bias_sd = np.array([math.hypot(n.bias_mean, n.bias_stddev) for n in spec.gyro])
        accel_bias_sd = np.array([math.hypot(n.bias_mean, n.bias_stddev) for n in spec.accel])
        c = np.zeros(_N_CONST)
        c[_C_LEVER : _C_LEVER + 3] = pose[:3, 3]
        c[_C_HAS_LEVER] = float(np.any(pose[:3, 3] != 0.0))
        c[_C_MOUNT_IDENTITY] = float(np.allclose(mount, np.eye(3), atol=1e-12, rtol=0.0))
        c[_C_MOUNT : _C_MOUNT + 9] = mount.ravel()
        for k, noise in enumerate(spec.gyro):
            c[_C_GYRO + 3 * k : _C_GYRO + 3 * k + 3] = self.gyro_bias[k], noise.mean, noise.stddev
        for k, noise in enumerate(spec.accel):
            c[_C_ACCEL + 3 * k : _C_ACCEL + 3 * k + 3] = (
                self.accel_bias[k], noise.mean, noise.stddev,
            )  # fmt: skip
        c[_C_KP] = 1.0 / tilt_time_constant
        c[_C_ACCEL_DIR_VAR] = float(np.mean(accel_sd[:2]) / GRAVITY) ** 2
        c[_C_GYRO_VAR_XY] = float(np.mean(gyro_sd[:2])) ** 2
        c[_C_GYRO_VAR_Z] = gyro_sd[2] ** 2
        c[_C_TILT_BIAS_VAR] = (float(np.max(gyro_bias_sd[:2])) * tilt_time_constant) ** 2 + (
            float(np.max(accel_bias_sd[:2])) / GRAVITY
        ) ** 2
        c[_C_YAW_BIAS_SD] = gyro_bias_sd[2]
        c[_C_HEADING_VAR] = math.pi**2 / 3.0
        c[_C_REF_YAW] = reference_yaw
        self._c = c
        self._gyro_cov = np.diag(gyro_sd**2).ravel()
        self._accel_cov = np.diag(accel_sd**2).ravel()
        self._s = np.zeros(_N_STATE)
        self._out = np.zeros(_N_OUT)
        self._noise = rng.standard_normal((self.NOISE_ROWS, 6))

    @property
    def yaw(self) -> float:
        """[rad] the heading the unit reports: the reference plus the integrated rate."""
        x, y, z, w = self._s[_S_Q : _S_Q + 4].tolist()
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    def true_motion(self, state: BodyState) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(angular velocity [rad/s], specific force [m/s^2]) in the imu frame, noiseless."""
        st = state
        wx, wy, wz, fx, fy, fz = _motion(
            self._c, st.roll, st.pitch, st.roll_rate, st.pitch_rate, st.yaw_rate, st.speed,
            st.accel_forward, st.z_accel, st.roll_accel, st.pitch_accel, st.yaw_accel,
        )  # fmt: skip
        return np.array((wx, wy, wz)), np.array((fx, fy, fz))

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
        st = state
        extra = extra_gyro_bias is not None or extra_accel_bias is not None
        eg = (0.0, 0.0, 0.0) if extra_gyro_bias is None else extra_gyro_bias.tolist()
        ea = (0.0, 0.0, 0.0) if extra_accel_bias is None else extra_accel_bias.tolist()
        used_up = _read(
            self._c, self._s, self._noise, self._out, stamp, st.roll, st.pitch, st.roll_rate,
            st.pitch_rate, st.yaw_rate, st.speed, st.accel_forward, st.z_accel, st.roll_accel,
            st.pitch_accel, st.yaw_accel, extra, *eg, *ea,
        )  # fmt: skip
        if used_up:
            self._noise = self.rng.standard_normal((self.NOISE_ROWS, 6))
            self._s[_S_NOISE_I] = 0.0
        o = self._out.copy()  # one buffer per reading; its fields are views of it
        return ImuReading(
            stamp=stamp,
            frame_id=self.frame_id,
            orientation=o[_O_Q : _O_Q + 4],
            angular_velocity=o[_O_GYRO : _O_GYRO + 3],
            linear_acceleration=o[_O_ACCEL : _O_ACCEL + 3],
            orientation_covariance=o[_O_COV : _O_COV + 9],
            angular_velocity_covariance=self._gyro_cov,
            linear_acceleration_covariance=self._accel_cov,
        )
