"""Differential-drive body dynamics with ground contact, wheel slip and tip-over detection.

Drive: the command is limited the way Gazebo's DiffDrive system does it (gz-math
``SpeedLimiter``: first the acceleration limit ``dv in [min_acc*dt, max_acc*dt]`` against the
previous limited command, then the velocity limit), separately for linear and angular speed;
the limited command sets both wheel speeds ``(v -+ w*b/2) / r`` and the wheels turn exactly as
commanded (encoders see that rotation).

Slip: the ground travel of each wheel is its rolling travel times ``(1 + n) * (1 - p)`` with
``n ~ N(0, slip_stddev)`` white per physics step and per wheel, and ``p`` the slip share of a
WheelSlipPatch under that wheel's contact point (``slip_of``). The planar pose integrates the
ground travel with the exact arc (as gz-math ``DiffDriveOdometry`` integrates encoder travel),
so odometry drifts from the truth by exactly the slip.

Ground contact (a kinematic model, no physics engine): four contact points in base_link, the
two wheels at ``(0, +-b/2)`` and a front and rear caster at ``x = box_x +- 0.4*length``. Their
ground heights (``ground.ground_height``) give the targets ``z = mean(wheel heights)``,
``roll = atan2(h_left - h_right, b)`` and ``pitch = atan2(h_rear - h_front, x_front - x_rear)``
(REP 103: positive pitch is nose down). The body follows the targets as a critically damped
second-order system (suspension/tyre compliance, natural frequency ``suspension_frequency``),
so a kerb gives a finite jolt the IMU sees instead of an infinite one. Body speed and yaw rate
as the IMU sees them are the wheels' rolling motion of the tick plus the slip's share of the
ground motion through a first-order lag of ``velocity_lag`` (compliance of the tyres), so the
white slip per tick does not show as accelerometer spikes while the gyro still integrates to
the heading (a lag on the whole motion made the integrated gyro trail the heading by
``velocity_lag`` times the yaw rate in every turn). Stalled wheels (a step, tipping over) stop
the body at once; the speeds the IMU sees then decay through the lag.

Steps and kerbs: a contact point whose ground rises by more than ``max_step`` between two ticks
is blocked: the robot does not climb it, the move of that tick is undone and the wheels stall
(speed 0; event ``blocked`` once per contact). The ground is looked up again only once a
contact may have moved ``ground_resolution`` (1 cm), so a step is found within 1 cm of its
edge. Rule for tipping over (event ``tipped``, after
which the robot stops and ignores commands):
  1. ``|roll| > max_roll`` or ``|pitch| > max_pitch`` of the body, or
  2. a contact point drops by more than ``max_step`` in one tick while ``|v| >= drop_tip_speed``
     (driving off a kerb edge at speed), or by more than ``2 * max_step`` at any speed.

Speed: one tick is a compiled kernel (``numba.njit``) over the state held in a float64 vector;
``BodyState`` is refreshed from it after every tick. On a ``Scene`` the kernel reads the scene's
height grid itself (``Scene.height_grid``, nearest cell as ``Scene.ground_height``); any
other ground is asked through ``ground_height`` between two kernel halves. The kernel also logs
each tick's cumulative encoder travel for the wheel odometry (``drain_encoders``).

References: gz-sim DiffDrive and gz-math SpeedLimiter / DiffDriveOdometry (Gazebo Harmonic);
Siegwart, Nourbakhsh, Scaramuzza, *Introduction to Autonomous Mobile Robots* (2011), 5.2.4
(odometry error from wheel slip).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geometry import pose_matrix, rpy_matrix

GRAVITY = 9.80665  # [m/s^2] standard gravity, as Gazebo's default <gravity>

CONTACT_NAMES = ("left wheel", "right wheel", "front caster", "rear caster")


class DriveParams(Protocol):
    """The drive fields of ``xiaomanlv_core.robot.DiffDriveSpec`` the dynamics read."""

    @property
    def wheel_separation(self) -> float: ...  # [m]
    @property
    def wheel_radius(self) -> float: ...  # [m]
    @property
    def max_velocity(self) -> float: ...  # [m/s]
    @property
    def min_velocity(self) -> float: ...  # [m/s] (negative: reverse)
    @property
    def max_angular_velocity(self) -> float: ...  # [rad/s]
    @property
    def max_linear_acceleration(self) -> float: ...  # [m/s^2]
    @property
    def min_linear_acceleration(self) -> float: ...  # [m/s^2] (negative: braking)
    @property
    def max_angular_acceleration(self) -> float: ...  # [rad/s^2]
    @property
    def slip_stddev(self) -> float: ...  # share of wheel travel


class BodyParams(Protocol):
    """The body fields of ``xiaomanlv_core.robot.BodySpec`` the dynamics read."""

    @property
    def length(self) -> float: ...  # [m]
    @property
    def box_pose(self) -> NDArray[np.float64]: ...  # 4x4 base_link <- box centre
    @property
    def max_roll(self) -> float: ...  # [rad]
    @property
    def max_pitch(self) -> float: ...  # [rad]
    @property
    def max_step(self) -> float: ...  # [m]


class Ground(Protocol):
    """What the dynamics need of ``xiaomanlv_sim.scene.Scene``."""

    def ground_height(self, xy: NDArray[np.float64]) -> NDArray[np.float64]: ...


SlipOf = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""(2, 2) world xy of the left and right wheel contact -> (2,) slip share in 0..1."""


