"""The localiser's core: each deskewed sweep matched against the prior map, judged, and the
``map <- odom`` correction that keeps ``odom <- base_link`` continuous (REP 105).

Per sweep (stamp ``t``, points already in base_link at ``t``: `registration.prepare_scan`):

1. **Predict** ``map <- base_link(t)``: the fused estimate at ``t`` when the node has one
   (/odometry/filtered), else the last correction carried by the odometry,
   ``map <- odom`` (held) times ``odom <- base_link(t)``.
2. **Hold the map around it** (`tiles.TileMap`) and **register** (`registration.register`).
3. **Judge** the match. An integrity monitor (``integrity=``: consistency with the odometry,
   GNSS and alternative hypotheses) decides OK / DEGRADED / LOST when one is given; without
   one the built-in rules below decide. A rejected match leaves the correction as it was: the
   pose is dead-reckoned on the odometry, and after ``lost_after`` seconds of rejections the
   state is LOST.
4. **Correct**: an accepted match sets ``map <- odom = (map <- base_link)(odom <- base_link)^-1``
   at the sweep's stamp, which the node publishes on /tf.

Built-in rules: a match is rejected with fewer than ``min_points`` points, an inlier share
below ``lost_inlier_ratio`` ("match inliers collapsed"; judged on the points of steep surfaces
- walls, poles, trunks - when there are enough, since the ground finds the map anywhere: a
sweep taken 46 m away still had 79 % of its points on the map) or a correction beyond
``max_correction`` / ``max_yaw_correction`` from the prediction ("match disagrees with
odometry": the odometry moves at most a few centimetres off between sweeps, so a jump is the
match's fault). An accepted match is DEGRADED, not OK, when its inlier share is below
``ok_inlier_ratio``, its horizontal std above ``max_ok_position_std`` or its yaw std above
``max_ok_yaw_std`` ("match covariance large": a corridor, a blocked lidar), or when the sweep
has fewer than ``sparse_scan_ratio`` of the usual points ("few scan points": rain, fog, a
covered lidar; the usual is the median of the last 50 sweeps that were not sparse, so a lidar
that stays covered stays DEGRADED): a half-blocked lidar never reports OK, whatever its score.

Start: without a pose the state is LOST ("not initialised"). :meth:`Localizer.set_pose` takes
an operator's pose (/initialpose); a global search (``search=``, from GNSS) can set it too:
while not initialised or LOST, each sweep with a recent fix is searched, and a confident
result re-initialises the localiser (the kidnapped robot).

Frames: ``map``, ``odom``, ``base_link`` (REP 105); poses are 4x4 ``T_parent_child``; times
are seconds on one clock (the sweeps', the odometry's and the fixes' stamps).
"""

from __future__ import annotations

import enum
import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xiaomanlv_core.geometry import yaw_of
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.global_search import distinct
from xiaomanlv_nav.localization.hypotheses import HypothesisTracker
from xiaomanlv_nav.localization.registration import Registration, register_with
from xiaomanlv_nav.localization.tiles import TileMap

NOT_INITIALISED = "not initialised"
FEW_POINTS = "few scan points"
INLIER_COLLAPSE = "match inliers collapsed"
ODOMETRY_INCONSISTENT = "match disagrees with odometry"
LARGE_COVARIANCE = "match covariance large"
LOW_INLIERS = "few points on the map"
NO_MAP = "no map tiles here"
DEAD_RECKONING = "dead reckoning"
USUAL_POINTS_WINDOW = 50  # sweeps whose median point count is "the usual"
RIVALS = 3  # a start's distinct runners-up watched by the integrity monitor
ALTERNATIVES_EVERY = 1.0  # [s] between their scores (two strikes in a row are LOST)


class State(enum.IntEnum):
    """As xiaomanlv/LocalizationStatus numbers them."""

    OK = 0
    DEGRADED = 1
    LOST = 2


