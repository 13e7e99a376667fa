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
as the IMU sees them follow the ground speed through a first-order lag of ``velocity_lag``
(compliance of the tyres), so the white slip per tick does not show as accelerometer spikes.

Steps and kerbs: a contact point whose ground rises by more than ``max_step`` between two ticks
is blocked: the robot does not climb it, the move of that tick is undone and the wheels stall
(speed 0; event ``blocked`` once per contact). The ground is looked up again only once a
contact may have moved ``ground_resolution`` (1 cm), so a step is found within 1 cm of its
edge. Rule for tipping over (event ``tipped``, after
which the robot stops and ignores commands):
  1. ``|roll| > max_roll`` or ``|pitch| > max_pitch`` of the body, or
  2. a contact point drops by more than ``max_step`` in one tick while ``|v| >= drop_tip_speed``
     (driving off a kerb edge at speed), or by more than ``2 * max_step`` at any speed.

References: gz-sim DiffDrive and gz-math SpeedLimiter / DiffDriveOdometry (Gazebo Harmonic);
Siegwart, Nourbakhsh, Scaramuzza, *Introduction to Autonomous Mobile Robots* (2011), 5.2.4
(odometry error from wheel slip).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

GRAVITY = 9.80665  # [m/s^2] standard gravity, as Gazebo's default <gravity>


class DriveParams(Protocol):
    """The drive fields of ``xiaomanlv_sim.robot.DiffDriveSpec`` the dynamics read."""

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
    """The body fields of ``xiaomanlv_sim.robot.BodySpec`` the dynamics read."""

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
    """The true state of base_link in the world frame after the last tick."""

    x: float = 0.0  # [m]
    y: float = 0.0  # [m]
    z: float = 0.0  # [m]
    roll: float = 0.0  # [rad]
    pitch: float = 0.0  # [rad]
    yaw: float = 0.0  # [rad]
    speed: float = 0.0  # [m/s] forward speed over ground (lag-filtered, as the IMU sees it)
    yaw_rate: float = 0.0  # [rad/s] (lag-filtered)
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
        out = np.eye(4)
        out[:3, :3] = self.rotation()
        out[:3, 3] = (self.x, self.y, self.z)
        return out

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