@dataclass(frozen=True)
class DynamicsEvent:
    time: float  # [s] sim time
    kind: str  # "tipped" | "blocked"
    detail: str


@dataclass
class BodyState:
    """The true state of base_link in the world frame after the last tick.

    ``DiffDriveDynamics`` refreshes these fields after every tick from its kernel state; writing
    them changes nothing, except ``tipped = True``, which the next tick honours.
    """

    x: float = 0.0  # [m]
    y: float = 0.0  # [m]
    z: float = 0.0  # [m]
    roll: float = 0.0  # [rad]
    pitch: float = 0.0  # [rad]
    yaw: float = 0.0  # [rad]
    speed: float = 0.0  # [m/s] forward speed over ground (slip lag-filtered, as the IMU sees it)
    yaw_rate: float = 0.0  # [rad/s] (slip lag-filtered)
    roll_rate: float = 0.0  # [rad/s] Euler angle rates
    pitch_rate: float = 0.0  # [rad/s]
    z_rate: float = 0.0  # [m/s]
    z_accel: float = 0.0  # [m/s^2]
    accel_forward: float = 0.0  # [m/s^2] tangential acceleration (heading direction)
    roll_accel: float = 0.0  # [rad/s^2]
    pitch_accel: float = 0.0  # [rad/s^2]
    yaw_accel: float = 0.0  # [rad/s^2]
    left_travel: float = 0.0  # [m] cumulative rolling travel of the left wheel (encoder)
    right_travel: float = 0.0  # [m] cumulative rolling travel of the right wheel (encoder)
    tipped: bool = False
    blocked: bool = False

    def rotation(self) -> NDArray[np.float64]:
        """3x3 world <- base_link rotation, R = Rz(yaw) Ry(pitch) Rx(roll) (SDF/REP 103)."""
        return rpy_matrix(self.roll, self.pitch, self.yaw)

    def world_from_base(self) -> NDArray[np.float64]:
        """4x4 world <- base_link transform."""
        return pose_matrix(self.x, self.y, self.z, self.roll, self.pitch, self.yaw)

    def angular_velocity_body(self) -> NDArray[np.float64]:
        """[rad/s] angular velocity in base_link from the Euler angle rates (ZYX)."""
        return euler_rates_to_body(
            self.roll, self.pitch, self.roll_rate, self.pitch_rate, self.yaw_rate
        )

    def angular_acceleration_body(self) -> NDArray[np.float64]:
        """[rad/s^2] angular acceleration in base_link (Euler accelerations, small-angle terms
        of the rates' products dropped)."""
        return euler_rates_to_body(
            self.roll, self.pitch, self.roll_accel, self.pitch_accel, self.yaw_accel
        )

    def linear_acceleration_world(self) -> NDArray[np.float64]:
        """[m/s^2] acceleration of base_link in the world frame (tangential + centripetal +
        vertical), without gravity."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        cp = math.cos(self.pitch)
        a_t = self.accel_forward * cp
        a_n = self.speed * cp * self.yaw_rate  # centripetal, towards the turn centre (left)
        return np.array([a_t * c - a_n * s, a_t * s + a_n * c, self.z_accel])

    def velocity_world(self) -> NDArray[np.float64]:
        """[m/s] velocity of base_link in the world frame."""
        cp = math.cos(self.pitch)
        return np.array(
            [
                self.speed * cp * math.cos(self.yaw),
                self.speed * cp * math.sin(self.yaw),
                self.z_rate,
            ]
        )


def euler_rates_to_body(
    roll: float, pitch: float, droll: float, dpitch: float, dyaw: float
) -> NDArray[np.float64]:
    """Body angular velocity from ZYX Euler angle rates (Diebel 2006, eq. 2.21 inverse)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    return np.array(
        [
            droll - dyaw * sp,
            dpitch * cr + dyaw * cp * sr,
            dyaw * cp * cr - dpitch * sr,
        ]
    )


def speed_limit(
    target: float,
    previous: float,
    dt: float,
    min_vel: float,
    max_vel: float,
    min_acc: float,
    max_acc: float,
) -> float:
    """gz-math SpeedLimiter::Limit without jerk: acceleration clamp, then velocity clamp."""
    dv = min(max(target - previous, min_acc * dt), max_acc * dt)
    return min(max(previous + dv, min_vel), max_vel)