class IntegrityLike(Protocol):
    """What the localiser needs of an integrity monitor (`integrity.IntegrityMonitor`)."""

    def update(
        self,
        stamp: float,
        registration: Any,
        odom_delta: Any,
        gnss_xy_map: Any,
        gnss_cov_xy: Any,
        alternatives: Any = None,
        current_fitness: float | None = None,
    ) -> Any: ...  # .state (0 OK, 1 DEGRADED, 2 LOST), .reasons

    def reset(self) -> None: ...


class SearchLike(Protocol):
    """What the localiser needs of a global search (`global_search.GlobalSearch`): the
    multi-sweep tracker (`hypotheses.HypothesisTracker`) prepares, searches and scores."""

    def prepare(self, scan_points_base: Any, *, sensor_origin: Any = ...) -> Any: ...

    def search(self, scan: Any, gnss_xy_map: Any, gnss_cov_xy: Any) -> Any: ...

    def evidence(self, scan: Any, pose: Any) -> tuple[float, float]: ...

    def covers(self, pose: Any) -> bool: ...


@dataclass(frozen=True)
class LocalizerUpdate:
    """The outcome of one sweep."""

    stamp: float  # [s]
    state: State
    reasons: tuple[str, ...]
    pose: NDArray[np.float64] | None  # 4x4 map <- base_link at stamp (None: not initialised);
    # the match when accepted, else the odometry on the held correction
    covariance: NDArray[np.float64]  # 6x6 [x y z roll pitch yaw] map frame [m^2], [rad^2];
    # the match's when accepted, else max_std^2 on the diagonal
    map_from_odom: NDArray[np.float64] | None  # 4x4 correction after this sweep
    registration: Registration | None  # the match (None: not registered)
    accepted: bool  # the match set the correction
    searched: str = ""  # a global search ran: its reason


class Localizer:
    """Sweep-by-sweep localisation in a :class:`TileMap` (module docstring).

    Args:
        tile_map: the map tiles (held around the predicted pose).
        config: thresholds and registration settings.
        integrity: judges each match; None: the built-in rules.
        search: a factory ``search(tile_map) -> SearchLike`` for start-up and recovery from
            GNSS, its hypotheses followed over sweeps by ``tracker``; None: only
            :meth:`set_pose` initialises.
        tracker: the multi-sweep hypothesis tracker (default: `HypothesisTracker` with the
            global search's default config).
    """

    def __init__(
        self,
        tile_map: TileMap,
        config: LocalizerConfig,
        *,
        integrity: IntegrityLike | None = None,
        search: Callable[[TileMap], SearchLike] | None = None,
        tracker: HypothesisTracker | None = None,
    ) -> None:
        self.tile_map = tile_map
        self.config = config
        self.integrity = integrity
        self._search_factory = search
        self.tracker = tracker or HypothesisTracker()
        self._searching = False  # a search session is under way (its tracks are kept)
        self._trust_prior = False  # the fused prior agreed with our correction since set_pose
        # the start's runners-up (pose, odom then), their search, watched until [s]
        self._rivals: tuple[list[Any], Any, float] | None = None
        self._last_alternatives = -math.inf  # [s] stamp they were last scored
        self.map_from_odom: NDArray[np.float64] | None = None
        self.state = State.LOST
        self.reasons: tuple[str, ...] = (NOT_INITIALISED,)
        self._last_accept = -math.inf  # [s] stamp of the last accepted match
        self._last_odom: NDArray[np.float64] | None = None
        self._stamp = -math.inf
        self._counts: deque[int] = deque(maxlen=USUAL_POINTS_WINDOW)
        self._fix: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None
        self.hypotheses: list[tuple[NDArray[np.float64], float]] = []  # the last search's tracks
        self.sweeps = 0
        self.accepted = 0
        self.rejected = 0

    @property
    def initialised(self) -> bool:
        return self.map_from_odom is not None

    def set_pose(self, map_base: ArrayLike, odom_base: ArrayLike, stamp: float) -> None:
        """Initialise at ``map_base`` (4x4 map <- base_link) where the odometry reads
        ``odom_base`` (4x4 odom <- base_link), both at ``stamp`` [s] (an operator's pose)."""
        mb = np.asarray(map_base, dtype=np.float64)
        ob = np.asarray(odom_base, dtype=np.float64)
        self.map_from_odom = mb @ np.linalg.inv(ob)
        self._last_accept = float(stamp)
        self._last_odom = None
        self._searching = False
        self._trust_prior = False
        self.state = State.DEGRADED
        self.reasons = ("initial pose given",)
        if self.integrity is not None:
            self.integrity.reset()

    def clock_reset(self) -> None:
        """Time went back (/clock jumped): forget what depends on stamps, keep the pose."""
        self._last_odom = None
        self._last_accept = math.nan  # restarts at the next sweep's stamp
        self._fix = None
        if self.integrity is not None:
            self.integrity.reset()

    def set_fix(self, stamp: float, xy_map: ArrayLike, cov_xy: ArrayLike) -> None:
        """A GNSS fix [m] in the map frame (through the datum) with its 2x2 covariance [m^2];
        used by the next sweep (integrity, global search). Non-finite fixes are ignored."""
        xy = np.asarray(xy_map, dtype=np.float64).reshape(2)
        cov = np.asarray(cov_xy, dtype=np.float64).reshape(2, 2)
        if np.all(np.isfinite(xy)) and np.all(np.isfinite(cov)):
            self._fix = (float(stamp), xy, cov)

    def predict(self, odom_base: ArrayLike) -> NDArray[np.float64] | None:
        """4x4 map <- base_link from the held correction and the odometry's ``odom_base``."""
        if self.map_from_odom is None:
            return None
        return np.asarray(self.map_from_odom @ np.asarray(odom_base, dtype=np.float64))

    def process(
        self,
        stamp: float,
        scan_points_base: ArrayLike,
        odom_base: ArrayLike,
        prior_map_base: ArrayLike | None = None,
        *,
        sensor_origin: ArrayLike = (0.0, 0.0, 0.0),
    ) -> LocalizerUpdate:
        """One sweep (``scan_points_base`` (N,3) [m], base_link at ``stamp`` [s]) where the
        odometry reads ``odom_base`` (4x4 odom <- base_link at ``stamp``); ``prior_map_base``:
        the fused 4x4 map <- base_link at ``stamp`` when there is one (used once it agrees with
        the localiser's own correction: after a start or a kidnap the fusion still holds the
        old pose); ``sensor_origin``: the lidar's position in base_link [m] (its rays start
        there: the global search's free-space evidence).

        Raises:
            MapTileError: a tile around the robot cannot be read (the node reports it).
        """
        cfg = self.config
        odom = np.asarray(odom_base, dtype=np.float64)
        points = np.asarray(scan_points_base, dtype=np.float64).reshape(-1, 3)
        self.sweeps += 1
        if math.isnan(self._last_accept):
            self._last_accept = float(stamp)
        fix = self._fix
        self._fix = None
        usual = statistics.median(self._counts) if self._counts else float(len(points))
        if len(points) >= self.config.sparse_scan_ratio * usual:  # a sparse sweep is no norm
            self._counts.append(len(points))
        searched = ""
        if not self.initialised or self.state == State.LOST:
            searched = self._global_search(stamp, points, odom, fix, sensor_origin)
        prior = None if prior_map_base is None else np.asarray(prior_map_base, dtype=np.float64)
        predicted = self.predict(odom)
        if (
            prior is not None
            and predicted is not None
            and (self._trust_prior or not _apart(prior, predicted, cfg))
        ):
            self._trust_prior = True
            predicted = prior
        if predicted is None:
            self.state, self.reasons = State.LOST, (NOT_INITIALISED,)
            return self._update(stamp, None, None, False, searched)
        # Tracking: the tiles ahead arrive behind the sweeps' backs (TileMap's worker).
        self.tile_map.update(float(predicted[0, 3]), float(predicted[1, 3]), wait=False)
        target = self.tile_map.target
        # Both stages on every sweep: matched from a prediction within centimetres, the fine
        # map alone stops at its first steps and echoes the fused prior back to the fusion
        # (NEES 25-52 on the quick drives against 2.2 with the coarse stage first).
        reg = None if target is None else register_with(cfg, points, predicted, target)
        odom_delta = None if self._last_odom is None else np.linalg.inv(self._last_odom) @ odom
        self._last_odom = odom
        rejections = self._rejections(reg, predicted)
        if self.integrity is not None:
            fix_xy = None if fix is None else fix[1]
            fix_cov = None if fix is None else fix[2]
            alternatives, own = self._alternatives(stamp, points, odom, reg, sensor_origin)
            verdict = self.integrity.update(
                stamp,
                reg,
                odom_delta,
                fix_xy,
                fix_cov,
                alternatives=alternatives,
                current_fitness=own,
            )
            state = State(int(verdict.state))
            reasons = tuple(verdict.reasons)
            accept = reg is not None and state != State.LOST and not rejections
        else:
            accept = reg is not None and not rejections
            state, reasons = self._built_in_state(
                stamp, reg, accept, rejections, len(points), usual
            )
        if accept and reg is not None:
            self.map_from_odom = reg.pose @ np.linalg.inv(odom)
            self._last_accept = float(stamp)
            self.accepted += 1
        else:
            self.rejected += 1
        self.state, self.reasons = state, reasons
        return self._update(stamp, reg, odom, accept, searched)

    # ---- internals ------------------------------------------------------------------------------
    def _rejections(self, reg: Registration | None, predicted: NDArray[np.float64]) -> list[str]:
        cfg = self.config
        if reg is None:
            return [NO_MAP]
        out = []
        if reg.points < cfg.min_points:
            out.append(FEW_POINTS)
        if reg.fit_ratio < cfg.lost_inlier_ratio:
            out.append(INLIER_COLLAPSE)
        delta = np.linalg.inv(predicted) @ reg.pose
        if (
            float(np.linalg.norm(delta[:2, 3])) > cfg.max_correction
            or abs(math.degrees(yaw_of(delta[:3, :3]))) > cfg.max_yaw_correction
        ):
            out.append(ODOMETRY_INCONSISTENT)
        return out

    def _built_in_state(
        self,
        stamp: float,
        reg: Registration | None,
        accept: bool,
        rejections: list[str],
        points: int,
        usual: float,
    ) -> tuple[State, tuple[str, ...]]:
        cfg = self.config
        if not accept:
            reasons = (*rejections, DEAD_RECKONING)
            if stamp - self._last_accept >= cfg.lost_after:
                return State.LOST, tuple(rejections)
            return State.DEGRADED, reasons
        assert reg is not None
        reasons_list = []
        if reg.fit_ratio < cfg.ok_inlier_ratio:
            reasons_list.append(LOW_INLIERS)
        if reg.position_std > cfg.max_ok_position_std or reg.yaw_std > math.radians(
            cfg.max_ok_yaw_std
        ):
            reasons_list.append(LARGE_COVARIANCE)
        if points < cfg.sparse_scan_ratio * usual:
            reasons_list.append(FEW_POINTS)
        return (State.DEGRADED if reasons_list else State.OK), tuple(reasons_list)

    def _global_search(
        self,
        stamp: float,
        points: NDArray[np.float64],
        odom: NDArray[np.float64],
        fix: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None,
        sensor_origin: ArrayLike,
    ) -> str:
        """One sweep of the multi-sweep search (`hypotheses.HypothesisTracker`); a confident
        decision sets the pose. Returns the decision's reason ('' when nothing ran)."""
        if self._search_factory is None:
            return ""
        if not self._searching:  # a new session: the old tracks and fixes are stale
            self.tracker.reset()
            self._searching = True
        if fix is not None:
            self.tile_map.update(float(fix[1][0]), float(fix[1][1]))
        search = None if self.tile_map.target is None else self._search_factory(self.tile_map)
        decision = self.tracker.step(
            stamp,
            search,  # type: ignore[arg-type]
            points,
            odom,
            None if fix is None else (fix[1], fix[2]),
            sensor_origin=sensor_origin,
        )
        if decision is None:
            return ""
        if decision.confident and decision.pose is not None:
            self.set_pose(decision.pose, odom, stamp)
            # The runners-up stay watched for a while: one that comes to fit clearly better
            # tells the integrity monitor the start was wrong.
            best = decision.pose
            rivals = [
                (t.pose.copy(), t.odom.copy())
                for t in self.tracker.tracks
                if distinct(t.pose, best, self.tracker.config)
            ][:RIVALS]
            self._rivals = (rivals, search, stamp + self.tracker.config.gnss_history)
        self.hypotheses = decision.hypotheses
        return str(decision.reason)

    def _alternatives(
        self,
        stamp: float,
        points: NDArray[np.float64],
        odom: NDArray[np.float64],
        reg: Registration | None,
        sensor_origin: ArrayLike,
    ) -> tuple[list[tuple[NDArray[np.float64], float]] | None, float | None]:
        """Once every ALTERNATIVES_EVERY seconds for ``gnss_history`` after a start, the
        start's distinct runners-up (carried by the odometry) and the match, scored on this
        sweep by the search that found them: (alternatives, the match's score), else (None,
        None)."""
        if self._rivals is None or reg is None:
            return None, None
        rivals, search, until = self._rivals
        # Only while the map the search prepared covers the robot: preparing it again for a
        # check would cost a sweep 0.5-2.5 s (the start's runners-up are near the start).
        if stamp > until or search is None or not rivals or not search.covers(reg.pose):
            self._rivals = None
            return None, None
        if stamp - self._last_alternatives < ALTERNATIVES_EVERY:
            return None, None
        self._last_alternatives = stamp
        scan = search.prepare(points, sensor_origin=sensor_origin)
        if scan is None:
            return None, None
        fit, see = search.evidence(scan, reg.pose)
        own = fit - see
        out = [(reg.pose, own)]
        for pose, then in rivals:
            now = pose @ np.linalg.inv(then) @ odom
            fit, see = search.evidence(scan, now)
            out.append((now, fit - see))
        return out, own

    def _update(
        self,
        stamp: float,
        reg: Registration | None,
        odom: NDArray[np.float64] | None,
        accepted: bool,
        searched: str,
    ) -> LocalizerUpdate:
        pose: NDArray[np.float64] | None
        if accepted and reg is not None:
            pose, covariance = reg.pose, reg.covariance
        else:  # dead reckoning on the held correction: nothing measured its error
            pose = None if odom is None else self.predict(odom)
            covariance = np.diag([self.config.max_std**2] * 6)
        return LocalizerUpdate(
            stamp=float(stamp),
            state=self.state,
            reasons=self.reasons,
            pose=pose,
            covariance=covariance,
            map_from_odom=None if self.map_from_odom is None else self.map_from_odom.copy(),
            registration=reg,
            accepted=accepted,
            searched=searched,
        )


def _apart(a: NDArray[np.float64], b: NDArray[np.float64], cfg: LocalizerConfig) -> bool:
    """Two poses differ by more than a match may correct (``max_correction``,
    ``max_yaw_correction``)."""
    delta = np.linalg.inv(a) @ b
    return bool(
        float(np.linalg.norm(delta[:2, 3])) > cfg.max_correction
        or abs(math.degrees(yaw_of(delta[:3, :3]))) > cfg.max_yaw_correction
    )


def localizer_for(
    config: LocalizerConfig,
    tile_map: TileMap,
    *,
    integrity: IntegrityLike | None = None,
    search: Callable[[TileMap], SearchLike] | None = None,
    tracker: HypothesisTracker | None = None,
) -> Localizer:
    """The :class:`Localizer` of ``config`` over ``tile_map``."""
    return Localizer(tile_map, config, integrity=integrity, search=search, tracker=tracker)
