"""Keyframe pose graph: lidar-odometry and loop-closure edges plus GNSS position factors.

A factor graph over the keyframes' SE(3) poses (Dellaert & Kaess, "Factor Graphs for Robot
Perception", Foundations and Trends in Robotics 6(1-2), 2017), solved by GTSAM's
Levenberg-Marquardt. Edges between consecutive keyframes carry the lidar odometry's relative
pose; loop closures carry a verified registration (Gaussian: a robust kernel narrow enough to
reject a wrong closure also ignores a right one that corrects a metre of drift, so closures
whose residual after the solve exceeds a threshold are dropped instead and the graph solved
again, Sunderhauf & Protzel's "switchable constraints" reduced to one decision); each GNSS fix is a
``GPSFactorArm`` (antenna lever arm in the keyframe's frame) behind a Huber kernel, so
multipath jumps weigh little (Black & Rangarajan, "On the unification of line processes,
outlier rejection, and robust statistics", IJCV 1996). Gravity measured in a keyframe's body
(`xiaomanlv_mapping.gravity`) is an attitude factor on its tilt, so the graph cannot tilt the
whole drive about its first pose (a tilt of 5e-4 rad, within the edges' tilt sigmas, is 0.17 m
of height 350 m away). The accelerometer's turn-on bias makes every such measurement lean the
same way in the body (2 to 3 mrad per axis in the simulator, 0.12 deg: 0.5 m of height over a
straight 200 m); it is a node of its own, ``b`` (2-vector [rad], a tilt in base_link), shared by
all attitude factors as in LIO-SAM's IMU bias nodes (Shan et al., "LIO-SAM", IROS 2020): the
measurement is ``(R_k^T e_z)_xy + b``. The lidar odometry fixes the relative rotations, so as the
drive turns the bias separates from the map's tilt; on a drive that never turns it cannot, and
its prior keeps it small.

SE(3) rather than SE(2) plus height: the graph is small (one node per metre of drive) and full
poses keep the lever arms and the map's height right on kerbs and ramps without special cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gtsam
import numpy as np
from numpy.typing import NDArray


def _pose3(matrix: NDArray[np.float64]) -> gtsam.Pose3:
    return gtsam.Pose3(np.asarray(matrix, float))


def _sigmas(rotation: Sequence[float], translation: Sequence[float]) -> gtsam.noiseModel.Base:
    """Diagonal noise on a Pose3 tangent: rotation [rad] x, y, z then translation [m] x, y, z."""
    return gtsam.noiseModel.Diagonal.Sigmas(np.r_[np.asarray(rotation), np.asarray(translation)])


@dataclass(frozen=True)
class GnssFactor:
    keyframe: int  # node it constrains
    position: NDArray[np.float64]  # (3,) [m] the fix in map coordinates
    lever: NDArray[np.float64]  # (3,) [m] antenna at the fix time, in the keyframe's frame
    sigmas: NDArray[np.float64]  # (3,) [m] standard deviations east/north/up (map-aligned)


class PoseGraph:
    """Builds and solves the keyframe graph (see module docstring).

    Factors are kept in groups (fixed, loop closures, GNSS) so a solve can leave out loop
    closures or fixes found inconsistent by an earlier solve.
    """

    def __init__(self, initial: Sequence[NDArray[np.float64]]) -> None:
        self.estimate = gtsam.Values()
        for k, pose in enumerate(initial):
            self.estimate.insert(k, _pose3(pose))
        self.size = len(initial)
        self._fixed: list[gtsam.NonlinearFactor] = []
        self._loops: list[gtsam.NonlinearFactor] = []
        self._gnss: list[gtsam.NonlinearFactor] = []
        self._bias_key: int | None = None

    def add_prior(
        self,
        k: int,
        pose: NDArray[np.float64],
        rotation: Sequence[float],
        translation: Sequence[float],
    ) -> None:
        """Hold node ``k`` at ``pose`` with standard deviations [rad], [m]."""
        self._fixed.append(gtsam.PriorFactorPose3(k, _pose3(pose), _sigmas(rotation, translation)))

    def add_attitude(self, k: int, up_in_body: NDArray[np.float64], sigma: float) -> None:
        """Gravity: node ``k``'s rotation must carry ``up_in_body`` (the map's +z seen in the
        body frame, measured) onto +z, with ``sigma`` [rad] on each tilt axis; once
        `add_attitude_bias` was called, ``up_in_body`` is taken to lean by the shared bias."""
        up_in_body = np.asarray(up_in_body, float)
        if self._bias_key is None:
            noise = gtsam.noiseModel.Isotropic.Sigma(2, sigma)
            up = gtsam.Unit3(np.array([0.0, 0.0, 1.0]))
            measured = gtsam.Unit3(up_in_body)
            self._fixed.append(gtsam.AttitudeFactorPose3(k, up, noise, measured))
            return
        measured_xy = (up_in_body / np.linalg.norm(up_in_body))[:2].copy()

        def error(
            this: gtsam.CustomFactor,
            values: gtsam.Values,
            jacobians: list[NDArray[np.float64]] | None,
        ) -> NDArray[np.float64]:
            pose_key, bias_key = this.keys()
            up = values.atPose3(pose_key).rotation().matrix()[2, :]  # R^T e_z
            if jacobians is not None:
                # R Exp(w): R^T e_z becomes Exp(-w) R^T e_z = up + up x w.
                skew = np.array([[0.0, -up[2], up[1]], [up[2], 0.0, -up[0]]])
                jacobians[0] = np.hstack([skew, np.zeros((2, 3))])
                jacobians[1] = np.eye(2)
            out: NDArray[np.float64] = up[:2] + values.atVector(bias_key) - measured_xy
            return out

        noise = gtsam.noiseModel.Isotropic.Sigma(2, sigma)
        self._fixed.append(gtsam.CustomFactor(noise, [k, self._bias_key], error))

    def add_attitude_bias(self, sigma: float) -> None:
        """Estimate a tilt bias (2-vector [rad] in the body frame, prior zero with ``sigma``)
        shared by the attitude factors added after this call (module docstring)."""
        if self._bias_key is not None:
            raise ValueError("the attitude bias was added already")
        self._bias_key = int(gtsam.symbol("b", 0))
        self.estimate.insert(self._bias_key, np.zeros(2))
        noise = gtsam.noiseModel.Isotropic.Sigma(2, sigma)
        self._fixed.append(gtsam.PriorFactorVector(self._bias_key, np.zeros(2), noise))

    def attitude_bias(self) -> NDArray[np.float64] | None:
        """The estimated tilt bias (2,) [rad] in the body frame, or None without one."""
        if self._bias_key is None:
            return None
        out: NDArray[np.float64] = np.asarray(self.estimate.atVector(self._bias_key), float)
        return out

    def add_between(
        self,
        i: int,
        j: int,
        relative: NDArray[np.float64],
        rotation: Sequence[float],
        translation: Sequence[float],
    ) -> None:
        """Odometry edge ``pose_i^-1 pose_j = relative``, standard deviations [rad], [m]."""
        noise = _sigmas(rotation, translation)
        self._fixed.append(gtsam.BetweenFactorPose3(i, j, _pose3(relative), noise))

    def add_loop(
        self,
        i: int,
        j: int,
        relative: NDArray[np.float64],
        rotation: Sequence[float],
        translation: Sequence[float],
    ) -> int:
        """Loop-closure edge ``pose_i^-1 pose_j = relative``, standard deviations [rad], [m];
        returns its index among the loop closures."""
        noise = _sigmas(rotation, translation)
        self._loops.append(gtsam.BetweenFactorPose3(i, j, _pose3(relative), noise))
        return len(self._loops) - 1

    def loop_errors(self) -> NDArray[np.float64]:
        """Whitened residual norm [sigmas] of each loop closure at the current estimate."""
        return np.array(
            [np.sqrt(2.0 * f.error(self.estimate)) for f in self._loops], dtype=float
        ).reshape(-1)

    def add_gnss(self, factor: GnssFactor, *, huber: float) -> int:
        """A GNSS antenna position behind a Huber kernel of ``huber`` standard deviations;
        returns its index among the GNSS factors."""
        noise = gtsam.noiseModel.Robust.Create(
            gtsam.noiseModel.mEstimator.Huber.Create(huber),
            gtsam.noiseModel.Diagonal.Sigmas(np.asarray(factor.sigmas, float)),
        )
        position = np.asarray(factor.position, float)
        lever = np.asarray(factor.lever, float)
        self._gnss.append(gtsam.GPSFactorArm(factor.keyframe, position, lever, noise))
        return len(self._gnss) - 1

    def optimize(
        self,
        *,
        loops: NDArray[np.bool_] | None = None,
        gnss: NDArray[np.bool_] | None = None,
        max_iterations: int = 100,
    ) -> list[NDArray[np.float64]]:
        """Levenberg-Marquardt from the current estimate, which it then replaces.

        Args:
            loops: which loop closures to include (default all).
            gnss: which GNSS factors to include (default all).
        Returns:
            The optimised 4x4 poses, one per node.
        """
        graph = gtsam.NonlinearFactorGraph()
        for factor in self._fixed:
            graph.add(factor)
        for group, mask in ((self._loops, loops), (self._gnss, gnss)):
            for n, factor in enumerate(group):
                if mask is None or mask[n]:
                    graph.add(factor)
        params = gtsam.LevenbergMarquardtParams()
        params.setMaxIterations(max_iterations)
        params.setRelativeErrorTol(1e-6)
        self.estimate = gtsam.LevenbergMarquardtOptimizer(graph, self.estimate, params).optimize()
        return self.poses()

    def poses(self) -> list[NDArray[np.float64]]:
        """The current estimate: 4x4 poses, one per node."""
        return [self.estimate.atPose3(k).matrix() for k in range(self.size)]
