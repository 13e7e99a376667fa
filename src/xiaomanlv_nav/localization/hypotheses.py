"""Starting alone among people: hypotheses of the global search followed over several sweeps by
odometry, confident only when one keeps clearly beating every distinct other.

One sweep cannot tell a pose from a look-alike in a crowd: people standing by a wrong
hypothesis's walls make it fit, and a ring of people around the robot hides the walls that
would tell them apart (at the university's station one search was confident 66 m and 180 deg
off). Walls do not move and people do, so the evidence is accumulated, as a multi-hypothesis
tracker does (Reid, "An algorithm for tracking multiple targets", IEEE TAC 1979; the pose-set
form of Monte Carlo localisation's particle weights, Thrun, Burgard, Fox, *Probabilistic
Robotics*, 2005, 8.3, without resampling): every distinct hypothesis a search returns becomes a
track; each sweep, driving or standing, every track is carried by the odometry's motion since
the last one and scored again on the new sweep (`GlobalSearch.evidence`: the share of its
obstacle points on the map less the share of its rays that pass through the map's obstacles,
free-space negative evidence that people cannot fake: a ray ends at what it hits, so a right
pose's rays never cross the map's walls, whatever stands in the way).

A track is **confident** when it has been scored on at least ``min_sweeps`` sweeps, its mean
fitness over its last ``evidence_sweeps`` is at least ``min_fitness`` and its mean see-through at
most ``max_see_through``, no distinct track comes near its mean score
(`global_search.ambiguous`: above ``max_ratio`` of it while missing fewer than
``min_misfit_ratio`` times its share of points) and none beat it on any of the last
``min_sweeps`` sweeps (a rival that the kept GNSS fixes place clearly worse than it, in the
mean of their squared Mahalanobis distances, is none: `HypothesisTracker._ruled_out`), and it
agrees with more than ``gnss_min_agree`` of the GNSS fixes of the
last ``gnss_history`` seconds, each compared with where the track puts the robot at the fix's
time (chained by the odometry, its drift ``odometry_drift`` per metre added to the fix's
covariance): a GNSS jump or multipath hold (seconds) is outvoted by the fixes around it.
Otherwise the decision names the reason (global_search's reasons) and the search goes on with
the next sweep.

Frames: poses 4x4 map <- base_link, odometry 4x4 odom <- base_link, fixes base_link's position
in the map frame [m] with their covariance [m^2]; stamps [s]. Pure Python (numpy, scipy).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from xiaomanlv_nav.localization.global_search import (
    AMBIGUOUS,
    CONFIDENT,
    OUTSIDE_GNSS,
    POOR_MATCH,
    GlobalSearch,
    GlobalSearchConfig,
    PreparedScan,
    SearchResult,
    ambiguous,
    distinct,
)

__all__ = ["Decision", "HypothesisTracker", "Track"]

FEW_SWEEPS = "gathering evidence"
NO_HYPOTHESIS = "no hypothesis yet"
GNSS_DISAGREES = "best hypothesis disagrees with GNSS"


_Fix = tuple[float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
# stamp [s], xy [m] and covariance [m^2] in the map frame, odom <- base_link at the sweep


@dataclass
class Track:
    """One hypothesis followed by odometry."""

    pose: NDArray[np.float64]  # 4x4 map <- base_link at the last sweep
    odom: NDArray[np.float64]  # 4x4 odom <- base_link then
    fitness: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    see_through: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    sweeps: int = 0  # sweeps it was scored on

    def mean_fitness(self, last: int) -> float:
        return float(np.mean(list(self.fitness)[-last:])) if self.fitness else 0.0

    def mean_see_through(self, last: int) -> float:
        return float(np.mean(list(self.see_through)[-last:])) if self.see_through else 1.0

    def scores(self, last: int) -> list[float]:
        """Fitness less see-through on each of the last ``last`` sweeps, newest last."""
        fit, see = list(self.fitness)[-last:], list(self.see_through)[-last:]
        return [f - s for f, s in zip(fit, see, strict=True)]

    def score(self, last: int) -> float:
        """Mean fitness less mean see-through over the last ``last`` sweeps."""
        return self.mean_fitness(last) - self.mean_see_through(last)


@dataclass(frozen=True)
class Decision:
    """The tracker's verdict after one sweep."""

    pose: NDArray[np.float64] | None  # the best track's pose at this sweep (None: no track)
    confident: bool
    reason: str
    tracks: int = 0
    score: float = 0.0  # the best track's mean score
    runner_up: float = 0.0  # the best distinct other's
    searched: bool = False  # a global search ran on this sweep
    hypotheses: list[tuple[NDArray[np.float64], float]] = field(default_factory=list)


