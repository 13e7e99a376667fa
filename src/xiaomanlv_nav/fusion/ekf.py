"""Error-state extended Kalman filter: IMU-driven 3D pose, velocity and IMU biases in the map.

Solà, "Quaternion kinematics for the error-state Kalman filter" (2017, arXiv:1711.02508),
sections 5 (system kinematics), 6 (ESKF with local, body-frame angular errors) and 7 (the
reset). The nominal state is base_link's position ``p`` and velocity ``v`` in the map frame
[m, m/s], its orientation ``R`` (map <- base_link), the gyro bias ``bg`` [rad/s] and the
accelerometer bias ``ba`` [m/s^2] (both in base_link) and the map's local offset ``m`` (x, y
[m]) under the localiser's poses; the error state is the 17-vector ``[dp, dv, dtheta, dbg,
dba, dm]`` with covariance ``P``. Angular velocity is the bias-corrected gyro.

- **The map's offset**: every sweep matched at one place shares that place's map error, so a
  localiser pose is ``p + m`` plus white noise, with ``m`` a first-order Gauss-Markov process
  in the distance driven (stationary std ``map_error_stddev``, correlation length
  ``map_error_length``; Gelb, *Applied Optimal Estimation*, 1974, 4.5, a correlated
  measurement error as an augmented state). Without it the filter would take ten poses a
  second as independent and claim far less than their shared error.

- **Predict** at IMU rate from the specific force and angular rate rotated into base_link by
  the IMU's mounting (`xiaomanlv_core.robot`; the lever arm's tangential and centripetal
  terms are left to the accelerometer noise). A sample holds until the next one. Gravity is
  9.80665 m/s^2 down the map's z. Without IMU for longer than ``max_imu_gap`` the filter
  coasts a constant-velocity model with its own, larger noise.
- **Updates** (Joseph form, chi-square gated on the Mahalanobis distance of the innovation):
  wheel odometry (forward speed and yaw rate, with the nonholonomic constraint that
  base_link does not move sideways or vertically; a gated reading is slip: counted, then
  applied with its covariance inflated by its Mahalanobis distance squared), a GNSS fix
  taken into the map through the datum (`xiaomanlv_core.geodesy`) at the antenna's lever arm
  (a gated fix, a multipath jump, is rejected and counted), the GNSS velocity (ENU, at the
  antenna, gated), and the localiser's pose with its covariance (gated;
  ``localizer_reset_after`` gated poses in a row restart the filter from the localiser, which
  is the authority on where the robot is on the map: a kidnapped robot).
- **Heading is unknown at start.** Until the first localiser pose (or :meth:`Ekf.initialize`)
  the filter has no state and :meth:`Ekf.estimate` returns None: the node publishes nothing
  then. Initialisation takes position and yaw from the pose, roll and pitch from the
  accelerometer (gravity), zero velocity and biases with the configured uncertainties.
- **Late measurements** are applied at their stamps: every event (IMU sample, measurement,
  initialisation) is kept with the state after it for ``history`` seconds; one that arrives
  with an older stamp is inserted in time order and the events after it are replayed, so the
  result equals processing in order.
- **Bad input** never raises: non-finite values, bad covariances, NO_FIX fixes, duplicated,
  out-of-order or too-old stamps are counted per source and kind (:attr:`Ekf.counts`); IMU time
  going back by more than ``time_jump_reset`` (a jump back in /clock) resets the filter.
- **Stale sources**: :meth:`Ekf.stale` names each source silent for ``stale_factor`` of its
  periods; with no updates the covariance grows through the process noise.

Pure numpy; no rclpy. Times are seconds on the sensors' clock.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from xiaomanlv_core.geodesy import Datum, geodetic_to_local
from xiaomanlv_core.robot import RobotSpec
from xiaomanlv_nav.fusion.config import EkfConfig

GRAVITY = 9.80665  # [m/s^2] standard gravity
N_ERR = 17  # error-state dimension
_P, _V, _TH, _BG, _BA = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12), slice(12, 15)
_M = slice(15, 17)  # the map's local offset (x, y) under the localiser's poses
_G = np.array([0.0, 0.0, -GRAVITY])
_I3 = np.eye(3)
_IN = np.eye(N_ERR)
_LEVEL_SAMPLES = 20  # IMU samples whose mean specific force levels the initial attitude

# Sources, as counted and reported.
IMU, WHEEL, GNSS, GNSS_VEL, POSE = "imu", "wheel_odom", "gnss", "gnss_vel", "localizer"
SOURCES = (IMU, WHEEL, GNSS, GNSS_VEL, POSE)
INITIAL = "initialpose"  # an operator's pose: counted apart from the localiser's

Array = NDArray[np.float64]


def skew(v: Array) -> Array:
    """3x3 cross-product matrix: ``skew(a) @ b == cross(a, b)``."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def so3_exp(phi: Array) -> Array:
    """Rotation matrix of the rotation vector ``phi`` [rad] (Rodrigues)."""
    angle = math.sqrt(float(phi @ phi))
    k = skew(phi)
    if angle < 1e-8:
        return _I3 + k
    return _I3 + (math.sin(angle) / angle) * k + ((1.0 - math.cos(angle)) / angle**2) * (k @ k)


def so3_log(rot: Array) -> Array:
    """Rotation vector [rad] of a rotation matrix (the inverse of :func:`so3_exp`)."""
    c = min(1.0, max(-1.0, (float(np.trace(rot)) - 1.0) / 2.0))
    angle = math.acos(c)
    w = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    if angle < 1e-8:
        return 0.5 * w
    if math.pi - angle < 1e-6:  # near pi: from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(rot) + 1.0) / 2.0, 0.0))
        axis = axis * np.where(w >= 0.0, 1.0, -1.0)
        return angle * axis / max(float(np.linalg.norm(axis)), 1e-12)
    return (angle / (2.0 * math.sin(angle))) * w


def _heading_rotation(datum: Datum) -> Array:
    """ENU <- map: a rotation by the datum's heading about z."""
    h = math.radians(datum.heading_deg)
    c, s = math.cos(h), math.sin(h)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ---- inputs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImuSample:
    stamp: float  # [s]
    angular_velocity: Array  # (3,) [rad/s] in the imu frame
    linear_acceleration: Array  # (3,) [m/s^2] specific force in the imu frame


@dataclass(frozen=True)
class WheelOdometry:
    stamp: float  # [s]
    speed: float  # [m/s] forward, base_link x
    yaw_rate: float  # [rad/s] about base_link z
    speed_variance: float  # [(m/s)^2]
    yaw_rate_variance: float  # [(rad/s)^2]


@dataclass(frozen=True)
class GnssFix:
    stamp: float  # [s]
    lla: Array  # (3,) latitude [deg], longitude [deg], ellipsoidal height [m] of the antenna
    covariance_enu: Array  # (3,3) [m^2] east, north, up


@dataclass(frozen=True)
class GnssVelocity:
    stamp: float  # [s]
    velocity_enu: Array  # (3,) [m/s] of the antenna: east, north, up
    covariance_enu: Array  # (3,3) [(m/s)^2]


@dataclass(frozen=True)
class PoseFix:
    stamp: float  # [s]
    pose: Array  # 4x4 map <- base_link
    covariance: Array  # (6,6) x, y, z [m], rotation about the map's x, y, z [rad]


Measurement = ImuSample | WheelOdometry | GnssFix | GnssVelocity | PoseFix


@dataclass(frozen=True)
class Estimate:
    """The fused state at ``stamp``, as /odometry/filtered publishes it."""

    stamp: float  # [s]
    pose: Array  # 4x4 map <- base_link
    velocity: Array  # (3,) [m/s] in the map
    linear_velocity: Array  # (3,) [m/s] in base_link
    angular_velocity: Array  # (3,) [rad/s] in base_link, bias-corrected
    pose_covariance: Array  # (6,6) x, y, z [m^2], rotation about the map's x, y, z [rad^2]
    twist_covariance: Array  # (6,6) base_link linear [(m/s)^2], angular [(rad/s)^2]
    gyro_bias: Array  # (3,) [rad/s]
    accel_bias: Array  # (3,) [m/s^2]
    covariance: Array = field(repr=False)  # (17,17) the error state's (N_ERR)


# ---- state and events ---------------------------------------------------------------------------
@dataclass
class _State:
    t: float
    p: Array
    v: Array
    rot: Array
    bg: Array
    ba: Array
    cov: Array
    gyro: Array  # the held IMU sample, in base_link
    accel: Array
    m: Array  # (2,) [m] the map's local offset: localiser position = p + m + white noise
    # A localiser pose has been fused since the start (False after an operator's pose: it
    # only seeds the localiser, whose first match is the first measurement on the map).
    on_map: bool = True

    def copy(self) -> _State:
        return _State(
            self.t,
            self.p.copy(),
            self.v.copy(),
            self.rot.copy(),
            self.bg.copy(),
            self.ba.copy(),
            self.cov.copy(),
            self.gyro,
            self.accel,
            self.m.copy(),
            self.on_map,
        )


@dataclass
class _Init:
    stamp: float
    pose: Array
    covariance: Array
    on_map: bool = True  # False: an operator's pose, not a match on the map


_Event = ImuSample | WheelOdometry | GnssFix | GnssVelocity | PoseFix | _Init


@dataclass
class _Entry:
    stamp: float
    event: _Event
    source: str
    state: _State | None = None  # after the event; None before the first initialisation
    done: bool = False  # processed once (counts are taken the first time only)
    map_position: Array | None = None  # GNSS: the fix in the map (through the datum)


class Timings:
    """Wall-clock durations of the filter's steps, the last ``window`` of each kind [s]."""

    def __init__(self, window: int = 2000) -> None:
        self.samples: dict[str, deque[float]] = {}
        self._window = window

    def add(self, kind: str, seconds: float) -> None:
        if kind not in self.samples:
            self.samples[kind] = deque(maxlen=self._window)
        self.samples[kind].append(seconds)

    def medians_ms(self) -> dict[str, float]:
        """{kind: median [ms]} of predict and each update kind."""
        return {k: 1e3 * float(np.median(v)) for k, v in sorted(self.samples.items()) if v}

    def update_median_ms(self) -> float:
        """[ms] the median over every measurement update (predicts excluded); nan if none."""
        values = [s for k, v in self.samples.items() if k != "predict" for s in v]
        return 1e3 * float(np.median(values)) if values else math.nan


class Ekf:
    """The error-state EKF (module docstring). Build it with :func:`build_ekf` from a config.

    Args:
        imu_rotation: 3x3 base_link <- imu rotation (the IMU's mounting).
        antenna_lever: (3,) [m] GNSS antenna position in base_link.
        datum: the map's datum; GNSS is counted as ``no_datum`` and skipped until it is set.
        periods: {source: expected interval [s]} for :meth:`stale`.
        Other arguments: the fields of :class:`xiaomanlv_nav.fusion.config.EkfConfig`.
    """

    def __init__(
        self,
        *,
        imu_rotation: ArrayLike,
        antenna_lever: ArrayLike,
        wheel_slip_stddev: float = 0.0,
        wheel_separation: float = 1.0,
        map_error_stddev: float = 0.0,
        map_error_length: float = 10.0,
        gnss_multipath_stddev: float = 0.0,
        gyro_noise: float,
        accel_noise: float,
        gyro_bias_walk: float,
        accel_bias_walk: float,
        coast_accel_noise: float,
        coast_gyro_noise: float,
        init_velocity_stddev: float,
        init_tilt_stddev: float,
        init_height_stddev: float,
        init_gyro_bias_stddev: float,
        init_accel_bias_stddev: float,
        lateral_velocity_stddev: float,
        vertical_velocity_stddev: float,
        min_wheel_speed_stddev: float,
        min_wheel_rate_stddev: float,
        gate_probability: float,
        localizer_reset_after: int,
        history: float,
        time_jump_reset: float,
        max_imu_gap: float,
        imu_period: float,
        periods: dict[str, float],
        stale_factor: float,
        stale_min: float,
        datum: Datum | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.imu_rotation = np.asarray(imu_rotation, float).reshape(3, 3)
        self.lever = np.asarray(antenna_lever, float).reshape(3)
        self.slip_var = wheel_slip_stddev**2  # share of each wheel's travel, white per reading
        self.half_track = 0.5 * wheel_separation  # [m]
        self.map_var = map_error_stddev**2  # [m^2] stationary, per horizontal axis
        self.map_length = map_error_length  # [m] of travel over which it decorrelates
        self.multipath_var = gnss_multipath_stddev**2  # [m^2] not in a fix's covariance
        self.q_gyro = gyro_noise**2
        self.q_accel = accel_noise**2
        self.q_bg = gyro_bias_walk**2
        self.q_ba = accel_bias_walk**2
        self.q_coast_accel = coast_accel_noise**2
        self.q_coast_gyro = coast_gyro_noise**2
        self.init_sd = (init_velocity_stddev, init_tilt_stddev)
        self.init_tilt_var = init_tilt_stddev**2
        self.init_height_var = init_height_stddev**2
        self.init_bias_sd = (init_gyro_bias_stddev, init_accel_bias_stddev)
        self.lateral_var = lateral_velocity_stddev**2
        self.vertical_var = vertical_velocity_stddev**2
        self.min_speed_var = min_wheel_speed_stddev**2
        # The gyro sample the wheel yaw rate is compared with carries its white noise.
        self.min_rate_var = min_wheel_rate_stddev**2 + gyro_noise**2 / imu_period
        self.gates = {dof: float(chi2.ppf(gate_probability, dof)) for dof in (3, 4, 6)}
        self.reset_after = localizer_reset_after
        self.history = history
        self.time_jump_reset = time_jump_reset
        self.max_imu_gap = max_imu_gap
        self.periods = dict(periods)
        self.stale_factor = stale_factor
        self.stale_min = stale_min
        self.datum: Datum | None = None
        self._enu_from_map = _I3
        if datum is not None:
            self.set_datum(datum)
        self.counts: Counter[str] = Counter()  # "<source> <kind>" -> how many
        self.timings = Timings()
        self._clock = clock
        self._entries: list[_Entry] = []
        self._stamps: list[float] = []
        self._last: dict[str, float] = {}  # newest stamp per source
        self._gated_poses = 0  # localiser poses gated in a row
        self.resets = 0
        self.slipping = False  # the last wheel reading was gated

    # ---- configuration ---------------------------------------------------------------------
    def set_datum(self, datum: Datum) -> None:
        """Take GNSS into the map through ``datum`` from now on."""
        self.datum = datum
        self._enu_from_map = _heading_rotation(datum)

    # ---- state -----------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return bool(self._entries) and self._entries[-1].state is not None

    @property
    def stamp(self) -> float:
        """[s] the newest event's stamp (nan when there is none)."""
        return self._stamps[-1] if self._stamps else math.nan

    def _current(self) -> _State | None:
        return self._entries[-1].state if self._entries else None

    def estimate(self, at: float | None = None) -> Estimate | None:
        """The fused state (None before initialisation), predicted to ``at`` [s] when given
        and later than the newest event (held IMU sample, or coasting past ``max_imu_gap``);
        the filter itself is not changed."""
        state = self._current()
        if state is None:
            return None
        if at is not None and at > state.t:
            state = state.copy()
            self._predict(state, at)
        return self._estimate(state)

    def stale(self, now: float) -> list[str]:
        """Sources silent for ``stale_factor`` of their periods, and at least ``stale_min``,
        at ``now`` [s] (never heard of counts as silent)."""
        out = []
        for source, period in self.periods.items():
            last = self._last.get(source, -math.inf)
            if now - last > max(self.stale_factor * period, self.stale_min):
                out.append(source)
        return out

    def age(self, source: str, now: float) -> float:
        """[s] since ``source``'s newest stamp (inf if never heard)."""
        return now - self._last.get(source, -math.inf)

    def reset(self, reason: str = "reset") -> None:
        """Forget everything: uninitialised, no history (counted under ``filter <reason>``)."""
        self._entries.clear()
        self._stamps.clear()
        self._last.clear()
        self._gated_poses = 0
        self.resets += 1
        self.counts[f"filter {reason}"] += 1

    # ---- inputs ----------------------------------------------------------------------------
    def add_imu(self, sample: ImuSample) -> bool:
        """Predict with one IMU sample (imu frame). False when it was refused (counted)."""
        w = np.asarray(sample.angular_velocity, float)
        f = np.asarray(sample.linear_acceleration, float)
        if not (_finite(sample.stamp) and np.all(np.isfinite(w)) and np.all(np.isfinite(f))):
            return self._refuse(IMU, "non_finite")
        newest = self._last.get(IMU)
        if newest is not None and newest - sample.stamp > self.time_jump_reset:
            self.reset("time_jump")
        sample = ImuSample(sample.stamp, self.imu_rotation @ w, self.imu_rotation @ f)
        return self._add(IMU, sample)

    def add_wheel(self, m: WheelOdometry) -> bool:
        values = (m.stamp, m.speed, m.yaw_rate)
        if not all(_finite(v) for v in values):
            return self._refuse(WHEEL, "non_finite")
        if not (_variance(m.speed_variance) and _variance(m.yaw_rate_variance)):
            return self._refuse(WHEEL, "bad_covariance")
        return self._add(WHEEL, m)

    def add_gnss(self, m: GnssFix) -> bool:
        """A fix with a position (NO_FIX is the caller's to count: :meth:`count`)."""
        lla = np.asarray(m.lla, float)
        if not (_finite(m.stamp) and lla.shape == (3,) and np.all(np.isfinite(lla))):
            return self._refuse(GNSS, "non_finite")
        if not _covariance(m.covariance_enu, 3):
            return self._refuse(GNSS, "bad_covariance")
        if self.datum is None:
            return self._refuse(GNSS, "no_datum")
        return self._add(GNSS, m)

    def add_gnss_velocity(self, m: GnssVelocity) -> bool:
        vel = np.asarray(m.velocity_enu, float)
        if not (_finite(m.stamp) and vel.shape == (3,) and np.all(np.isfinite(vel))):
            return self._refuse(GNSS_VEL, "non_finite")
        if not _covariance(m.covariance_enu, 3):
            return self._refuse(GNSS_VEL, "bad_covariance")
        if self.datum is None:
            return self._refuse(GNSS_VEL, "no_datum")
        return self._add(GNSS_VEL, m)

    def add_pose(self, m: PoseFix) -> bool:
        """The localiser's pose; initialises the filter when it has no state yet."""
        pose = np.asarray(m.pose, float)
        if not (_finite(m.stamp) and pose.shape == (4, 4) and np.all(np.isfinite(pose))):
            return self._refuse(POSE, "non_finite")
        if not _covariance(m.covariance, 6):
            return self._refuse(POSE, "bad_covariance")
        if not self.initialized:
            return self.initialize(m.pose, m.covariance, m.stamp)
        return self._add(POSE, m)

    def initialize(
        self, pose: ArrayLike, covariance: ArrayLike, stamp: float, source: str = POSE
    ) -> bool:
        """(Re)start the filter at ``pose`` (4x4 map <- base_link) with its 6x6 covariance
        at ``stamp`` [s]; later events in the history are replayed from there.

        An operator's pose (``source`` :data:`INITIAL`, RViz's 2D Pose Estimate) gives x, y
        and yaw only: a zero variance of z, roll or pitch means "not given" and becomes
        ``init_height_stddev`` / ``init_tilt_stddev`` squared (x, y and yaw must be positive).
        A zero stamp (a tool that does not stamp) means the newest event's. Refusals are
        counted under ``source``."""
        pose_a = np.asarray(pose, float)
        cov = np.asarray(covariance, float)
        if stamp == 0.0 and self._stamps:
            stamp = self._stamps[-1]
        if not (_finite(stamp) and pose_a.shape == (4, 4) and np.all(np.isfinite(pose_a))):
            return self._refuse(source, "non_finite")
        if cov.shape == (6, 6) and np.all(np.isfinite(cov)):
            cov = cov.copy()
            given_none = (2, self.init_height_var), (3, self.init_tilt_var), (4, self.init_tilt_var)
            for k, default in given_none:  # z, roll, pitch with no (co)variance at all
                if not np.any(cov[k]) and not np.any(cov[:, k]):
                    cov[k, k] = default
        if not _covariance(cov, 6):
            return self._refuse(source, "bad_covariance")
        self.counts["filter initialised"] += 1
        self._gated_poses = 0
        init = _Init(stamp, pose_a, cov, on_map=source != INITIAL)
        return self._insert(_Entry(stamp, init, POSE), late_ok=True)

    def count(self, source: str, kind: str) -> None:
        """Count a refusal the caller made (an unknown frame, NO_FIX)."""
        self.counts[f"{source} {kind}"] += 1

    # ---- the timeline ----------------------------------------------------------------------
    def _refuse(self, source: str, kind: str) -> bool:
        self.counts[f"{source} {kind}"] += 1
        return False

    def _add(self, source: str, event: _Event) -> bool:
        stamp = event.stamp
        last = self._last.get(source)
        if last is not None:
            if stamp == last:
                return self._refuse(source, "duplicate")
            if stamp < last:
                self.counts[f"{source} out_of_order"] += 1
        return self._insert(_Entry(stamp, event, source))

    def _insert(self, entry: _Entry, late_ok: bool = False) -> bool:
        stamp = entry.stamp
        if self._stamps and stamp < self._stamps[0]:
            if not late_ok:
                return self._refuse(entry.source, "too_old")
            self._entries.clear()  # an initialisation before the whole history
            self._stamps.clear()
        k = bisect.bisect_right(self._stamps, stamp)
        if isinstance(entry.event, _Init):
            # Equal stamps: the initialisation goes first, the measurements at it after.
            k = bisect.bisect_left(self._stamps, stamp)
        self._entries.insert(k, entry)
        self._stamps.insert(k, stamp)
        self._last[entry.source] = max(self._last.get(entry.source, -math.inf), stamp)
        self._replay(k)
        self._prune()
        return True

    def _replay(self, k: int) -> None:
        for i in range(k, len(self._entries)):
            entry = self._entries[i]
            before = self._entries[i - 1].state if i > 0 else None
            entry.state = self._process(entry, before, i)
            entry.done = True

    def _prune(self) -> None:
        horizon = self._stamps[-1] - self.history
        drop = 0
        while drop + 1 < len(self._stamps) and self._stamps[drop + 1] < horizon:
            drop += 1
        if drop:
            del self._entries[:drop]
            del self._stamps[:drop]

    def _process(self, entry: _Entry, before: _State | None, index: int) -> _State | None:
        event = entry.event
        if isinstance(event, _Init):
            return self._initial_state(event, index)
        if before is None:
            return None  # not initialised yet: kept for a later initialisation to replay
        start = self._clock()
        state = before.copy()
        self._predict(state, entry.stamp)
        kind = "predict"
        if isinstance(event, ImuSample):
            state.gyro, state.accel = event.angular_velocity, event.linear_acceleration
        elif isinstance(event, WheelOdometry):
            kind = "wheel"
            self._update_wheel(state, event, entry)
        elif isinstance(event, GnssFix):
            kind = "gnss"
            self._update_gnss(state, event, entry)
        elif isinstance(event, GnssVelocity):
            kind = "gnss_vel"
            self._update_gnss_velocity(state, event, entry)
        elif isinstance(event, PoseFix):
            kind = "pose"
            restart = self._update_pose(state, event, entry)
            if restart is not None:
                return restart
        self.timings.add(kind, self._clock() - start)
        return state

    def _initial_state(self, event: _Init, index: int) -> _State:
        """Position and yaw from the pose, roll and pitch from the mean specific force of the
        IMU samples before it (the pose's when there are none)."""
        rot = event.pose[:3, :3]
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        samples = [
            e.event
            for e in self._entries[max(0, index - 4 * _LEVEL_SAMPLES) : index]
            if isinstance(e.event, ImuSample)
        ][-_LEVEL_SAMPLES:]
        gyro = samples[-1].angular_velocity if samples else np.zeros(3)
        accel = samples[-1].linear_acceleration if samples else -_G
        vel_sd, tilt_sd = self.init_sd
        cov = np.zeros((N_ERR, N_ERR))
        cov[_P, _P] = event.covariance[:3, :3]
        if samples:
            f = np.mean([s.linear_acceleration for s in samples], axis=0)
            roll = math.atan2(f[1], f[2])
            pitch = math.atan2(-f[0], math.hypot(f[1], f[2]))
            cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
            cy, sy = math.cos(yaw), math.sin(yaw)
            rot = np.array(
                [
                    [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                    [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                    [-sp, cp * sr, cp * cr],
                ]
            )
            # Local angle errors: tilt from the accelerometer, yaw from the pose.
            world = np.diag([tilt_sd**2, tilt_sd**2, event.covariance[5, 5]])
            cov[_TH, _TH] = rot.T @ world @ rot
        else:
            cov[_TH, _TH] = rot.T @ event.covariance[3:, 3:] @ rot
        cov[_V, _V] = vel_sd**2 * _I3
        cov[_BG, _BG] = self.init_bias_sd[0] ** 2 * _I3
        cov[_BA, _BA] = self.init_bias_sd[1] ** 2 * _I3
        # The pose is p + m + noise with the map's offset m unknown (zero mean, stationary):
        # p = pose - m - noise, so p takes m's variance too, anticorrelated with m.
        i2 = self.map_var * np.eye(2)
        cov[_M, _M] = i2
        cov[:2, :2] += i2
        cov[:2, _M] = -i2
        cov[_M, :2] = -i2
        return _State(
            event.stamp,
            event.pose[:3, 3].copy(),
            np.zeros(3),
            rot,
            np.zeros(3),
            np.zeros(3),
            cov,
            gyro,
            accel,
            np.zeros(2),
            event.on_map,
        )

    # ---- predict ---------------------------------------------------------------------------
    def _predict(self, s: _State, t: float) -> None:
        dt = t - s.t
        if dt <= 0.0:
            return
        cov = s.cov
        # The map's offset is a first-order Gauss-Markov process in the distance driven: the
        # same place on the map has the same error, a place map_error_length away another.
        decay = math.exp(-math.hypot(s.v[0], s.v[1]) * dt / self.map_length)
        if dt > self.max_imu_gap:
            self._coast(s, dt, decay)
        else:
            w = s.gyro - s.bg
            a = s.accel - s.ba
            rot = s.rot
            acc = rot @ a + _G
            s.p = s.p + s.v * dt + (0.5 * dt * dt) * acc
            s.v = s.v + acc * dt
            step = so3_exp(w * dt)
            s.rot = rot @ step
            f = _IN.copy()
            f[_P, _V] = dt * _I3
            f[_V, _TH] = -dt * (rot @ skew(a))
            f[_V, _BA] = -dt * rot
            f[_TH, _TH] = step.T
            f[_TH, _BG] = -dt * _I3
            f[15, 15] = f[16, 16] = decay
            s.m = decay * s.m
            cov = f @ cov @ f.T
            d = cov.flat
            n = N_ERR + 1  # the diagonal's stride
            for i in range(3):
                d[(3 + i) * n] += self.q_accel * dt
                d[(6 + i) * n] += self.q_gyro * dt
                d[(9 + i) * n] += self.q_bg * dt
                d[(12 + i) * n] += self.q_ba * dt
            q_map = self.map_var * (1.0 - decay * decay)
            d[15 * n] += q_map
            d[16 * n] += q_map
            s.cov = cov
        s.t = t

    def _coast(self, s: _State, dt: float, decay: float) -> None:
        """Constant velocity and orientation over a gap without IMU, with the coast noise
        (``decay``: the map offset's correlation over the distance driven)."""
        s.p = s.p + s.v * dt
        s.m = decay * s.m
        f = _IN.copy()
        f[_P, _V] = dt * _I3
        f[15, 15] = f[16, 16] = decay
        cov = f @ s.cov @ f.T
        for i in (15, 16):
            cov[i, i] += self.map_var * (1.0 - decay * decay)
        for i in range(3):
            cov[3 + i, 3 + i] += self.q_coast_accel * dt
            cov[6 + i, 6 + i] += self.q_coast_gyro * dt
            cov[9 + i, 9 + i] += self.q_bg * dt
            cov[12 + i, 12 + i] += self.q_ba * dt
        s.cov = cov

    # ---- updates ---------------------------------------------------------------------------
    def _correct(self, s: _State, r: Array, h: Array, noise: Array, dof: int) -> tuple[bool, float]:
        """Gate, then the Joseph-form update and the injection and reset of the error.

        Returns (applied, Mahalanobis distance squared). Not applied when the distance is
        beyond the gate."""
        ph = s.cov @ h.T
        innovation_cov = h @ ph + noise
        try:
            inv = np.linalg.inv(innovation_cov)
        except np.linalg.LinAlgError:
            return False, math.inf
        d2 = float(r @ inv @ r)
        if not d2 <= self.gates[dof]:
            return False, d2
        self._apply(s, ph @ inv, r, h, noise)
        return True, d2

    def _apply(self, s: _State, gain: Array, r: Array, h: Array, noise: Array) -> None:
        dx = gain @ r
        ikh = _IN - gain @ h
        cov = ikh @ s.cov @ ikh.T + gain @ noise @ gain.T
        s.p = s.p + dx[_P]
        s.v = s.v + dx[_V]
        s.rot = s.rot @ so3_exp(dx[_TH])
        s.bg = s.bg + dx[_BG]
        s.ba = s.ba + dx[_BA]
        s.m = s.m + dx[_M]
        g = _IN.copy()
        g[_TH, _TH] = _I3 - skew(0.5 * dx[_TH])  # Solà (2017) eq. 287
        s.cov = g @ cov @ g.T
        s.cov = 0.5 * (s.cov + s.cov.T)

    def _update_wheel(self, s: _State, m: WheelOdometry, entry: _Entry) -> None:
        vb = s.rot.T @ s.v
        z = np.array([m.speed, 0.0, 0.0, m.yaw_rate])
        pred = np.array([vb[0], vb[1], vb[2], s.gyro[2] - s.bg[2]])
        h = np.zeros((4, N_ERR))
        h[:3, _V] = s.rot.T
        h[:3, _TH] = skew(vb)
        h[3, 11] = -1.0
        # Wheel slip (the robot description's share of each wheel's travel) is not in the
        # odometry's covariance: the encoders cannot see it. Per wheel, white per reading:
        # speed = (l + r) / 2, yaw rate = (r - l) / track.
        left = m.speed - m.yaw_rate * self.half_track
        right = m.speed + m.yaw_rate * self.half_track
        slip = self.slip_var * (left * left + right * right)
        noise = np.diag(
            [
                max(m.speed_variance, self.min_speed_var) + 0.25 * slip,
                self.lateral_var,
                self.vertical_var,
                max(m.yaw_rate_variance, 0.0)
                + self.min_rate_var
                + slip / (2 * self.half_track) ** 2,
            ]
        )
        r = z - pred
        applied, d2 = self._correct(s, r, h, noise, 4)
        if not applied and math.isfinite(d2):
            # Slip: the wheels say something the IMU does not; use the reading with its
            # covariance inflated by its Mahalanobis distance squared (far off: ignored).
            noise = noise * d2
            ph = s.cov @ h.T
            self._apply(s, ph @ np.linalg.inv(h @ ph + noise), r, h, noise)
        if not entry.done:
            self.slipping = not applied
            if not applied:
                self.counts[f"{WHEEL} slip"] += 1

    def _update_gnss(self, s: _State, m: GnssFix, entry: _Entry) -> None:
        if entry.map_position is None:
            assert self.datum is not None
            entry.map_position = geodetic_to_local(self.datum, m.lla)
        rot_enu = self._enu_from_map
        noise = rot_enu.T @ np.asarray(m.covariance_enu, float) @ rot_enu
        lever = s.rot @ self.lever
        r = entry.map_position - (s.p + lever)
        h = np.zeros((3, N_ERR))
        h[:, _P] = _I3
        h[:, _TH] = -s.rot @ skew(self.lever)
        before = s.cov[:2, :2].copy()
        applied, _ = self._correct(s, r, h, noise, 3)
        if applied and not s.on_map:
            self._multipath_floor(s, before)
        if not applied and not entry.done:
            self.counts[f"{GNSS} gated"] += 1

    def _multipath_floor(self, s: _State, before: Array) -> None:
        """GNSS alone does not localise: before the first match, the fixes share the
        receiver's multipath (not in their covariance, correlated over seconds), so they
        cannot bring the horizontal position variance below ``gnss_multipath_stddev``
        squared, nor below what it was before the fix. Adds the shortfall along the
        variance's axes (a positive semi-definite addition: the covariance stays valid)."""
        values, axes = np.linalg.eigh(s.cov[:2, :2])
        floor = [min(self.multipath_var, float(a @ before @ a)) for a in axes.T]
        short = np.maximum(np.array(floor) - values, 0.0)
        if np.any(short > 0.0):
            s.cov[:2, :2] += (axes * short) @ axes.T

    def _update_gnss_velocity(self, s: _State, m: GnssVelocity, entry: _Entry) -> None:
        rot_enu = self._enu_from_map
        z = rot_enu.T @ np.asarray(m.velocity_enu, float)
        noise = rot_enu.T @ np.asarray(m.covariance_enu, float) @ rot_enu
        w = s.gyro - s.bg
        arm = np.cross(w, self.lever)  # the antenna's velocity about base_link, in base_link
        r = z - (s.v + s.rot @ arm)
        h = np.zeros((3, N_ERR))
        h[:, _V] = _I3
        h[:, _TH] = -s.rot @ skew(arm)
        h[:, _BG] = s.rot @ skew(self.lever)
        applied, _ = self._correct(s, r, h, noise, 3)
        if not applied and not entry.done:
            self.counts[f"{GNSS_VEL} gated"] += 1

    def _update_pose(self, s: _State, m: PoseFix, entry: _Entry) -> _State | None:
        pose = np.asarray(m.pose, float)
        r = np.empty(6)
        r[:3] = pose[:3, 3] - s.p
        r[:2] -= s.m  # the localiser sees the map's offset with the pose
        r[3:] = so3_log(s.rot.T @ pose[:3, :3])
        t = np.zeros((6, 6))  # map-frame rotation errors -> local (body) ones
        t[:3, :3] = _I3
        t[3:, 3:] = s.rot.T
        noise = t @ np.asarray(m.covariance, float) @ t.T
        h = np.zeros((6, N_ERR))
        h[:3, _P] = _I3
        h[:2, _M] = np.eye(2)
        h[3:, _TH] = _I3
        applied, _ = self._correct(s, r, h, noise, 6)
        if applied:
            s.on_map = True
        elif not s.on_map:
            # Started from an operator's guess (and GNSS): the localiser's first match is the
            # first measurement on the map, and one that disagrees replaces the guess at once.
            if not entry.done:
                self.counts[f"{POSE} gated"] += 1
                self.counts["filter restarted_from_localizer"] += 1
            index = self._entries.index(entry)
            return self._initial_state(_Init(m.stamp, pose, np.asarray(m.covariance, float)), index)
        if entry.done:
            return None
        if applied:
            self._gated_poses = 0
            return None
        self.counts[f"{POSE} gated"] += 1
        self._gated_poses += 1
        if self._gated_poses < self.reset_after:
            return None
        # The localiser has disagreed for long: it is the authority on the map, restart there.
        self._gated_poses = 0
        self.counts["filter restarted_from_localizer"] += 1
        index = self._entries.index(entry)
        return self._initial_state(_Init(m.stamp, pose, np.asarray(m.covariance, float)), index)

    # ---- output ----------------------------------------------------------------------------
    def _estimate(self, s: _State) -> Estimate:
        pose = np.eye(4)
        pose[:3, :3] = s.rot
        pose[:3, 3] = s.p
        t = np.zeros((6, N_ERR))  # (position, map-frame rotation) from the error state
        t[:3, _P] = _I3
        t[3:, _TH] = s.rot
        pose_cov = t @ s.cov @ t.T
        vb = s.rot.T @ s.v
        j = np.zeros((6, N_ERR))  # (base_link velocity, angular velocity)
        j[:3, _V] = s.rot.T
        j[:3, _TH] = skew(vb)
        j[3:, _BG] = -_I3
        twist_cov = j @ s.cov @ j.T
        twist_cov[3:, 3:] += self.q_gyro / self.periods.get(IMU, 0.01) * _I3
        return Estimate(
            stamp=s.t,
            pose=pose,
            velocity=s.v.copy(),
            linear_velocity=vb,
            angular_velocity=s.gyro - s.bg,
            pose_covariance=0.5 * (pose_cov + pose_cov.T),
            twist_covariance=0.5 * (twist_cov + twist_cov.T),
            gyro_bias=s.bg.copy(),
            accel_bias=s.ba.copy(),
            covariance=s.cov.copy(),
        )


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _variance(value: float) -> bool:
    return _finite(value) and value >= 0.0


def _covariance(value: ArrayLike, n: int) -> bool:
    """A finite, symmetric, positive semi-definite n x n matrix with a positive diagonal."""
    c = np.asarray(value, float)
    if c.shape != (n, n) or not np.all(np.isfinite(c)) or not np.all(np.diag(c) > 0.0):
        return False
    if not np.allclose(c, c.T, rtol=1e-6, atol=1e-12):
        return False
    return bool(np.linalg.eigvalsh(c)[0] >= -1e-9 * float(np.max(np.diag(c))))


def build_ekf(config: EkfConfig, robot: RobotSpec, datum: Datum | None = None) -> Ekf:
    """The filter ``config`` describes, for ``robot``'s IMU mounting and GNSS antenna."""
    return Ekf(
        imu_rotation=np.asarray(robot.imu.pose, float)[:3, :3],
        antenna_lever=np.asarray(robot.gnss.pose, float)[:3, 3],
        wheel_slip_stddev=robot.drive.slip_stddev,
        wheel_separation=robot.drive.wheel_separation,
        map_error_stddev=config.map_error_stddev,
        map_error_length=config.map_error_length,
        gnss_multipath_stddev=robot.gnss.multipath_jump_stddev,
        gyro_noise=config.gyro_noise,
        accel_noise=config.accel_noise,
        gyro_bias_walk=config.gyro_bias_walk,
        accel_bias_walk=config.accel_bias_walk,
        coast_accel_noise=config.coast_accel_noise,
        coast_gyro_noise=config.coast_gyro_noise,
        init_velocity_stddev=config.init_velocity_stddev,
        init_tilt_stddev=config.init_tilt_stddev,
        init_height_stddev=config.init_height_stddev,
        init_gyro_bias_stddev=config.init_gyro_bias_stddev,
        init_accel_bias_stddev=config.init_accel_bias_stddev,
        lateral_velocity_stddev=config.lateral_velocity_stddev,
        vertical_velocity_stddev=config.vertical_velocity_stddev,
        min_wheel_speed_stddev=config.min_wheel_speed_stddev,
        min_wheel_rate_stddev=config.min_wheel_rate_stddev,
        gate_probability=config.gate_probability,
        localizer_reset_after=config.localizer_reset_after,
        history=config.history,
        time_jump_reset=config.time_jump_reset,
        max_imu_gap=config.max_imu_gap,
        imu_period=config.imu_period,
        periods={
            IMU: config.imu_period,
            WHEEL: config.wheel_period,
            GNSS: config.gnss_period,
            GNSS_VEL: config.gnss_period,
            POSE: config.pose_period,
        },
        stale_factor=config.stale_factor,
        stale_min=config.stale_min,
        datum=datum,
    )