# ---- the compiled tick ------------------------------------------------------------------------
# State vector (DiffDriveDynamics._s): BodyState's float fields first, in their order.
_X, _Y, _Z, _ROLL, _PITCH, _YAW = 0, 1, 2, 3, 4, 5
_SPEED, _YAW_RATE, _ROLL_RATE, _PITCH_RATE, _Z_RATE, _Z_ACCEL = 6, 7, 8, 9, 10, 11
_ACCEL_FWD, _ROLL_ACCEL, _PITCH_ACCEL, _YAW_ACCEL, _LEFT, _RIGHT = 12, 13, 14, 15, 16, 17
_BLOCKED = 18  # 1.0 while a step blocks the robot
_N_SYNC = 19  # s[:_N_SYNC] is copied into BodyState after every tick
_TIPPED = 19
_V_CMD, _W_CMD, _CMD_V, _CMD_W = 20, 21, 22, 23  # limited command, target command
_QX, _QY, _QYAW = 24, 25, 26  # pose of the last ground lookup
_H = 27  # 27..30: ground heights under the four contacts at that lookup
_BLOCKED_MASK, _BLOCKED_AT_X, _BLOCKED_AT_Y = 31, 32, 33  # contacts a step blocks, and where
_NOISE_I = 34  # next row of the slip noise block
_TICKS = 35  # ticks stepped (encoder log stamps are _TICKS / rate)
_ENC_N = 36  # encoder samples logged since the last drain
_NX, _NY, _NYAW, _ENC_L, _ENC_R, _DS, _DTH = 37, 38, 39, 40, 41, 42, 43  # the move being made
_OUT_MASK, _OUT_VALUE, _OUT_CONTACT, _OUT_SPEED = 44, 45, 46, 47  # event details
_CDS, _CDTH = 48, 49  # the move as the wheels turned it, without slip
_LAG_V, _LAG_W = 50, 51  # the slip's share of speed and yaw rate, through the lag
_N_STATE = 52

# Parameter vector (DiffDriveDynamics._p).
_P_DT, _P_RATE, _P_W2, _P_DAMP, _P_LAG_K, _P_DROP_TIP, _P_RES, _P_REACH = 0, 1, 2, 3, 4, 5, 6, 7
_P_B, _P_HALF, _P_MIN_V, _P_MAX_V, _P_MIN_A_DT, _P_MAX_A_DT = 8, 9, 10, 11, 12, 13
_P_MIN_W, _P_MAX_W, _P_MIN_DW_DT, _P_MAX_DW_DT, _P_SLIP_SD = 14, 15, 16, 17, 18
_P_MAX_STEP, _P_MAX_ROLL, _P_MAX_PITCH, _P_CASTER_DX = 19, 20, 21, 22
_P_CONTACTS = 23  # 23..30: x, y of the four contacts in base_link
_N_PARAMS = 31

# Kernel return codes: the event of the tick, plus flags.
_EV_NONE, _EV_BLOCKED, _EV_TIP_DROP, _EV_TIP_TILT = 0, 1, 2, 3
_EV_MASK = 7
_NEED_NOISE = 8  # the slip noise block is used up: draw the next one

# Height grid parameters (_height_grid_of).
_G_OX, _G_OY, _G_CELL, _G_LIMX, _G_LIMY, _G_SHIFT = 0, 1, 2, 3, 4, 5


@numba.njit(cache=True)
def _first_max(a: float, b: float) -> float:
    return b if b > a else a  # Python's max(a, b)


@numba.njit(cache=True)
def _first_min(a: float, b: float) -> float:
    return b if b < a else a  # Python's min(a, b)


@numba.njit(cache=True)
def _limit(
    target: float,
    previous: float,
    min_vel: float,
    max_vel: float,
    min_dv: float,
    max_dv: float,
) -> float:
    """speed_limit with the acceleration bounds already times dt."""
    dv = _first_min(_first_max(target - previous, min_dv), max_dv)
    return _first_min(_first_max(previous + dv, min_vel), max_vel)


@numba.njit(cache=True)
def _arc(x: float, y: float, yaw: float, ds: float, dth: float) -> tuple[float, float, float]:
    """Exact integration of a circular arc (gz-math DiffDriveOdometry::IntegrateExact), with
    the second-order Runge-Kutta step for near-straight motion. The odometry keeps its own copy
    (numba's cache does not see changes in another module's kernels);
    test_without_slip_odometry_equals_the_truth holds the two together."""
    if abs(dth) < 1e-6:
        mid = yaw + 0.5 * dth
        return x + ds * math.cos(mid), y + ds * math.sin(mid), yaw + dth
    r = ds / dth
    new = yaw + dth
    return x + r * (math.sin(new) - math.sin(yaw)), y - r * (math.cos(new) - math.cos(yaw)), new


