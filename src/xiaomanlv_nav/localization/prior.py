"""The fused prior: /odometry/filtered as the seed of a sweep's match, only when it is localised.

The fusion (`ekf`, docs/fusion.md) publishes ``map <- base_link`` at IMU rate with its
covariance. The localiser seeds a sweep's match from it (:meth:`FusedPrior.at`) when

1. it is **fresh**: the estimate nearest the sweep's stamp lies within ``timeout``; it is
   carried to the stamp by the odometry's motion between the two
   (``F(t) = F(t_f) (odom <- base_link(t_f))^-1 (odom <- base_link(t))``), so a fusion that lags
   behind the sweeps does not seed a sweep where the robot was a moment ago; and
2. its **covariance says it is localised**: the horizontal standard deviation (the long axis of
   the x, y ellipse) at most ``max_position_std`` and the yaw's at most ``max_yaw_std`` - the
   bounds a match must meet to be called OK. Before the fusion has fused a match (an operator's
   /initialpose with RViz's 0.5 m and 15 deg, GNSS alone with metres), after a long lidar
   outage, or after a restart, it is not; the localiser then seeds from its own chain (its last
   match carried by the odometry), which is what it would do without a fusion. A prior is never
   trusted beyond its covariance: a seed a metre off makes the match disagree with the
   prediction, and rejected matches are how a localiser becomes LOST.

The fusion's estimate right after it fused the localiser's last pose is that pose carried by the
IMU and the wheels, so seeding from it does not count the localiser's pose twice: the match is
measured against the map, not against its seed, and the fusion takes each pose once (its
stamp is the sweep's).

Pure numpy; the localiser node and the lockstep bench (`xiaomanlv_bringup.ros.
localization_lockstep`) both keep one. Frames: ``map``, ``odom``, ``base_link`` (REP 105);
poses 4x4 ``T_parent_child``; covariances 6x6 in geometry_msgs' order (x, y, z, rotation about
x, y, z); times [s] on the one clock of the stamps.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Matrix = NDArray[np.float64]

# Bad-input kinds (the node counts them as ``bad <kind>``).
NOT_FINITE = "odometry not finite"
OUT_OF_ORDER = "odometry stamp out of order"


@dataclass(frozen=True)
class FusedPose:
    stamp: float  # [s]
    pose: Matrix  # 4x4 map <- base_link
    covariance: Matrix  # (6, 6) x, y, z [m^2], rotation about x, y, z [rad^2]

    @property
    def position_std(self) -> float:
        """[m] the horizontal ellipse's long axis (sqrt of the largest x, y eigenvalue)."""
        return math.sqrt(max(float(np.linalg.eigvalsh(self.covariance[:2, :2])[-1]), 0.0))

    @property
    def yaw_std(self) -> float:
        """[rad]"""
        return math.sqrt(max(float(self.covariance[5, 5]), 0.0))


@dataclass(frozen=True)
class PriorChoice:
    """What :meth:`FusedPrior.at` decided for one sweep."""

    pose: Matrix | None  # 4x4 map <- base_link at the sweep's stamp; None: seed from the chain
    reason: str  # "fused", or why not: "no fused pose", "fused pose stale", "fused pose uncertain"


class FusedPrior:
    """The last ``keep`` fused estimates (200: 2 s at 100 Hz) and the rule that makes one a
    prior (module docstring). ``choices`` counts what :meth:`at` decided, by reason."""

    def __init__(self, keep: int = 200) -> None:
        self._poses: deque[FusedPose] = deque(maxlen=keep)
        self.choices: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._poses)

    def clear(self) -> None:
        """Forget every estimate (the clock jumped back)."""
        self._poses.clear()

    def add(self, stamp: float, pose: ArrayLike, covariance: ArrayLike) -> str | None:
        """Keep one estimate; the bad-input kind when it is refused (not finite, a covariance
        that is not 6x6 and finite, a stamp at or before the newest), else None."""
        p = np.asarray(pose, dtype=np.float64)
        c = np.asarray(covariance, dtype=np.float64)
        if (
            not math.isfinite(stamp)
            or p.shape != (4, 4)
            or c.size != 36
            or not np.all(np.isfinite(p))
            or not np.all(np.isfinite(c))
        ):
            return NOT_FINITE
        if self._poses and stamp <= self._poses[-1].stamp:
            return OUT_OF_ORDER
        self._poses.append(FusedPose(float(stamp), p, c.reshape(6, 6)))
        return None

    def nearest(self, stamp: float) -> FusedPose | None:
        """The kept estimate nearest ``stamp`` [s] (None when there is none)."""
        if not self._poses:
            return None
        stamps = [f.stamp for f in self._poses]
        k = bisect.bisect_left(stamps, stamp)
        near = [i for i in (k - 1, k) if 0 <= i < len(stamps)]
        return self._poses[min(near, key=lambda i: abs(stamps[i] - stamp))]

    def at(
        self,
        stamp: float,
        odom_base: ArrayLike,
        odom_at: Callable[[float], Matrix | None],
        *,
        timeout: float,
        max_position_std: float,
        max_yaw_std: float,
    ) -> PriorChoice:
        """The prior for a sweep at ``stamp`` [s] where the odometry reads ``odom_base`` (4x4
        odom <- base_link); ``odom_at(t)`` gives odom <- base_link at another stamp, None when
        the odometry does not cover it (the estimate is then used as it is). ``timeout`` [s]:
        the farthest an estimate's stamp may be; ``max_position_std`` [m] and ``max_yaw_std``
        [rad]: beyond either the fusion is not localised."""
        choice = self._choose(stamp, odom_base, odom_at, timeout, max_position_std, max_yaw_std)
        self.choices[choice.reason] += 1
        return choice

    def _choose(
        self,
        stamp: float,
        odom_base: ArrayLike,
        odom_at: Callable[[float], Matrix | None],
        timeout: float,
        max_position_std: float,
        max_yaw_std: float,
    ) -> PriorChoice:
        fused = self.nearest(stamp)
        if fused is None:
            return PriorChoice(None, "no fused pose")
        if abs(fused.stamp - stamp) > timeout:
            return PriorChoice(None, "fused pose stale")
        if fused.position_std > max_position_std or fused.yaw_std > max_yaw_std:
            return PriorChoice(None, "fused pose uncertain")
        pose = fused.pose
        then = odom_at(fused.stamp) if fused.stamp != stamp else None
        if then is not None:
            pose = pose @ np.linalg.inv(then) @ np.asarray(odom_base, dtype=np.float64)
        return PriorChoice(pose, "fused")
