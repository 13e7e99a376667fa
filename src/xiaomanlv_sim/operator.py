"""A stand-in for the operator who drives the robot along a route (the mapping drive).

Pure pursuit (Coulter, "Implementation of the Pure Pursuit Path Tracking Algorithm",
CMU-RI-TR-92-01, 1992): steer along the arc through a point ``lookahead`` metres ahead on the
route. The speed is capped so that the lateral acceleration on that arc stays under
``max_lateral_accel``, and it ramps down to stop at the route's end. It reads the true pose:
it stands in for a person who sees where the robot is, not for the stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


class RouteDriver:
    """Follow ``waypoints`` [m] (world frame) at up to ``speed`` [m/s].

    Args:
        waypoints: the route, at least two points.
        speed: cruise speed [m/s].
        lookahead: pure-pursuit lookahead distance [m].
        max_lateral_accel: [m/s^2] limit on v^2 * curvature.
        max_yaw_rate: [rad/s] limit on the commanded turn rate.
        stop_decel: [m/s^2] deceleration used to stop at the end.
        length: drive only the first ``length`` metres of the route (None: all of it).

    Raises:
        ValueError: fewer than two waypoints, or a non-positive speed, lookahead or length.
    """

    def __init__(
        self,
        waypoints: Sequence[tuple[float, float]],
        *,
        speed: float = 1.5,
        lookahead: float = 2.5,
        max_lateral_accel: float = 0.5,
        max_yaw_rate: float = 0.8,
        stop_decel: float = 0.5,
        length: float | None = None,
    ) -> None:
        pts = np.asarray(waypoints, dtype=float)
        if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] != 2:
            raise ValueError(f"waypoints: expected at least 2 points [x, y], got {pts.shape}")
        for name, value in (("speed", speed), ("lookahead", lookahead)):
            if not value > 0.0:
                raise ValueError(f"{name} must be > 0, got {value}")
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-9])
        pts = pts[keep]
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        if length is not None:
            if not length > 0.0:
                raise ValueError(f"length must be > 0, got {length}")
            if length < cum[-1]:
                end = self._interp(pts, cum, length)
                k = int(np.searchsorted(cum, length, side="right"))
                pts = np.vstack([pts[:k], end])
                cum = np.concatenate([cum[:k], [length]])
        self.points = pts
        self._cum = cum
        self.length = float(cum[-1])  # [m] of route to drive
        self.speed = speed
        self.lookahead = lookahead
        self.max_lateral_accel = max_lateral_accel
        self.max_yaw_rate = max_yaw_rate
        self.stop_decel = stop_decel
        self.progress = 0.0  # [m] along the route of the robot's projection
        self.done = False

    @staticmethod
    def _interp(
        pts: NDArray[np.float64], cum: NDArray[np.float64], s: float
    ) -> NDArray[np.float64]:
        s = min(max(s, 0.0), float(cum[-1]))
        i = min(int(np.searchsorted(cum, s, side="right")) - 1, len(pts) - 2)
        t = (s - cum[i]) / max(cum[i + 1] - cum[i], 1e-12)
        out: NDArray[np.float64] = pts[i] + t * (pts[i + 1] - pts[i])
        return out

    def _project(self, xy: NDArray[np.float64]) -> float:
        """Arc length of the closest route point near the current progress (never backwards
        by more than a lookahead, so a route that crosses itself is followed in order)."""
        lo = max(self.progress - self.lookahead, 0.0)
        hi = self.progress + 4.0 * self.lookahead
        i0 = max(int(np.searchsorted(self._cum, lo, side="right")) - 1, 0)
        i1 = min(int(np.searchsorted(self._cum, hi, side="right")), len(self.points) - 1)
        a = self.points[i0:i1]
        b = self.points[i0 + 1 : i1 + 1]
        d = b - a
        t = np.clip(np.einsum("ij,ij->i", xy - a, d) / np.einsum("ij,ij->i", d, d), 0.0, 1.0)
        dist = np.linalg.norm(a + t[:, None] * d - xy, axis=1)
        k = int(np.argmin(dist))
        return float(self._cum[i0 + k] + t[k] * np.linalg.norm(d[k]))

    def command(self, x: float, y: float, yaw: float) -> tuple[float, float]:
        """(forward speed [m/s], yaw rate [rad/s]) for the robot at (x, y, yaw)."""
        xy = np.array([x, y])
        self.progress = max(self.progress, self._project(xy))
        remaining = self.length - self.progress
        goal = self.points[-1]
        if remaining < 0.3 or (remaining < self.lookahead and np.linalg.norm(goal - xy) < 0.3):
            self.done = True
            return 0.0, 0.0
        target = self._interp(self.points, self._cum, self.progress + self.lookahead)
        dx, dy = target - xy
        c, s = math.cos(yaw), math.sin(yaw)
        lx, ly = c * dx + s * dy, -s * dx + c * dy  # target in the robot frame
        d2 = max(lx * lx + ly * ly, 1e-9)
        curvature = 2.0 * ly / d2
        v = self.speed
        if lx < 0.0 or abs(math.atan2(ly, lx)) > 1.2:  # target behind or far aside: turn first
            v = 0.0
            w = math.copysign(self.max_yaw_rate, ly if ly != 0.0 else 1.0)
            return v, w
        if abs(curvature) > 1e-6:
            v = min(v, math.sqrt(self.max_lateral_accel / abs(curvature)))
        v = min(v, math.sqrt(2.0 * self.stop_decel * remaining))
        w = v * curvature
        if abs(w) > self.max_yaw_rate:
            w = math.copysign(self.max_yaw_rate, w)
            v = w / curvature
        return max(v, 0.1), w