@numba.njit(cache=True)
def _relax(
    s: NDArray[np.float64],
    p: NDArray[np.float64],
    h0: float,
    h1: float,
    h2: float,
    h3: float,
    moving: bool,
) -> None:
    """z/roll/pitch follow the ground heights h (critically damped). Speed and yaw rate: the
    wheels' rolling motion of this tick plus the slip's share through the lag; stalled (not
    ``moving``), the whole of them decays through the lag."""
    dt = p[_P_DT]
    w2 = p[_P_W2]
    damp = p[_P_DAMP]
    z_t = 0.5 * (h0 + h1)
    roll_t = math.atan2(h0 - h1, p[_P_B])
    pitch_t = math.atan2(h3 - h2, p[_P_CASTER_DX])
    az = w2 * (z_t - s[_Z]) - damp * s[_Z_RATE]
    ar = w2 * (roll_t - s[_ROLL]) - damp * s[_ROLL_RATE]
    ap = w2 * (pitch_t - s[_PITCH]) - damp * s[_PITCH_RATE]
    s[_Z_RATE] += az * dt
    s[_ROLL_RATE] += ar * dt
    s[_PITCH_RATE] += ap * dt
    s[_Z] += s[_Z_RATE] * dt
    s[_ROLL] += s[_ROLL_RATE] * dt
    s[_PITCH] += s[_PITCH_RATE] * dt
    s[_Z_ACCEL] = az
    s[_ROLL_ACCEL] = ar
    s[_PITCH_ACCEL] = ap
    k = p[_P_LAG_K]
    old_speed = s[_SPEED]
    old_rate = s[_YAW_RATE]
    if moving:
        rolled_v = s[_CDS] / dt
        rolled_w = s[_CDTH] / dt
        lag_v = s[_LAG_V] + k * ((s[_DS] / dt - rolled_v) - s[_LAG_V])
        lag_w = s[_LAG_W] + k * ((s[_DTH] / dt - rolled_w) - s[_LAG_W])
        new_speed = rolled_v + lag_v
        new_rate = rolled_w + lag_w
    else:
        lag_v = new_speed = old_speed + k * (0.0 - old_speed)
        lag_w = new_rate = old_rate + k * (0.0 - old_rate)
    s[_LAG_V] = lag_v
    s[_LAG_W] = lag_w
    s[_ACCEL_FWD] = (new_speed - old_speed) / dt
    s[_YAW_ACCEL] = (new_rate - old_rate) / dt
    s[_SPEED] = new_speed
    s[_YAW_RATE] = new_rate


@numba.njit(cache=True)
def _advance(
    s: NDArray[np.float64],
    p: NDArray[np.float64],
    noise: NDArray[np.float64],
    p_l: float,
    p_r: float,
) -> bool:
    """First half of a tick: drive limits, slip and the arc; the move is left in s[_NX:_DTH].
    True when a contact may have moved ``ground_resolution``: look the ground up again."""
    if s[_TIPPED] != 0.0:
        return False
    dt = p[_P_DT]
    v = _limit(s[_CMD_V], s[_V_CMD], p[_P_MIN_V], p[_P_MAX_V], p[_P_MIN_A_DT], p[_P_MAX_A_DT])
    w = _limit(s[_CMD_W], s[_W_CMD], p[_P_MIN_W], p[_P_MAX_W], p[_P_MIN_DW_DT], p[_P_MAX_DW_DT])
    s[_V_CMD] = v
    s[_W_CMD] = w
    half = p[_P_HALF]
    enc_l = (v - w * half) * dt
    enc_r = (v + w * half) * dt
    i = int(s[_NOISE_I])
    s[_NOISE_I] = i + 1
    sd = p[_P_SLIP_SD]
    n_l = noise[i, 0] * sd
    n_r = noise[i, 1] * sd
    g_l = enc_l * (1.0 + n_l) * (1.0 - p_l)
    g_r = enc_r * (1.0 + n_r) * (1.0 - p_r)
    cp = math.cos(s[_PITCH])
    ds = 0.5 * (g_l + g_r) * cp
    dth = (g_r - g_l) / p[_P_B]
    s[_CDS] = 0.5 * (enc_l + enc_r) * cp
    s[_CDTH] = (enc_r - enc_l) / p[_P_B]
    x, y, yaw = _arc(s[_X], s[_Y], s[_YAW], ds, dth)
    s[_NX] = x
    s[_NY] = y
    s[_NYAW] = yaw
    s[_ENC_L] = enc_l
    s[_ENC_R] = enc_r
    s[_DS] = ds
    s[_DTH] = dth
    moved = math.hypot(x - s[_QX], y - s[_QY]) + abs(yaw - s[_QYAW]) * p[_P_REACH]
    return moved >= p[_P_RES]


@numba.njit(cache=True)
def _settle(
    s: NDArray[np.float64],
    p: NDArray[np.float64],
    noise_rows: int,
    log: NDArray[np.float64],
    looked: bool,
    h0: float,
    h1: float,
    h2: float,
    h3: float,
) -> int:
    """Second half of a tick, with the ground under the moved contacts when ``looked``: steps
    block, drops and tilt tip, the body relaxes towards the ground; logs the encoders."""
    code = _EV_NONE
    if s[_TIPPED] != 0.0:
        s[_V_CMD] = 0.0
        s[_W_CMD] = 0.0
        _relax(s, p, s[_H], s[_H + 1], s[_H + 2], s[_H + 3], False)
    else:
        if looked:
            c0 = h0 - s[_H]
            c1 = h1 - s[_H + 1]
            c2 = h2 - s[_H + 2]
            c3 = h3 - s[_H + 3]
        else:
            c0 = c1 = c2 = c3 = 0.0
        v_abs = abs(s[_V_CMD])
        step = p[_P_MAX_STEP]
        rises = 0
        rise = -math.inf
        if c0 > step:
            rises |= 1
            rise = _first_max(rise, c0)
        if c1 > step:
            rises |= 2
            rise = _first_max(rise, c1)
        if c2 > step:
            rises |= 4
            rise = _first_max(rise, c2)
        if c3 > step:
            rises |= 8
            rise = _first_max(rise, c3)
        if rises:
            # The robot does not climb it: undo the move, the wheels stall.
            blocked = int(s[_BLOCKED_MASK])
            new = rises & ~blocked
            s[_BLOCKED_MASK] = blocked | rises
            s[_BLOCKED_AT_X] = s[_X]
            s[_BLOCKED_AT_Y] = s[_Y]
            if new:
                s[_OUT_MASK] = new
                s[_OUT_VALUE] = rise
                code = _EV_BLOCKED
            s[_V_CMD] = 0.0
            s[_W_CMD] = 0.0
            s[_BLOCKED] = 1.0
            _relax(s, p, s[_H], s[_H + 1], s[_H + 2], s[_H + 3], False)
        else:
            s[_BLOCKED] = 0.0
            x = s[_NX]
            y = s[_NY]
            away = math.hypot(x - s[_BLOCKED_AT_X], y - s[_BLOCKED_AT_Y])
            if s[_BLOCKED_MASK] != 0.0 and away > 0.05:
                s[_BLOCKED_MASK] = 0.0  # moved away from the step: report a new one again
            worst = -c0
            worst_i = 0
            if -c1 > worst:
                worst, worst_i = -c1, 1
            if -c2 > worst:
                worst, worst_i = -c2, 2
            if -c3 > worst:
                worst, worst_i = -c3, 3
            s[_LEFT] += s[_ENC_L]
            s[_RIGHT] += s[_ENC_R]
            yaw = (s[_NYAW] + math.pi) % (2.0 * math.pi) - math.pi
            s[_X] = x
            s[_Y] = y
            s[_YAW] = yaw
            if looked:
                s[_H] = h0
                s[_H + 1] = h1
                s[_H + 2] = h2
                s[_H + 3] = h3
                s[_QX] = x
                s[_QY] = y
                s[_QYAW] = yaw
            _relax(s, p, s[_H], s[_H + 1], s[_H + 2], s[_H + 3], True)
            tip = _EV_NONE
            if worst > 2.0 * step or (worst > step and v_abs >= p[_P_DROP_TIP]):
                tip = _EV_TIP_DROP
                s[_OUT_CONTACT] = worst_i
                s[_OUT_VALUE] = worst
                s[_OUT_SPEED] = v_abs
            elif abs(s[_ROLL]) > p[_P_MAX_ROLL] or abs(s[_PITCH]) > p[_P_MAX_PITCH]:
                tip = _EV_TIP_TILT
            if tip != _EV_NONE:
                code = tip
                s[_TIPPED] = 1.0
                s[_V_CMD] = 0.0
                s[_W_CMD] = 0.0
                s[_SPEED] = 0.0
                s[_YAW_RATE] = 0.0
                s[_ACCEL_FWD] = 0.0
                s[_YAW_ACCEL] = 0.0
                s[_LAG_V] = 0.0
                s[_LAG_W] = 0.0
        if s[_NOISE_I] >= noise_rows:
            code |= _NEED_NOISE
    # Encoder log for the odometry: cumulative travel and the time of this tick.
    ticks = s[_TICKS] + 1.0
    s[_TICKS] = ticks
    n = int(s[_ENC_N])
    if n < log.shape[0]:
        log[n, 0] = s[_LEFT]
        log[n, 1] = s[_RIGHT]
        log[n, 2] = ticks / p[_P_RATE]
    s[_ENC_N] = n + 1
    return code


@numba.njit(cache=True)
def _grid_height(
    x: float,
    y: float,
    index: NDArray[np.int32],
    fine: NDArray[np.float32],
    g: NDArray[np.float64],
) -> float:
    """Nearest cell of the two-level height grid: what ``Scene.ground_height`` computes."""
    cx = math.floor((x - g[_G_OX]) / g[_G_CELL])
    cy = math.floor((y - g[_G_OY]) / g[_G_CELL])
    cx = min(max(cx, 0), int(g[_G_LIMX]))
    cy = min(max(cy, 0), int(g[_G_LIMY]))
    shift = int(g[_G_SHIFT])
    mask = (1 << shift) - 1
    return float(fine[index[cy >> shift, cx >> shift], cy & mask, cx & mask])


