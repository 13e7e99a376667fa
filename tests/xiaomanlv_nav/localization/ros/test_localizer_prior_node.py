"""The localizer node takes /odometry/filtered as its prior only when the fusion's covariance
says it is localised; otherwise it seeds from its own chain (issue 15: the sim profile with the
EKF). Built as in test_localizer_node (same fixtures), callbacks called by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from test_localizer_node import TRUTH, initial_pose, sweep_msg
from test_localizer_node import node as node  # the fixture, re-exported

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.ros.poses import pose_msg
from xiaomanlv_core.ros.time import stamp_of

# The fusion right after an operator's /initialpose (RViz: 0.5 m, 15 deg), before any match.
UNLOCALISED = np.diag([0.25, 0.25, 4.0, 4e-4, 4e-4, 0.0685])
LOCALISED = np.diag([0.02**2, 0.02**2, 0.05**2, 1e-5, 1e-5, math.radians(0.1) ** 2])


def filtered(pose: np.ndarray, stamp: float, covariance: np.ndarray) -> Odometry:
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = "map", "base_link"
    msg.header.stamp = stamp_of(stamp)
    msg.pose.pose = pose_msg(pose)
    msg.pose.covariance = covariance.ravel().tolist()
    return msg


def test_an_unlocalised_fusion_does_not_seed_the_match(node: Any, courtyard: Any) -> None:
    node._on_initial_pose(initial_pose(TRUTH))
    # The fusion 3 m off, and its covariance says it may well be: not a prior.
    off = TRUTH @ planar_pose(3.0, -1.0, 0.2)
    for t in np.arange(0.5, 0.62, 0.01):
        node._on_odometry(filtered(off, float(t), UNLOCALISED))
    assert node._prior(0.6) is None
    node._on_cloud(sweep_msg(courtyard, 0.6))
    update = node._last_update
    assert update.accepted, update.reasons
    assert math.hypot(update.pose[0, 3] - TRUTH[0, 3], update.pose[1, 3] - TRUTH[1, 3]) < 0.05
    assert node._odom.choices["fused pose uncertain"] >= 1


def test_a_localised_fusion_seeds_the_match_carried_to_the_sweep(node: Any) -> None:
    node._on_initial_pose(initial_pose(TRUTH))
    near = TRUTH @ planar_pose(0.1, 0.05, 0.01)
    node._on_odometry(filtered(near, 0.55, LOCALISED))
    # The robot stands still in odom (the fixture), so carried to 0.6 s it is unchanged.
    np.testing.assert_allclose(node._prior(0.6), near, atol=1e-9)
    assert node._prior(1.2) is None  # beyond prior_timeout (0.5 s)
    # A covariance with NaN is bad input, counted, not kept.
    nan = LOCALISED.copy()
    nan[0, 0] = math.nan
    node._on_odometry(filtered(near, 0.7, nan))
    assert node.bad["odometry not finite"] == 1
