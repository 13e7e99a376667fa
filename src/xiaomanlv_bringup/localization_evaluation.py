"""Localisation quality against the simulator's truth: the measures of issue 15's bench.

The stack never reads ground truth; this module is where the bench (bench/localization.py) and
the demo compare what the stack says with what happened. Everything here is pure numpy/scipy on
arrays the caller collected; the frames are already the same (the caller carries the truth from
the simulator's ``world`` into the map's ``map`` frame with `xiaomanlv_core.frames.world_from_map`,
docs/frames.md). Poses are planar rows ``(x, y, z, yaw)``: [m, m, m, rad].

- **Accuracy** (`accuracy`): ``rmse_m`` the RMS of the 3D position error, ``p99_m`` its 99th
  percentile, ``yaw_rmse_deg`` the RMS of the wrapped heading error.
- **Consistency** (`nees`): the normalised estimation error squared of the planar pose
  (x, y, yaw) against the estimate's own 3 x 3 covariance, averaged over the samples (ANEES), and
  its two-sided 95 % chi-square bounds ``chi2.ppf((0.025, 0.975), n d) / n`` for n samples of d
  degrees of freedom (Bar-Shalom, Li, Kirubarajan, "Estimation with Applications to Tracking and
  Navigation", 2001, sec. 5.4.2). The bounds assume independent samples; errors of a filter are
  correlated over short times, so the caller thins the samples (the bench takes one a second).
  ``in_bounds`` says whether the covariance tells the truth: too small an ANEES is an
  over-cautious filter, too large an over-confident one.
- **Dead reckoning** (`outage_drift`): how far the estimate wandered during a sensor outage, as
  a share of the distance driven: the largest change of the error vector since the outage began,
  over the true path length in it, in percent (the error carried into the outage is not drift).
- **Start** (`init_outcome`): a trial with no pose given succeeds when the first pose the
  localiser reports as confident comes within ``deadline`` seconds and lies within the tolerance
  (0.2 m, 2 deg); any confident report farther than `InitTolerance.false_m` or
  ``false_deg`` from the truth is a false confidence (a wrong hypothesis claimed).
- **Kidnap** (`kidnap_outcome`): after the robot is carried away, LOST must be reported within
  ``lost_within`` (1 s) and, after it, an OK pose within the tolerance within ``recover_within``
  (10 s) of the kidnap.
- **False alarms** (`false_lost`): the times the localiser went LOST while the estimate was
  within ``radius`` (0.3 m) of the truth.
- **GNSS jumps** (`jump_rejection_rate`): the share of injected jumps of which the fusion took
  no fix.
- **Where a trial may happen** (`map_covers`): a world-frame point the prior map covers (a FREE
  cell of its occupancy grid within a reach): starts, kidnaps and drives on walkways the mapping
  route never saw would measure the map's extent, not the localiser.

Time series are sampled by the caller; `TruthTrack` interpolates the truth at any stamp
(positions linearly, heading along the short way round) so that a pose stamped at a lidar
sweep's start is compared with where the robot was then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import binary_dilation
from scipy.stats import chi2

from xiaomanlv_mapping.model import FREE, Grid

OK, DEGRADED, LOST = "OK", "DEGRADED", "LOST"  # localiser states as the bench records them


def wrap_angle(a: ArrayLike) -> NDArray[np.float64]:
    """Angles [rad] wrapped into [-pi, pi)."""
    return np.asarray((np.asarray(a, dtype=float) + math.pi) % (2.0 * math.pi) - math.pi)


class TruthTrack:
    """The true planar pose over time, appended in time order and interpolated at any stamp.

    Raises (``at``):
        ValueError: a stamp outside the recorded span (more than ``slack`` seconds), or an empty
            track.
    """

    def __init__(self, slack: float = 0.02) -> None:
        self.slack = slack  # [s] how far outside the recorded span a lookup may fall
        self._t: list[float] = []
        self._p: list[tuple[float, float, float, float]] = []
        self._arrays: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    def __len__(self) -> int:
        return len(self._t)

    def append(self, stamp: float, x: float, y: float, z: float, yaw: float) -> None:
        """One true pose at ``stamp`` [s]; stamps must not go back (a repeat replaces nothing)."""
        if self._t and stamp < self._t[-1]:
            raise ValueError(f"truth stamp {stamp} s before the last one {self._t[-1]} s")
        if self._t and stamp == self._t[-1]:
            return
        self._t.append(stamp)
        self._p.append((x, y, z, yaw))
        self._arrays = None

    def clear(self) -> None:
        self._t.clear()
        self._p.clear()
        self._arrays = None

    def at(self, stamps: ArrayLike) -> NDArray[np.float64]:
        """(N, 4) x, y, z, yaw at ``stamps`` [s] (yaw wrapped)."""
        t = np.atleast_1d(np.asarray(stamps, dtype=float))
        if not self._t:
            raise ValueError("truth track is empty")
        if self._arrays is None:
            p = np.array(self._p, dtype=float)
            p[:, 3] = np.unwrap(p[:, 3])
            self._arrays = np.array(self._t, dtype=float), p
        times, poses = self._arrays
        if t.size and (t.min() < times[0] - self.slack or t.max() > times[-1] + self.slack):
            raise ValueError(
                f"truth asked at {t.min():.3f}..{t.max():.3f} s, recorded only over "
                f"{times[0]:.3f}..{times[-1]:.3f} s"
            )
        out = np.column_stack([np.interp(t, times, poses[:, k]) for k in range(4)])
        out[:, 3] = wrap_angle(out[:, 3])
        return out


def pose_errors(
    estimate: ArrayLike, truth: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """3D position error [m] and wrapped heading error [rad] of (N, 4) rows x, y, z, yaw.

    Raises:
        ValueError: shapes that differ or are not (N, 4).
    """
    est, tru = np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float)
    if est.shape != tru.shape or est.ndim != 2 or est.shape[1] != 4:
        raise ValueError(f"estimate {est.shape} and truth {tru.shape}: expected both (N, 4)")
    return np.linalg.norm(est[:, :3] - tru[:, :3], axis=1), wrap_angle(est[:, 3] - tru[:, 3])


@dataclass(frozen=True)
class Accuracy:
    rmse_m: float  # RMS 3D position error [m]
    p99_m: float  # 99th percentile of the position error [m]
    max_m: float  # [m]
    yaw_rmse_deg: float  # RMS heading error [deg]
    samples: int


def accuracy(position_error: ArrayLike, yaw_error: ArrayLike) -> Accuracy:
    """RMS, 99th percentile and largest position error [m], RMS heading error [deg].

    Raises:
        ValueError: no samples, or arrays of different lengths.
    """
    e, y = np.asarray(position_error, dtype=float), np.asarray(yaw_error, dtype=float)
    if e.size == 0 or e.shape != y.shape:
        raise ValueError(f"accuracy needs errors of equal, non-zero length: {e.shape}, {y.shape}")
    return Accuracy(
        rmse_m=float(np.sqrt(np.mean(e * e))),
        p99_m=float(np.percentile(e, 99.0)),
        max_m=float(e.max()),
        yaw_rmse_deg=math.degrees(float(np.sqrt(np.mean(y * y)))),
        samples=int(e.size),
    )


@dataclass(frozen=True)
class Nees:
    anees: float  # average NEES over the samples
    low: float  # 95 % chi-square bounds of the average
    high: float
    samples: int
    dof: int

    @property
    def in_bounds(self) -> bool:
        return self.low <= self.anees <= self.high


def nees_bounds(samples: int, dof: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided bounds of the average NEES of ``samples`` independent samples of ``dof``
    degrees of freedom: chi2.ppf((a/2, 1 - a/2), samples dof) / samples."""
    if samples < 1 or dof < 1:
        raise ValueError(f"NEES bounds need samples >= 1 and dof >= 1, got {samples}, {dof}")
    alpha = 1.0 - confidence
    k = samples * dof
    return float(chi2.ppf(alpha / 2, k)) / samples, float(chi2.ppf(1 - alpha / 2, k)) / samples


def nees(errors: ArrayLike, covariances: ArrayLike, confidence: float = 0.95) -> Nees:
    """ANEES of (N, d) errors against (N, d, d) covariances and its chi-square bounds.

    Raises:
        ValueError: shapes that do not agree, no samples, or a covariance that is not positive
            definite (naming the sample).
    """
    e = np.asarray(errors, dtype=float)
    p = np.asarray(covariances, dtype=float)
    if e.ndim != 2 or e.shape[0] == 0 or p.shape != (e.shape[0], e.shape[1], e.shape[1]):
        raise ValueError(f"NEES: errors {e.shape} and covariances {p.shape} do not agree")
    values = np.empty(len(e))
    for i in range(len(e)):
        try:
            chol = np.linalg.cholesky(p[i])
        except np.linalg.LinAlgError as err:
            raise ValueError(f"NEES: covariance of sample {i} is not positive definite") from err
        z = np.linalg.solve(chol, e[i])
        values[i] = z @ z
    low, high = nees_bounds(len(e), e.shape[1], confidence)
    return Nees(float(values.mean()), low, high, len(e), int(e.shape[1]))


def planar_nees_terms(
    estimate: ArrayLike, truth: ArrayLike, covariance6: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(N, 3) errors x, y, yaw and their (N, 3, 3) covariances from (N, 6, 6) pose covariances
    in the ROS order (x, y, z, roll, pitch, yaw): rows and columns 0, 1 and 5."""
    est, tru = np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float)
    cov = np.asarray(covariance6, dtype=float)
    idx = np.array([0, 1, 5])
    err = np.column_stack([est[:, 0] - tru[:, 0], est[:, 1] - tru[:, 1]])
    err = np.column_stack([err, wrap_angle(est[:, 3] - tru[:, 3])])
    return err, cov[:, idx][:, :, idx]


@dataclass(frozen=True)
class Drift:
    drift_m: float  # largest change of the position error during the outage [m]
    distance_m: float  # true path length in it [m]

    @property
    def pct(self) -> float | None:
        return 100.0 * self.drift_m / self.distance_m if self.distance_m > 0.0 else None


def outage_drift(
    stamps: ArrayLike, estimate_xy: ArrayLike, truth_xy: ArrayLike, start: float, end: float
) -> Drift:
    """Drift of an estimate during an outage ``[start, end]`` [s]: the error vector at each sample
    minus the one at the first sample in the window, its largest norm, and the distance driven.

    Raises:
        ValueError: fewer than two samples in the window.
    """
    t = np.asarray(stamps, dtype=float)
    est, tru = np.asarray(estimate_xy, dtype=float), np.asarray(truth_xy, dtype=float)
    inside = (t >= start) & (t <= end)
    if np.count_nonzero(inside) < 2:
        raise ValueError(f"outage {start:.1f}..{end:.1f} s holds fewer than two samples")
    err = est[inside] - tru[inside]
    drift = float(np.max(np.linalg.norm(err - err[0], axis=1)))
    distance = float(np.sum(np.linalg.norm(np.diff(tru[inside], axis=0), axis=1)))
    return Drift(drift, distance)


@dataclass(frozen=True)
class InitTolerance:
    position_m: float = 0.2  # [m] a start is right within this
    yaw_deg: float = 2.0  # [deg]
    deadline: float = 5.0  # [s] of simulated time from the start
    false_m: float = 1.0  # [m] a confident pose this far off claims a wrong hypothesis
    false_deg: float = 5.0  # [deg]


@dataclass(frozen=True)
class PoseReport:
    """What the localiser said at ``stamp``: its pose (x, y, z, yaw) and whether it claims it."""

    stamp: float  # [s]
    pose: tuple[float, float, float, float]
    confident: bool


@dataclass(frozen=True)
class InitOutcome:
    success: bool
    false_confident: bool
    time_to_confident: float | None  # [s] from the start to the first confident report
    error_m: float | None  # of the first confident report
    error_deg: float | None


def init_outcome(
    reports: Sequence[PoseReport],
    truth: TruthTrack,
    start: float,
    tolerance: InitTolerance = InitTolerance(),
) -> InitOutcome:
    """Judge one start with no pose given from the localiser's reports after ``start`` [s]."""
    first: tuple[float, float, float] | None = None
    false_confident = False
    for r in reports:
        if not r.confident or r.stamp < start:
            continue
        pos, yaw = pose_errors(np.array([r.pose]), truth.at(r.stamp))
        e_m, e_deg = float(pos[0]), abs(math.degrees(float(yaw[0])))
        if e_m > tolerance.false_m or e_deg > tolerance.false_deg:
            false_confident = True
        if first is None:
            first = (r.stamp - start, e_m, e_deg)
    if first is None:
        return InitOutcome(False, false_confident, None, None, None)
    dt, e_m, e_deg = first
    ok = dt <= tolerance.deadline and e_m <= tolerance.position_m and e_deg <= tolerance.yaw_deg
    return InitOutcome(ok, false_confident, dt, e_m, e_deg)


@dataclass(frozen=True)
class StateReport:
    """The localiser's state at ``stamp`` and its pose then (None: it gave none)."""

    stamp: float  # [s]
    state: str  # OK, DEGRADED or LOST
    pose: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class KidnapOutcome:
    lost_after: float | None  # [s] from the kidnap to the first LOST
    recovered_after: float | None  # [s] from the kidnap to the first good OK after LOST
    success: bool


def kidnap_outcome(
    reports: Sequence[StateReport],
    truth: TruthTrack,
    kidnapped_at: float,
    *,
    lost_within: float = 1.0,
    recover_within: float = 10.0,
    tolerance: InitTolerance = InitTolerance(),
) -> KidnapOutcome:
    """Judge one kidnap at ``kidnapped_at`` [s]: LOST within ``lost_within`` [s], then OK with a
    pose within the tolerance within ``recover_within`` [s] of the kidnap."""
    lost: float | None = None
    recovered: float | None = None
    for r in reports:
        if r.stamp < kidnapped_at:
            continue
        if lost is None:
            if r.state == LOST:
                lost = r.stamp - kidnapped_at
            continue
        if r.state == OK and r.pose is not None:
            pos, yaw = pose_errors(np.array([r.pose]), truth.at(r.stamp))
            if pos[0] <= tolerance.position_m and abs(math.degrees(yaw[0])) <= tolerance.yaw_deg:
                recovered = r.stamp - kidnapped_at
                break
    success = (
        lost is not None
        and lost <= lost_within
        and recovered is not None
        and recovered <= recover_within
    )
    return KidnapOutcome(lost, recovered, success)


def false_lost(
    stamps: ArrayLike, states: Sequence[str], position_error: ArrayLike, radius: float = 0.3
) -> int:
    """How often the localiser entered LOST while the estimate was within ``radius`` [m] of the
    truth (``position_error`` [m] at each state's stamp)."""
    e = np.asarray(position_error, dtype=float)
    if len(states) != len(e) or len(states) != len(np.asarray(stamps)):
        raise ValueError(f"false_lost: {len(states)} states for {len(e)} errors")
    count, previous = 0, None
    for state, err in zip(states, e, strict=True):
        if state == LOST and previous != LOST and err <= radius:
            count += 1
        previous = state
    return count


def jump_rejection_rate(accepted_fixes_per_jump: Sequence[int]) -> float | None:
    """Share of GNSS jumps of which the fusion accepted no fix (None: no jump happened)."""
    if not accepted_fixes_per_jump:
        return None
    rejected = sum(1 for n in accepted_fixes_per_jump if n == 0)
    return rejected / len(accepted_fixes_per_jump)


def rate(successes: Sequence[bool]) -> float | None:
    """Share of True (None: no trials)."""
    return sum(map(bool, successes)) / len(successes) if successes else None


def median_p99(values_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """Median and 99th percentile of timings [ms] (None, None without any)."""
    if not values_ms:
        return None, None
    v = np.asarray(values_ms, dtype=float)
    return float(np.median(v)), float(np.percentile(v, 99.0))


def map_covers(
    grid: Grid, map_from_world: ArrayLike, reach: float = 1.0
) -> Callable[[float, float], bool]:
    """Whether the prior map covers a world-frame point (x, y) [m]: a FREE cell of its
    occupancy ``grid`` within ``reach`` [m] of it, once carried into ``map`` by
    ``map_from_world`` (4x4); ground the mapping drive saw. Outside the grid: not covered.

    Raises:
        ValueError: a grid with a rotated origin (the map build writes none).
    """
    if abs(grid.origin[2]) > 1e-9:
        raise ValueError(f"map grid: a rotated origin ({grid.origin[2]} rad) is not supported")
    m = np.asarray(map_from_world, dtype=np.float64)
    cells = max(1, round(reach / grid.resolution))
    disk = np.hypot(*np.mgrid[-cells : cells + 1, -cells : cells + 1]) <= cells
    near = binary_dilation(grid.cells == FREE, structure=disk)
    rows, cols = near.shape

    def covered(x: float, y: float) -> bool:
        px = m[0, 0] * x + m[0, 1] * y + m[0, 3]
        py = m[1, 0] * x + m[1, 1] * y + m[1, 3]
        col = math.floor((px - grid.origin[0]) / grid.resolution)
        row = math.floor((py - grid.origin[1]) / grid.resolution)
        return bool(0 <= row < rows and 0 <= col < cols and near[row, col])

    return covered