@numba.njit(cache=True)
def _tick_on_grid(
    s: NDArray[np.float64],
    p: NDArray[np.float64],
    noise: NDArray[np.float64],
    log: NDArray[np.float64],
    p_l: float,
    p_r: float,
    index: NDArray[np.int32],
    fine: NDArray[np.float32],
    g: NDArray[np.float64],
) -> int:
    """One whole tick on a height grid (both halves and the ground lookup between them)."""
    if not _advance(s, p, noise, p_l, p_r):
        return _settle(s, p, noise.shape[0], log, False, 0.0, 0.0, 0.0, 0.0)
    x = s[_NX]
    y = s[_NY]
    c = math.cos(s[_NYAW])
    sn = math.sin(s[_NYAW])
    k = _P_CONTACTS
    h0 = _grid_height(p[k] * c - p[k + 1] * sn + x, p[k] * sn + p[k + 1] * c + y, index, fine, g)
    k += 2
    h1 = _grid_height(p[k] * c - p[k + 1] * sn + x, p[k] * sn + p[k + 1] * c + y, index, fine, g)
    k += 2
    h2 = _grid_height(p[k] * c - p[k + 1] * sn + x, p[k] * sn + p[k + 1] * c + y, index, fine, g)
    k += 2
    h3 = _grid_height(p[k] * c - p[k + 1] * sn + x, p[k] * sn + p[k + 1] * c + y, index, fine, g)
    return _settle(s, p, noise.shape[0], log, True, h0, h1, h2, h3)


def _height_grid_of(
    ground: Ground,
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float64]] | None:
    """The arrays of a ``Scene``'s height grid (``Scene.height_grid``: origin, cell, tile
    index, fine tiles, limit) for the kernel to read directly, so a tick needs no Python call
    to look the ground up. The kernel keeps its own copy of the nearest-cell arithmetic
    (``_grid_height``, as ``scene.height_at``) instead of calling scene's compiled function:
    numba's cache would not notice a change to a function another file defines.
    ``test_kernel_height_lookup_matches_scene_ground_height`` holds the two together. Any other
    ground (or a grid of another layout) gives None and is asked through ``ground_height``.
    """
    grid = getattr(ground, "height_grid", None)
    names = ("origin", "cell", "index", "fine", "limit")
    if grid is None or not all(hasattr(grid, n) for n in names):
        return None
    index = np.ascontiguousarray(grid.index, dtype=np.int32)
    fine = np.ascontiguousarray(grid.fine, dtype=np.float32)
    tile = fine.shape[1] if fine.ndim == 3 else 0
    shift = tile.bit_length() - 1
    if index.ndim != 2 or tile < 1 or fine.shape[2] != tile or (1 << shift) != tile:
        return None
    origin = np.asarray(grid.origin, dtype=np.float64)
    limit = np.asarray(grid.limit)
    par = np.array(
        [origin[0], origin[1], float(grid.cell), float(limit[0]), float(limit[1]), float(shift)]
    )
    return index, fine, par


