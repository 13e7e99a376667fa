"""Localisation integrity: is the localiser's pose still right, without trusting one score?

A match score alone cannot tell a good pose from a wrong one that fits the scan locally
(autoware_core #1340: with half the lidar covered the pose drifted 4.5-6.2 m while the NDT
score stayed good). The monitor therefore weighs independent evidence, each a statistical test
(Bar-Shalom, Li, Kirubarajan, *Estimation with Applications to Tracking and Navigation*, 2001,
5.4: normalised innovation squared against chi-square gates), and believes no single one:

- **odometry**: the registrations' relative motion over the last ``odometry_window`` against
  the odometry's over the same time, ``(dx, dy, dyaw)`` chi-square (3 dof) on the odometry's
  noise (a floor plus a share of the distance and of the turn) and both matches' covariances;
- **GNSS** (through the datum: fixes in the map frame): the fix against the pose, Mahalanobis
  on the fix's and the match's covariance (2 dof); multipath and injected jumps are single
  fixes or short holds, so fixes count only when ``gnss_min_fixes`` of the last
  ``gnss_recent_fixes`` within ``gnss_window`` disagree, and *gross* when those are also
  farther than ``gnss_gross_distance``;
- **the match itself**: its inlier share against its own running baseline (a collapse when
  the scan stops fitting where the pose says), too few points (half the lidar blocked,
  heavy rain), or no match at all;
- **alternative hypotheses** (optional, from a periodic cheap re-search near the pose,
  `xiaomanlv_nav.localization.global_search`): a distinct pose that fits clearly better than
  the current one.

State: **OK** when every check passes; **DEGRADED** when any fails (one piece of evidence is not
proof: multipath, a wheel slipping, rain, a crowd); **LOST** when independent evidence agrees for
``lost_persistence``: a gross GNSS disagreement together with a failing match or odometry check, a
clearly better alternative twice in a row, the match collapsing together with the odometry check, or
nothing fitting at all (`MatchLike.fit_ratio`: the share of the steep points, walls and poles, in
the map's occupied space; the ground fits anywhere) for ``no_fit_time`` unless GNSS vouches for the
pose (recent fixes agreeing with a match whose covariance is not large: a match metres uncertain
agrees with any fix). A moderate GNSS disagreement never counts towards LOST (multipath holds of a
few metres beside a building, with rain thinning the match, are a normal day). LOST is latched until
:meth:`IntegrityMonitor.reset` (the localiser found its pose again by a global search): a kidnapped
robot does not drift back into being right. Each state carries its reasons (stable strings, for
/diagnostics and the status topic).

Frames: poses 4x4 map <- base_link; odometry deltas base_link(previous update) <- base_link(this
one); GNSS horizontal positions of base_link in the map frame [m]; stamps [s]. Pure Python.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from xiaomanlv_core.config import ConfigError, param, validate_fields
from xiaomanlv_core.geometry import wrap_angle, yaw_of

__all__ = [
    "Integrity",
    "IntegrityConfig",
    "IntegrityMonitor",
    "LocalizationState",
    "MatchLike",
]

# Reasons (Integrity.reasons), stable strings.
NO_MATCH = "no match"
FEW_POINTS = "few scan points"
INLIER_COLLAPSE = "match inliers collapsed"
ODOMETRY_INCONSISTENT = "match disagrees with odometry"
GNSS_INCONSISTENT = "match disagrees with GNSS"
GNSS_GROSS = "match far from GNSS"
BETTER_ALTERNATIVE = "a distinct pose fits better"
LARGE_COVARIANCE = "match covariance large"
LATCHED = "lost until re-initialised"
NOT_INITIALISED = "not initialised"


class LocalizationState(enum.IntEnum):
    """As the status message numbers them."""

    OK = 0
    DEGRADED = 1
    LOST = 2


@dataclass(frozen=True)
class Integrity:
    state: LocalizationState
    reasons: tuple[str, ...]
    odometry_nis: float = math.nan  # last odometry chi-square (3 dof)
    gnss_nis: float = math.nan  # last GNSS chi-square (2 dof)
    inlier_ratio: float = math.nan  # last match's inlier share
    baseline_inlier_ratio: float = math.nan  # its running baseline


class MatchLike(Protocol):
    """What the monitor reads of a registration (`registration.Registration` has it)."""

    @property
    def pose(self) -> NDArray[np.float64]: ...  # 4x4 map <- base_link
    @property
    def covariance(self) -> NDArray[np.float64]: ...  # 6x6 [x y z roll pitch yaw]
    @property
    def points(self) -> int: ...
    @property
    def inliers(self) -> int: ...
    @property
    def fit_ratio(self) -> float: ...  # share that found the map, on walls when there are some


@dataclass(frozen=True)
class IntegrityConfig:
    """Parameters of :class:`IntegrityMonitor` (module docstring)."""

    gate_probability: float = param(
        0.999, low=0.5, high=0.999999, description="chi-square gate of the consistency tests"
    )
    odometry_window: float = param(
        2.0, low=0.1, high=60.0, unit="s", description="relative motion compared over this"
    )  # [s]
    odometry_min_span: float = param(
        0.5, low=0.0, high=60.0, unit="s", description="compare once the window spans this"
    )  # [s]
    odometry_position_floor: float = param(
        0.05, low=0.0, high=10.0, unit="m", description="odometry position std at no motion"
    )  # [m]
    odometry_position_per_m: float = param(
        0.03, low=0.0, high=1.0, description="odometry position std per metre driven (slip)"
    )  # [m/m]
    odometry_yaw_floor: float = param(
        0.01, low=0.0, high=1.0, unit="rad", description="odometry heading std at no motion"
    )  # [rad]
    odometry_yaw_per_rad: float = param(
        0.05, low=0.0, high=1.0, description="odometry heading std per radian turned"
    )  # [rad/rad]
    odometry_yaw_per_m: float = param(
        0.005, low=0.0, high=1.0, unit="rad/m", description="heading std per metre driven"
    )  # [rad/m]
    gnss_window: float = param(
        2.0, low=0.1, high=60.0, unit="s", description="GNSS fixes judged together over this"
    )  # [s]
    gnss_min_fixes: int = param(
        3, low=1, high=100, description="of those, this many must disagree to count at all"
    )
    gnss_recent_fixes: int = param(
        4, low=1, high=100, description="the last this many fixes of the window are judged"
    )
    gnss_gross_distance: float = param(
        12.0, low=0.0, high=1000.0, unit="m", description="a disagreeing fix this far is gross"
    )  # [m] beyond multipath (3 m std, the sim's model) and its 3 sigma
    baseline_rate: float = param(
        0.05, low=0.001, high=1.0, description="running inlier baseline's update share per match"
    )
    collapse_ratio: float = param(
        0.75, low=0.0, high=1.0, description="inliers below this share of the baseline collapse"
    )
    min_inlier_ratio: float = param(
        0.3, low=0.0, high=1.0, description="inlier share below this is a collapse whatever"
    )
    no_fit_ratio: float = param(
        0.1,
        low=0.0,
        high=1.0,
        description="fit share (on walls when a sweep has some) below this: nothing fits",
    )
    few_points_ratio: float = param(
        0.6, low=0.0, high=1.0, description="fewer points than this share of usual: DEGRADED"
    )
    max_position_std: float = param(
        0.5, low=0.001, high=100.0, unit="m", description="OK needs the match's std below this"
    )  # [m] largest horizontal axis
    alternative_ratio: float = param(
        1.25, low=1.0, high=10.0, description="an alternative this many times fitter is better"
    )
    alternative_min_fitness: float = param(
        0.3, low=0.0, high=1.0, description="an alternative must fit at least this to count"
    )
    distinct_distance: float = param(
        2.0, low=0.1, high=100.0, unit="m", description="an alternative this far is distinct"
    )  # [m]
    distinct_heading: float = param(
        0.1745, low=0.001, high=math.pi, unit="rad", description="or this far in heading"
    )  # [rad]
    lost_persistence: float = param(
        0.3, low=0.0, high=10.0, unit="s", description="agreeing evidence must last this long"
    )  # [s] at 10 Hz sweeps and 5 Hz fixes LOST follows a kidnap within about 0.6 s
    no_fit_time: float = param(
        0.5, low=0.0, high=60.0, unit="s", description="nothing fitting this long is LOST"
    )  # [s] at 0.8 the fixes still vouched past 1 s on 2 of 20 full-bench kidnaps

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.gnss_min_fixes > self.gnss_recent_fixes:
            raise ConfigError(
                f"parameter 'gnss_min_fixes' = {self.gnss_min_fixes} must not exceed "
                f"'gnss_recent_fixes' = {self.gnss_recent_fixes}"
            )
        if self.no_fit_ratio > self.min_inlier_ratio:
            raise ConfigError(
                f"parameter 'no_fit_ratio' = {self.no_fit_ratio} must not exceed "
                f"'min_inlier_ratio' = {self.min_inlier_ratio}"
            )


@dataclass
class _Keyframe:
    stamp: float  # [s]
    pose: NDArray[np.float64]  # 4x4 map <- base_link (the match)
    odom: NDArray[np.float64]  # 4x4 accumulated odometry since the window's start
    cov: NDArray[np.float64]  # 3x3 [x y yaw] of the match
    travelled: float  # [m] odometry distance since the chain's start
    turned: float  # [rad] odometry |heading change| since the chain's start


class IntegrityMonitor:
    """Judges every match (module docstring); call :meth:`update` once per scan.

    Args:
        config: thresholds and windows.
    """

    def __init__(self, config: IntegrityConfig | None = None) -> None:
        self.config = config or IntegrityConfig()
        cfg = self.config
        self._gate2 = float(chi2.ppf(cfg.gate_probability, 2))
        self._gate3 = float(chi2.ppf(cfg.gate_probability, 3))
        self.reset()

    def reset(self) -> None:
        """Forget everything: the localiser has (re-)initialised its pose."""
        self._chain: deque[_Keyframe] = deque()
        self._fixes: deque[tuple[float, bool, bool]] = deque()  # stamp, inconsistent, gross
        self._baseline = math.nan
        self._usual_points = math.nan
        self._since: dict[str, float] = {}  # evidence -> stamp it started failing
        self._alternative_strikes = 0
        self._lost = False
        self._stamp = -math.inf

    @property
    def lost(self) -> bool:
        return self._lost

    def update(
        self,
        stamp: float,
        registration: MatchLike | None,
        odom_delta: ArrayLike | None,
        gnss_xy_map: ArrayLike | None,
        gnss_cov_xy: ArrayLike | None,
        alternatives: Sequence[tuple[ArrayLike, float]] | None = None,
        current_fitness: float | None = None,
    ) -> Integrity:
        """Judge the match of the scan stamped ``stamp`` [s].

        Args:
            registration: the match (None: the scan was not matched: empty, rejected).
            odom_delta: 4x4 odometry motion base_link(previous update) <- base_link(now);
                None when there is none (the odometry check restarts).
            gnss_xy_map, gnss_cov_xy: a fix that arrived since the last update, base_link's
                position in the map frame [m] and its covariance [m^2]; None for none. A
                non-finite fix is ignored.
            alternatives: (pose, fitness) hypotheses of a re-search near the pose; the one
                within ``distinct_*`` of the match stands for the current pose, with its
                fitness unless ``current_fitness`` is given.
        Returns:
            The state and its reasons. An update stamped before the last one is judged
            without moving the windows (it says nothing about now).
        """
        cfg = self.config
        fresh = stamp >= self._stamp
        if fresh:
            self._stamp = stamp
        now = self._stamp
        failing: set[str] = set()
        odometry_nis = gnss_nis = math.nan
        ratio = math.nan

        if registration is None or registration.points <= 0:
            failing.add(NO_MATCH)
            self._chain.clear()
        else:
            pose = np.asarray(registration.pose, dtype=np.float64)
            cov6 = np.asarray(registration.covariance, dtype=np.float64)
            ratio = registration.inliers / registration.points
            failing |= self._match_checks(registration, ratio, cov6)
            if fresh:
                odometry_nis = self._odometry_check(stamp, pose, cov6, odom_delta)
                if odometry_nis > self._gate3:
                    failing.add(ODOMETRY_INCONSISTENT)
            if gnss_xy_map is not None and gnss_cov_xy is not None:
                gnss_nis = self._gnss_fix(now, pose, cov6, gnss_xy_map, gnss_cov_xy)
            failing |= self._gnss_verdict(now)
            if alternatives is not None:
                failing |= self._alternative_check(pose, alternatives, current_fitness)
        fits = registration is not None and registration.fit_ratio >= cfg.no_fit_ratio
        if NO_MATCH not in failing and fits:
            self._since.pop("no fit", None)
        else:
            self._since.setdefault("no fit", now)
        for key in list(self._since):
            if key != "no fit" and key not in failing:
                del self._since[key]
        for key in failing:
            self._since.setdefault(key, now)

        if not self._lost and self._lost_now(now, failing):
            self._lost = True
        if self._lost:
            state = LocalizationState.LOST
            reasons = (*sorted(failing), LATCHED)
        elif failing:
            state = LocalizationState.DEGRADED
            reasons = tuple(sorted(failing))
        else:
            state = LocalizationState.OK
            reasons = ()
        return Integrity(state, reasons, odometry_nis, gnss_nis, ratio, self._baseline)

    # ---- the checks -----------------------------------------------------------------------------
    def _match_checks(self, match: MatchLike, ratio: float, cov6: NDArray[np.float64]) -> set[str]:
        cfg = self.config
        out: set[str] = set()
        if math.isnan(self._usual_points):
            self._usual_points = float(match.points)
        elif match.points < cfg.few_points_ratio * self._usual_points:
            out.add(FEW_POINTS)
        else:
            self._usual_points += cfg.baseline_rate * (match.points - self._usual_points)
        collapsed = ratio < cfg.min_inlier_ratio
        if not math.isnan(self._baseline):
            collapsed |= ratio < cfg.collapse_ratio * self._baseline
        if collapsed:
            out.add(INLIER_COLLAPSE)
        elif FEW_POINTS not in out:
            # Only healthy matches teach the baseline: a slow slide must not become normal.
            if math.isnan(self._baseline):
                self._baseline = ratio
            else:
                self._baseline += cfg.baseline_rate * (ratio - self._baseline)
        xy = cov6[:2, :2]
        if not np.all(np.isfinite(xy)) or float(np.linalg.eigvalsh(xy)[-1]) > (
            cfg.max_position_std**2
        ):
            out.add(LARGE_COVARIANCE)
        return out

    def _odometry_check(
        self,
        stamp: float,
        pose: NDArray[np.float64],
        cov6: NDArray[np.float64],
        odom_delta: ArrayLike | None,
    ) -> float:
        """Chi-square (3 dof) of the match's motion over the window against the odometry's;
        NaN until the window spans ``odometry_min_span``."""
        cfg = self.config
        cov = _planar_cov(cov6)
        delta = None if odom_delta is None else np.asarray(odom_delta, dtype=np.float64)
        if (
            delta is None
            or delta.shape != (4, 4)
            or not np.all(np.isfinite(delta))
            or not (self._chain)
        ):
            self._chain.clear()
            self._chain.append(_Keyframe(stamp, pose, np.eye(4), cov, 0.0, 0.0))
            return math.nan
        last = self._chain[-1]
        odom = last.odom @ delta
        travelled = last.travelled + float(np.hypot(delta[0, 3], delta[1, 3]))
        turned = last.turned + abs(yaw_of(delta[:3, :3]))
        self._chain.append(_Keyframe(stamp, pose, odom, cov, travelled, turned))
        while len(self._chain) > 2 and stamp - self._chain[1].stamp >= cfg.odometry_window:
            self._chain.popleft()
        first = self._chain[0]
        if stamp - first.stamp < cfg.odometry_min_span:
            return math.nan
        matched = np.linalg.inv(first.pose) @ pose
        driven = np.linalg.inv(first.odom) @ odom
        error = np.linalg.inv(driven) @ matched
        e = np.array([error[0, 3], error[1, 3], yaw_of(error[:3, :3])])
        distance = travelled - first.travelled
        turn = turned - first.turned
        sp = cfg.odometry_position_floor + cfg.odometry_position_per_m * distance
        sy = (
            cfg.odometry_yaw_floor
            + cfg.odometry_yaw_per_rad * turn
            + cfg.odometry_yaw_per_m * distance
        )
        # Both matches' covariances, in the first match's body frame (rotation only).
        r = np.eye(3)
        r[:2, :2] = first.pose[:2, :2].T
        s = np.diag([sp * sp, sp * sp, sy * sy]) + r @ (first.cov + cov) @ r.T
        return float(e @ np.linalg.solve(s, e))

    def _gnss_fix(
        self,
        now: float,
        pose: NDArray[np.float64],
        cov6: NDArray[np.float64],
        gnss_xy_map: ArrayLike,
        gnss_cov_xy: ArrayLike,
    ) -> float:
        fix = np.asarray(gnss_xy_map, dtype=np.float64).reshape(-1)
        cov = np.asarray(gnss_cov_xy, dtype=np.float64)
        if fix.shape != (2,) or cov.shape != (2, 2):
            return math.nan
        if not (np.all(np.isfinite(fix)) and np.all(np.isfinite(cov))):
            return math.nan
        s = 0.5 * (cov + cov.T) + cov6[:2, :2]
        if float(np.linalg.eigvalsh(s)[0]) <= 0.0:
            return math.nan
        d = fix - pose[:2, 3]
        nis = float(d @ np.linalg.solve(s, d))
        inconsistent = nis > self._gate2
        gross = inconsistent and float(np.hypot(*d)) > self.config.gnss_gross_distance
        self._fixes.append((now, inconsistent, gross))
        return nis

    def _gnss_verdict(self, now: float) -> set[str]:
        cfg = self.config
        while self._fixes and now - self._fixes[0][0] > cfg.gnss_window:
            self._fixes.popleft()
        recent = list(self._fixes)[-cfg.gnss_recent_fixes :]
        bad = sum(1 for _, inconsistent, _ in recent if inconsistent)
        gross = sum(1 for _, _, g in recent if g)
        out: set[str] = set()
        if bad >= cfg.gnss_min_fixes:
            out.add(GNSS_INCONSISTENT)
            if gross >= cfg.gnss_min_fixes:
                out.add(GNSS_GROSS)
        return out

    def _alternative_check(
        self,
        pose: NDArray[np.float64],
        alternatives: Sequence[tuple[ArrayLike, float]],
        current_fitness: float | None,
    ) -> set[str]:
        cfg = self.config
        own = current_fitness
        best_other = 0.0
        for candidate, fitness in alternatives:
            other = np.asarray(candidate, dtype=np.float64)
            apart = float(np.hypot(*(other[:2, 3] - pose[:2, 3])))
            turn = abs(wrap_angle(yaw_of(other[:3, :3]) - yaw_of(pose[:3, :3])))
            if apart <= cfg.distinct_distance and turn <= cfg.distinct_heading:
                if current_fitness is None:
                    own = max(own or 0.0, float(fitness))
            else:
                best_other = max(best_other, float(fitness))
        own = own or 0.0
        if best_other >= cfg.alternative_min_fitness and best_other > cfg.alternative_ratio * own:
            self._alternative_strikes += 1
            return {BETTER_ALTERNATIVE}
        self._alternative_strikes = 0
        return set()

    # ---- the verdict ----------------------------------------------------------------------------
    def _lost_now(self, now: float, failing: set[str]) -> bool:
        """Independent evidence agreeing for ``lost_persistence`` (module docstring)."""
        cfg = self.config

        def held(key: str) -> bool:
            start = self._since.get(key)
            return start is not None and now - start >= cfg.lost_persistence

        match_bad = held(INLIER_COLLAPSE) or held(NO_MATCH)
        if held(GNSS_GROSS) and (match_bad or held(ODOMETRY_INCONSISTENT)):
            return True
        if self._alternative_strikes >= 2:
            return True
        if match_bad and held(ODOMETRY_INCONSISTENT):
            return True
        no_fit = self._since.get("no fit")
        if no_fit is not None and now - no_fit >= cfg.no_fit_time:
            # GNSS vouches for a pose nothing fits only when it has fixes that agree with a
            # pose the match pins down: a match metres uncertain agrees with a fix 30 m away
            vouched = self._fixes and not failing & {GNSS_INCONSISTENT, LARGE_COVARIANCE}
            return not vouched
        return False


def _planar_cov(cov6: NDArray[np.float64]) -> NDArray[np.float64]:
    """3x3 [x y yaw] block of a 6x6 [x y z roll pitch yaw] covariance."""
    idx = [0, 1, 5]
    out = cov6[np.ix_(idx, idx)]
    if not np.all(np.isfinite(out)):
        return np.diag([1e6, 1e6, 1e6])
    return np.asarray(out, dtype=np.float64)
