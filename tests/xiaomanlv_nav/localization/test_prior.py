"""The fused prior: /odometry/filtered seeds a match only when fresh and localised, carried to
the sweep's stamp by the odometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_nav.localization.prior import NOT_FINITE, OUT_OF_ORDER, FusedPrior

TIGHT = np.diag([0.02**2, 0.02**2, 0.05**2, 1e-4, 1e-4, math.radians(0.2) ** 2])
# What the fusion publishes after an operator's /initialpose (RViz: 0.5 m, 15 deg), before any
# match, or on GNSS alone (metres).
RVIZ = np.diag([0.25, 0.25, 0.25, 0.0685, 0.0685, 0.0685])
GNSS_ONLY = np.diag([4.0, 4.0, 9.0, 1e-3, 1e-3, 1e-3])


LIMITS = {"timeout": 0.5, "max_position_std": 0.3, "max_yaw_std": math.radians(1.0)}


def _prior() -> FusedPrior:
    return FusedPrior()


def _odometry(t: float) -> np.ndarray:
    """odom <- base_link of a robot driving 1 m/s along odom x."""
    return planar_pose(1.0 * t, 0.0, 0.0)


def test_a_localised_fresh_estimate_is_carried_to_the_sweep_by_the_odometry() -> None:
    prior = _prior()
    map_odom = planar_pose(10.0, 5.0, math.pi / 2)  # odom x is map y
    for t in np.arange(0.0, 1.0, 0.01):
        assert prior.add(float(t), map_odom @ _odometry(float(t)), TIGHT) is None
    # The fusion lags: the sweep is 0.3 s after its newest estimate (t = 0.99).
    choice = prior.at(1.29, _odometry(1.29), _odometry, **LIMITS)
    assert choice.reason == "fused" and choice.pose is not None
    expected = map_odom @ _odometry(1.29)
    np.testing.assert_allclose(choice.pose, expected, atol=1e-9)
    # Without the odometry at the estimate's stamp it is used as it is (0.3 m behind here).
    choice = prior.at(1.29, _odometry(1.29), lambda t: None, **LIMITS)
    assert choice.pose is not None
    assert float(np.linalg.norm(choice.pose[:3, 3] - expected[:3, 3])) == pytest.approx(0.3)


@pytest.mark.parametrize("covariance", [RVIZ, GNSS_ONLY], ids=["rviz", "gnss_only"])
def test_an_estimate_its_covariance_calls_unlocalised_is_no_prior(covariance: np.ndarray) -> None:
    prior = _prior()
    prior.add(1.0, planar_pose(3.0, 4.0, 0.0), covariance)
    choice = prior.at(1.0, _odometry(1.0), _odometry, **LIMITS)
    assert choice.pose is None and choice.reason == "fused pose uncertain"


def test_yaw_alone_can_make_it_uncertain_and_the_long_axis_decides() -> None:
    prior = _prior()
    cov = TIGHT.copy()
    cov[5, 5] = math.radians(3.0) ** 2
    prior.add(1.0, np.eye(4), cov)
    assert prior.at(1.0, np.eye(4), _odometry, **LIMITS).reason == "fused pose uncertain"
    # An ellipse 0.4 m long at 45 deg: x and y each under 0.3 m, the long axis not.
    prior = _prior()
    cov = TIGHT.copy()
    a, b = 0.4**2, 0.02**2
    cov[:2, :2] = 0.5 * np.array([[a + b, a - b], [a - b, a + b]])
    assert math.sqrt(cov[0, 0]) < 0.3 and math.sqrt(cov[1, 1]) < 0.3
    prior.add(1.0, np.eye(4), cov)
    assert prior.at(1.0, np.eye(4), _odometry, **LIMITS).reason == "fused pose uncertain"


def test_stale_or_missing_estimates_are_no_prior() -> None:
    prior = _prior()
    assert prior.at(1.0, np.eye(4), _odometry, **LIMITS).reason == "no fused pose"
    prior.add(1.0, np.eye(4), TIGHT)
    assert prior.at(1.6, np.eye(4), _odometry, **LIMITS).reason == "fused pose stale"
    assert prior.at(0.4, np.eye(4), _odometry, **LIMITS).reason == "fused pose stale"
    assert prior.at(1.4, np.eye(4), _odometry, **LIMITS).reason == "fused"
    assert prior.choices == {"no fused pose": 1, "fused pose stale": 2, "fused": 1}


def test_the_nearest_estimate_is_taken_and_bad_ones_are_refused() -> None:
    prior = _prior()
    for t in (1.0, 1.1, 1.2):
        prior.add(t, planar_pose(t, 0.0, 0.0), TIGHT)
    assert prior.nearest(1.14).stamp == pytest.approx(1.1)  # type: ignore[union-attr]
    assert prior.nearest(1.16).stamp == pytest.approx(1.2)  # type: ignore[union-attr]
    assert prior.add(1.2, np.eye(4), TIGHT) == OUT_OF_ORDER
    assert prior.add(1.05, np.eye(4), TIGHT) == OUT_OF_ORDER
    nan = np.eye(4)
    nan[0, 3] = math.nan
    assert prior.add(1.3, nan, TIGHT) == NOT_FINITE
    assert prior.add(1.3, np.eye(4), np.full((6, 6), math.inf)) == NOT_FINITE
    assert prior.add(math.nan, np.eye(4), TIGHT) == NOT_FINITE
    assert len(prior) == 3
    prior.clear()
    assert prior.nearest(1.0) is None