class DiffDriveDynamics:
    """The true motion of the robot, stepped at the physics rate (see module docstring).

    Args:
        drive: wheel geometry, limits and slip (a ``DiffDriveSpec``).
        body: footprint and tip limits (a ``BodySpec``).
        ground: gives the ground height under the contact points (a ``Scene``).
        rng: random generator for the slip noise (deterministic per seed).
        rate: [Hz] physics rate.
        start: (x, y, yaw) [m, m, rad] start pose in the world; z, roll, pitch come from the
            ground under it.
        suspension_frequency: [Hz] natural frequency of z/roll/pitch following the ground.
        velocity_lag: [s] time constant of the body speed following the wheels' ground speed.
        drop_tip_speed: [m/s] speed at or above which a drop deeper than max_step tips.
        ground_resolution: [m] the ground under the contacts is looked up again once one of
            them may have moved this far (the height grid's cells are 0.05 m).
        encoder_log: how many ticks of encoder samples ``drain_encoders`` can hold (0: none
            are kept).
    Raises:
        ValueError: a rate that is not > 0.
    """

    NOISE_ROWS = 1024  # slip noise drawn per block, (rows, 2) standard normals

    def __init__(
        self,
        drive: DriveParams,
        body: BodyParams,
        ground: Ground,
        rng: np.random.Generator,
        *,
        rate: float = 200.0,
        start: tuple[float, float, float] = (0.0, 0.0, 0.0),
        suspension_frequency: float = 4.0,
        velocity_lag: float = 0.05,
        drop_tip_speed: float = 0.5,
        ground_resolution: float = 0.01,
        encoder_log: int = 0,
    ) -> None:
        if rate <= 0.0:
            raise ValueError(f"physics rate {rate} Hz must be > 0")
        self.drive = drive
        self.body = body
        self.ground = ground
        self.rng = rng
        self.dt = 1.0 / rate
        self.omega_n = 2.0 * math.pi * suspension_frequency
        self.velocity_lag = velocity_lag
        self.drop_tip_speed = drop_tip_speed
        self.ground_resolution = ground_resolution
        half = drive.wheel_separation / 2.0
        box_x = float(body.box_pose[0, 3])
        self._contacts_body = np.array(
            [
                [0.0, half],  # left wheel
                [0.0, -half],  # right wheel
                [box_x + 0.4 * body.length, 0.0],  # front caster
                [box_x - 0.4 * body.length, 0.0],  # rear caster
            ]
        )
        # DiffDriveSpec gives min_angular_* as 0 when the file has none: then symmetric.
        min_w = float(getattr(drive, "min_angular_velocity", 0.0))
        min_dw = float(getattr(drive, "min_angular_acceleration", 0.0))
        min_w = min_w if min_w < 0.0 else -drive.max_angular_velocity
        min_dw = min_dw if min_dw < 0.0 else -drive.max_angular_acceleration
        dt = self.dt
        p = np.zeros(_N_PARAMS)
        p[_P_DT], p[_P_RATE] = dt, rate
        p[_P_W2], p[_P_DAMP] = self.omega_n * self.omega_n, 2.0 * self.omega_n
        p[_P_LAG_K] = dt / (velocity_lag + dt)
        p[_P_DROP_TIP], p[_P_RES] = drop_tip_speed, ground_resolution
        p[_P_REACH] = float(np.max(np.hypot(*self._contacts_body.T)))
        p[_P_B], p[_P_HALF] = drive.wheel_separation, half
        p[_P_MIN_V], p[_P_MAX_V] = drive.min_velocity, drive.max_velocity
        p[_P_MIN_A_DT] = drive.min_linear_acceleration * dt
        p[_P_MAX_A_DT] = drive.max_linear_acceleration * dt
        p[_P_MIN_W], p[_P_MAX_W] = min_w, drive.max_angular_velocity
        p[_P_MIN_DW_DT], p[_P_MAX_DW_DT] = min_dw * dt, drive.max_angular_acceleration * dt
        p[_P_SLIP_SD] = drive.slip_stddev
        p[_P_MAX_STEP], p[_P_MAX_ROLL], p[_P_MAX_PITCH] = (
            body.max_step, body.max_roll, body.max_pitch,
        )  # fmt: skip
        p[_P_CASTER_DX] = float(self._contacts_body[2, 0] - self._contacts_body[3, 0])
        p[_P_CONTACTS : _P_CONTACTS + 8] = self._contacts_body.ravel()
        self._p = p
        self._grid = _height_grid_of(ground)
        self._noise = rng.normal(0.0, 1.0, size=(self.NOISE_ROWS, 2))
        self._log = np.zeros((max(0, encoder_log), 3))
        self.time = 0.0
        x, y, yaw = start
        s = np.zeros(_N_STATE)
        s[_X], s[_Y], s[_YAW] = x, y, yaw
        s[_QX], s[_QY], s[_QYAW] = x, y, yaw
        heights = np.asarray(ground.ground_height(self.contact_points(x, y, yaw)), float)
        s[_H : _H + 4] = heights
        hl, hr, hf, hb = (float(v) for v in heights)
        s[_Z] = 0.5 * (hl + hr)
        s[_ROLL] = math.atan2(hl - hr, drive.wheel_separation)
        s[_PITCH] = math.atan2(hb - hf, p[_P_CASTER_DX])
        self._s = s
        self._tipped = False
        self.state = BodyState()
        self._sync()

    # ---- geometry -------------------------------------------------------------------------
    def contact_points(self, x: float, y: float, yaw: float) -> NDArray[np.float64]:
        """(4, 2) world xy of left wheel, right wheel, front and rear caster contacts."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s], [s, c]])
        out: NDArray[np.float64] = self._contacts_body @ rot.T + np.array([x, y])
        return out

    # ---- commands -------------------------------------------------------------------------
    def set_command(self, linear: float, angular: float) -> None:
        """Target body speeds [m/s], [rad/s]; limited each tick as DiffDrive does."""
        self._s[_CMD_V] = float(linear)
        self._s[_CMD_W] = float(angular)

    @property
    def cmd(self) -> tuple[float, float]:
        """The target (v [m/s], w [rad/s]) of the last set_command."""
        return float(self._s[_CMD_V]), float(self._s[_CMD_W])

    @property
    def v_cmd(self) -> float:
        """[m/s] the limited linear command of the last tick (what the wheels turn at)."""
        return float(self._s[_V_CMD])

    @property
    def w_cmd(self) -> float:
        """[rad/s] the limited angular command of the last tick."""
        return float(self._s[_W_CMD])

    # ---- one tick -------------------------------------------------------------------------
    def step(self, slip_of: SlipOf | None = None) -> list[DynamicsEvent]:
        """Advance one physics tick; returns the events it raised."""
        s = self._s
        self.time += self.dt
        st = self.state
        if st.tipped and not self._tipped:  # tipped from outside (a test, an operator)
            s[_TIPPED] = 1.0
            self._tipped = True
        p_l = p_r = 0.0
        if slip_of is not None and not self._tipped:
            p = slip_of(self.contact_points(st.x, st.y, st.yaw)[:2])
            p_l, p_r = float(p[0]), float(p[1])
        grid = self._grid
        if grid is not None:
            code = _tick_on_grid(s, self._p, self._noise, self._log, p_l, p_r, *grid)
        elif _advance(s, self._p, self._noise, p_l, p_r):
            xy = self.contact_points(float(s[_NX]), float(s[_NY]), float(s[_NYAW]))
            h = np.asarray(self.ground.ground_height(xy), float)
            code = _settle(s, self._p, len(self._noise), self._log, True, *h.tolist())
        else:
            code = _settle(s, self._p, len(self._noise), self._log, False, 0.0, 0.0, 0.0, 0.0)
        self._sync()
        if code:
            return self._events(code)
        return []

    def teleport(self, x: float, y: float, yaw: float) -> None:
        """Put the body at (x [m], y [m], yaw [rad]) at rest on the ground there, as a person
        who lifts the robot and sets it down elsewhere would (the kidnapped robot): the wheels
        do not turn, so the encoders and the odometry notice nothing. The command is kept."""
        s = self._s
        heights = np.asarray(self.ground.ground_height(self.contact_points(x, y, yaw)), float)
        hl, hr, hf, hb = (float(v) for v in heights)
        s[_X], s[_Y], s[_YAW] = x, y, yaw
        s[_QX], s[_QY], s[_QYAW] = x, y, yaw
        s[_H : _H + 4] = heights
        s[_Z] = 0.5 * (hl + hr)
        s[_ROLL] = math.atan2(hl - hr, self.drive.wheel_separation)
        s[_PITCH] = math.atan2(hb - hf, self._p[_P_CASTER_DX])
        for i in (_SPEED, _YAW_RATE, _ROLL_RATE, _PITCH_RATE, _Z_RATE, _Z_ACCEL, _ACCEL_FWD):
            s[i] = 0.0
        for i in (_ROLL_ACCEL, _PITCH_ACCEL, _YAW_ACCEL, _V_CMD, _W_CMD, _LAG_V, _LAG_W):
            s[i] = 0.0
        s[_BLOCKED] = s[_BLOCKED_MASK] = 0.0
        self._sync()

    def drain_encoders(self) -> NDArray[np.float64]:
        """(n, 3) encoder samples logged since the last drain, one per tick: cumulative rolling
        travel of the left and right wheel [m] and the tick's time ``ticks / rate`` [s].

        The returned array is reused by the next ticks: consume it before stepping again.

        Raises:
            ValueError: more ticks than ``encoder_log`` since the last drain (samples lost).
        """
        s = self._s
        n = int(s[_ENC_N])
        if n > len(self._log):
            raise ValueError(
                f"encoder log overflow: {n} ticks since the last drain, room for {len(self._log)}"
            )
        s[_ENC_N] = 0.0
        return self._log[:n]

    def _sync(self) -> None:
        """BodyState from the kernel state."""
        st = self.state
        (
            st.x, st.y, st.z, st.roll, st.pitch, st.yaw, st.speed, st.yaw_rate, st.roll_rate,
            st.pitch_rate, st.z_rate, st.z_accel, st.accel_forward, st.roll_accel,
            st.pitch_accel, st.yaw_accel, st.left_travel, st.right_travel, blocked,
        ) = self._s[:_N_SYNC].tolist()  # fmt: skip
        st.blocked = blocked != 0.0

    def _events(self, code: int) -> list[DynamicsEvent]:
        s = self._s
        if code & _NEED_NOISE:
            self._noise = self.rng.normal(0.0, 1.0, size=(self.NOISE_ROWS, 2))
            s[_NOISE_I] = 0.0
        kind = code & _EV_MASK
        st = self.state
        if kind == _EV_BLOCKED:
            new = int(s[_OUT_MASK])
            names = ", ".join(n for i, n in enumerate(CONTACT_NAMES) if new & (1 << i))
            detail = f"{names}: step {float(s[_OUT_VALUE]):.3f} m"
            return [DynamicsEvent(self.time, "blocked", detail)]
        if kind in (_EV_TIP_DROP, _EV_TIP_TILT):
            self._tipped = st.tipped = True
            if kind == _EV_TIP_DROP:
                name = CONTACT_NAMES[int(s[_OUT_CONTACT])]
                worst, speed = float(s[_OUT_VALUE]), float(s[_OUT_SPEED])
                detail = f"{name} dropped {worst:.3f} m at {speed:.2f} m/s"
            else:
                detail = f"roll {st.roll:.3f} rad, pitch {st.pitch:.3f} rad"
            return [DynamicsEvent(self.time, "tipped", detail)]
        return []