class HypothesisTracker:
    """Multi-sweep global localisation (module docstring) over the searches the ``search``
    factory gives for the tiles held (one `GlobalSearch` per tile set, its crop cached).

    Args:
        config: the global search's parameters (the tracker's are among them).
    """

    def __init__(self, config: GlobalSearchConfig | None = None) -> None:
        self.config = config or GlobalSearchConfig()
        self._gate2 = float(chi2.ppf(0.999, 2))
        self.tracks: list[Track] = []
        self._fixes: deque[
            tuple[float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
        ]
        self._fixes = deque()
        self.searches = 0

    def reset(self) -> None:
        """Forget every track and fix (a new search begins: start-up or a kidnap)."""
        self.tracks.clear()
        self._fixes.clear()

    def step(
        self,
        stamp: float,
        search: GlobalSearch | None,
        scan: ArrayLike,
        odom_base: ArrayLike,
        fix: tuple[ArrayLike, ArrayLike] | None,
        *,
        sensor_origin: ArrayLike = (0.0, 0.0, 0.0),
    ) -> Decision | None:
        """One sweep (``scan`` (N,3) [m] in base_link at ``stamp`` [s], the odometry reading
        ``odom_base`` then) with the fix that came since the last one (``(xy, cov)`` in the map
        frame, or None); ``search``: the global search of the tiles held (None: no map).
        Returns None when there is nothing to judge yet (no fix has come, no track)."""
        cfg = self.config
        odom = np.asarray(odom_base, dtype=np.float64)
        if fix is not None:
            xy = np.asarray(fix[0], dtype=np.float64).reshape(2)
            cov = np.asarray(fix[1], dtype=np.float64).reshape(2, 2)
            if np.all(np.isfinite(xy)) and np.all(np.isfinite(cov)):
                self._fixes.append((float(stamp), xy, 0.5 * (cov + cov.T), odom))
        while self._fixes and stamp - self._fixes[0][0] > cfg.gnss_history:
            self._fixes.popleft()
        if search is None or (fix is None and not self.tracks):
            return None
        prepared = search.prepare(scan, sensor_origin=sensor_origin)
        if prepared is None:
            return None
        for track in self.tracks:  # carried by the odometry to this sweep
            track.pose = track.pose @ np.linalg.inv(track.odom) @ odom
            track.odom = odom
        result: SearchResult | None = None
        fresh: dict[int, tuple[float, float]] = {}
        if fix is not None:
            result = search.search(prepared, fix[0], fix[1])
            self.searches += 1
            for h in result.evidence:
                fresh[self._merge(h.pose, odom)] = (h.fitness, h.see_through)
        for k, track in enumerate(self.tracks):
            fit, see = fresh[k] if k in fresh else search.evidence(prepared, track.pose)
            track.fitness.append(fit)
            track.see_through.append(see)
            track.sweeps += 1
        self._prune()
        return self._decide(result, prepared)

    # ---- internals ------------------------------------------------------------------------------
    def _merge(self, pose: NDArray[np.float64], odom: NDArray[np.float64]) -> int:
        """The index of the track ``pose`` joins (refreshed to the search's refined pose) or
        starts."""
        for k, track in enumerate(self.tracks):
            if not distinct(pose, track.pose, self.config):
                track.pose = pose
                return k
        self.tracks.append(Track(pose, odom))
        return len(self.tracks) - 1

    def _prune(self) -> None:
        cfg = self.config
        last = cfg.evidence_sweeps
        self.tracks.sort(key=lambda t: -t.score(last))
        del self.tracks[cfg.max_tracks :]

    def _distances2(self, track: Track) -> list[float]:
        """Squared Mahalanobis distance of each kept fix to where ``track`` puts the robot at
        the fix's time (chained by the odometry, its drift added to the fix's covariance)."""
        out = []
        back = track.pose @ np.linalg.inv(track.odom)  # map <- odom on this hypothesis
        for _, xy, cov, odom in self._fixes:
            then = back @ odom
            driven = float(np.hypot(*(track.odom[:2, 3] - odom[:2, 3])))
            s = cov + np.eye(2) * (self.config.odometry_drift * driven) ** 2
            d = xy - then[:2, 3]
            out.append(float(d @ np.linalg.solve(s, d)))
        return out

    def _gnss_agreement(self, track: Track) -> float:
        """Share of the kept fixes within the chi-square gate of where ``track`` puts the
        robot at each fix's time (NaN without fixes)."""
        if not self._fixes:
            return math.nan
        return sum(d2 <= self._gate2 for d2 in self._distances2(track)) / len(self._fixes)

    def _ruled_out(self, rival: Track, best: Track) -> bool:
        """GNSS tells ``rival`` from ``best`` where the scan cannot (a standing robot in a
        corridor, its look-alike a few metres along it): over at least
        ``gnss_rule_out_fixes`` kept fixes, the rival's mean squared Mahalanobis distance to
        them exceeds the best's by more than ``gnss_rule_out``. A mean, not a vote: one fix
        a metre off passes a 3.4 m offset through its gate, the mean of twenty does not; a
        multipath hold of a few seconds shifts it by its share of the history only."""
        cfg = self.config
        if cfg.gnss_rule_out <= 0.0 or len(self._fixes) < cfg.gnss_rule_out_fixes:
            return False
        mine, theirs = self._distances2(best), self._distances2(rival)
        return float(np.mean(theirs)) - float(np.mean(mine)) > cfg.gnss_rule_out

    def _decide(self, result: SearchResult | None, scan: PreparedScan) -> Decision:
        cfg = self.config
        last = cfg.evidence_sweeps
        searched = result is not None
        hypotheses = [(t.pose.copy(), t.score(last)) for t in self.tracks]
        if not self.tracks:
            reason = result.reason if result is not None else NO_HYPOTHESIS
            return Decision(None, False, reason, searched=searched)
        best = self.tracks[0]
        rivals = [
            t
            for t in self.tracks[1:]
            if distinct(t.pose, best.pose, cfg) and not self._ruled_out(t, best)
        ]
        runner_up = max((t.score(last) for t in rivals), default=0.0)
        score = best.score(last)
        # consistently: the best beat each rival on each of the last min_sweeps sweeps too
        recent = min(cfg.min_sweeps, best.sweeps)
        mine = best.scores(recent)[::-1]  # newest first: tracks born later align at the end
        beaten = all(
            b > o for t in rivals for b, o in zip(mine, t.scores(recent)[::-1], strict=False)
        )
        agreement = self._gnss_agreement(best)
        if len(scan.obstacles_3d) < cfg.min_points and best.sweeps < cfg.min_sweeps:
            reason = result.reason if result is not None else POOR_MATCH
        elif (
            best.mean_fitness(last) < cfg.min_fitness
            or best.mean_see_through(last) > cfg.max_see_through
        ):
            reason = POOR_MATCH
        elif ambiguous(score, runner_up, cfg) or not beaten:
            reason = AMBIGUOUS
        elif math.isnan(agreement) or agreement <= cfg.gnss_min_agree:
            reason = OUTSIDE_GNSS if math.isnan(agreement) else GNSS_DISAGREES
        elif best.sweeps < cfg.min_sweeps:
            reason = FEW_SWEEPS
        else:
            reason = CONFIDENT
        return Decision(
            pose=best.pose.copy(),
            confident=reason == CONFIDENT,
            reason=reason,
            tracks=len(self.tracks),
            score=score,
            runner_up=runner_up,
            searched=searched,
            hypotheses=hypotheses,
        )