def rpy_matrix(roll: float, pitch: float, yaw: float) -> NDArray[np.float64]:
    """3x3 rotation Rz(yaw) Ry(pitch) Rx(roll).

    Written out with ``math`` because it runs at the physics rate: scipy's Rotation costs
    ~20 us per construction, this ~2 us (bench/sim_speed.py).
    """
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
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
    """

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
        self._contact_names = ("left wheel", "right wheel", "front caster", "rear caster")
        # DiffDriveSpec gives min_angular_* as 0 when the file has none: then symmetric.
        min_w = float(getattr(drive, "min_angular_velocity", 0.0))
        min_dw = float(getattr(drive, "min_angular_acceleration", 0.0))
        self._min_w = min_w if min_w < 0.0 else -drive.max_angular_velocity
        self._min_dw = min_dw if min_dw < 0.0 else -drive.max_angular_acceleration
        self.cmd = (0.0, 0.0)  # target (v [m/s], w [rad/s])
        self.v_cmd = 0.0  # [m/s] limited command
        self.w_cmd = 0.0  # [rad/s] limited command
        self.time = 0.0
        self._noise = np.empty((0, 2))
        self._noise_i = 0
        x, y, yaw = start
        self.state = BodyState(x=x, y=y, yaw=yaw)
        self.ground_resolution = ground_resolution
        self._reach = float(np.max(np.hypot(*self._contacts_body.T)))
        self._qx, self._qy, self._qyaw = x, y, yaw  # pose of the last ground query
        self._heights = self._ground_under(x, y, yaw)
        z, roll, pitch = self._targets(self._heights)
        self.state.z, self.state.roll, self.state.pitch = z, roll, pitch
        self._blocked_by: set[int] = set()
        self._blocked_at = (x, y)

    # ---- geometry -------------------------------------------------------------------------
    def contact_points(self, x: float, y: float, yaw: float) -> NDArray[np.float64]:
        """(4, 2) world xy of left wheel, right wheel, front and rear caster contacts."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s], [s, c]])
        out: NDArray[np.float64] = self._contacts_body @ rot.T + np.array([x, y])
        return out

    def _ground_under(self, x: float, y: float, yaw: float) -> NDArray[np.float64]:
        return np.asarray(self.ground.ground_height(self.contact_points(x, y, yaw)), float)

    def _targets(self, h: NDArray[np.float64]) -> tuple[float, float, float]:
        hl, hr, hf, hb = (float(v) for v in h)
        dx = float(self._contacts_body[2, 0] - self._contacts_body[3, 0])
        z = 0.5 * (hl + hr)
        roll = math.atan2(hl - hr, self.drive.wheel_separation)
        pitch = math.atan2(hb - hf, dx)
        return z, roll, pitch

    # ---- commands -------------------------------------------------------------------------
    def set_command(self, linear: float, angular: float) -> None:
        """Target body speeds [m/s], [rad/s]; limited each tick as DiffDrive does."""
        self.cmd = (float(linear), float(angular))

    def _slip_noise(self) -> tuple[float, float]:
        if self._noise_i >= len(self._noise):
            self._noise = self.rng.normal(0.0, 1.0, size=(1024, 2))
            self._noise_i = 0
        n = self._noise[self._noise_i]
        self._noise_i += 1
        sd = self.drive.slip_stddev
        return float(n[0]) * sd, float(n[1]) * sd

    # ---- one tick -------------------------------------------------------------------------
    def step(self, slip_of: SlipOf | None = None) -> list[DynamicsEvent]:
        """Advance one physics tick; returns the events it raised."""
        dt = self.dt
        st = self.state
        self.time += dt
        events: list[DynamicsEvent] = []
        if st.tipped:
            self.v_cmd = self.w_cmd = 0.0
            self._relax(self._heights, 0.0, 0.0)
            return events
        d = self.drive
        v_prev = self.v_cmd
        w_prev = self.w_cmd
        self.v_cmd = speed_limit(
            self.cmd[0], v_prev, dt, d.min_velocity, d.max_velocity,
            d.min_linear_acceleration, d.max_linear_acceleration,
        )  # fmt: skip
        self.w_cmd = speed_limit(
            self.cmd[1], w_prev, dt, self._min_w, d.max_angular_velocity,
            self._min_dw, d.max_angular_acceleration,
        )  # fmt: skip
        half = d.wheel_separation / 2.0
        enc_l = (self.v_cmd - self.w_cmd * half) * dt
        enc_r = (self.v_cmd + self.w_cmd * half) * dt
        n_l, n_r = self._slip_noise()
        p_l = p_r = 0.0
        if slip_of is not None:
            wheels = self.contact_points(st.x, st.y, st.yaw)[:2]
            p = slip_of(wheels)
            p_l, p_r = float(p[0]), float(p[1])
        g_l = enc_l * (1.0 + n_l) * (1.0 - p_l)
        g_r = enc_r * (1.0 + n_r) * (1.0 - p_r)
        ds = 0.5 * (g_l + g_r) * math.cos(st.pitch)
        dth = (g_r - g_l) / d.wheel_separation
        x, y, yaw = integrate_arc(st.x, st.y, st.yaw, ds, dth)
        # Ask the ground only once a contact point may have moved by ground_resolution: at
        # rest, or creeping, the heights cannot have changed (and the query is the cost).
        moved = math.hypot(x - self._qx, y - self._qy) + abs(yaw - self._qyaw) * self._reach
        if moved >= self.ground_resolution:
            heights = self._ground_under(x, y, yaw)
        else:
            heights = self._heights
        change = heights - self._heights
        v_abs = abs(self.v_cmd)
        rises = [i for i in range(4) if change[i] > self.body.max_step]
        if rises:
            # The robot does not climb it: undo the move, the wheels stall.
            new = set(rises) - self._blocked_by
            self._blocked_by |= set(rises)
            self._blocked_at = (st.x, st.y)
            if new:
                names = ", ".join(self._contact_names[i] for i in sorted(new))
                rise = max(float(change[i]) for i in rises)
                events.append(DynamicsEvent(self.time, "blocked", f"{names}: step {rise:.3f} m"))
            self.v_cmd = self.w_cmd = 0.0
            st.blocked = True
            self._relax(self._heights, 0.0, 0.0)
            return events
        st.blocked = False
        if self._blocked_by and math.hypot(x - self._blocked_at[0], y - self._blocked_at[1]) > 0.05:
            self._blocked_by.clear()  # moved away from the step: a new contact reports again
        drops = [float(-change[i]) for i in range(4)]
        worst = max(drops)
        st.left_travel += enc_l
        st.right_travel += enc_r
        st.x, st.y, st.yaw = x, y, _wrap(yaw)
        if heights is not self._heights:
            self._heights = heights
            self._qx, self._qy, self._qyaw = x, y, st.yaw
        self._relax(heights, ds / dt, dth / dt)
        step = self.body.max_step
        if worst > 2.0 * step or (worst > step and v_abs >= self.drop_tip_speed):
            i = drops.index(worst)
            return events + self._tip(
                f"{self._contact_names[i]} dropped {worst:.3f} m at {v_abs:.2f} m/s"
            )
        if abs(st.roll) > self.body.max_roll or abs(st.pitch) > self.body.max_pitch:
            return events + self._tip(f"roll {st.roll:.3f} rad, pitch {st.pitch:.3f} rad")
        return events

    def _tip(self, why: str) -> list[DynamicsEvent]:
        self.state.tipped = True
        self.v_cmd = self.w_cmd = 0.0
        self.state.speed = self.state.yaw_rate = self.state.accel_forward = 0.0
        self.state.yaw_accel = 0.0
        return [DynamicsEvent(self.time, "tipped", why)]

    def _relax(self, heights: NDArray[np.float64], speed: float, yaw_rate: float) -> None:
        """z/roll/pitch follow the ground (critically damped); speeds follow the wheels."""
        st = self.state
        dt = self.dt
        w2 = self.omega_n * self.omega_n
        damp = 2.0 * self.omega_n
        z_t, roll_t, pitch_t = self._targets(heights)
        az = w2 * (z_t - st.z) - damp * st.z_rate
        ar = w2 * (roll_t - st.roll) - damp * st.roll_rate
        ap = w2 * (pitch_t - st.pitch) - damp * st.pitch_rate
        st.z_rate += az * dt
        st.roll_rate += ar * dt
        st.pitch_rate += ap * dt
        st.z += st.z_rate * dt
        st.roll += st.roll_rate * dt
        st.pitch += st.pitch_rate * dt
        st.z_accel, st.roll_accel, st.pitch_accel = az, ar, ap
        k = dt / (self.velocity_lag + dt)
        new_speed = st.speed + k * (speed - st.speed)
        new_rate = st.yaw_rate + k * (yaw_rate - st.yaw_rate)
        st.accel_forward = (new_speed - st.speed) / dt
        st.yaw_accel = (new_rate - st.yaw_rate) / dt
        st.speed, st.yaw_rate = new_speed, new_rate


def integrate_arc(
    x: float, y: float, yaw: float, ds: float, dth: float
) -> tuple[float, float, float]:
    """Exact integration of a circular arc (gz-math DiffDriveOdometry::IntegrateExact), with
    the second-order Runge-Kutta step for near-straight motion."""
    if abs(dth) < 1e-6:
        mid = yaw + 0.5 * dth
        return x + ds * math.cos(mid), y + ds * math.sin(mid), yaw + dth
    r = ds / dth
    new = yaw + dth
    return x + r * (math.sin(new) - math.sin(yaw)), y - r * (math.cos(new) - math.cos(yaw)), new


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi
