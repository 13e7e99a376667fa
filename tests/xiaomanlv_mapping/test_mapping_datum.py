"""Fitting the map's datum to GNSS fixes (xiaomanlv_mapping.datum)."""

from __future__ import annotations

import numpy as np
import pytest

from xiaomanlv_core.geodesy import Datum, geodetic_to_enu, local_to_geodetic
from xiaomanlv_mapping.datum import fit_datum
from xiaomanlv_mapping.model import MappingError

TRUE = Datum(latitude=30.31, longitude=120.35, altitude=5.0, heading_deg=12.0)


def _square_path() -> np.ndarray:
    """A 200 m x 100 m rectangle driven at 1 m steps, antenna 1.6 m up, map frame."""
    side = np.arange(0.0, 200.0)
    up = np.arange(0.0, 100.0)
    xy = np.vstack(
        [
            np.stack([side, np.zeros_like(side)], 1),
            np.stack([np.full_like(up, 200.0), up], 1),
            np.stack([200.0 - side, np.full_like(side, 100.0)], 1),
            np.stack([np.zeros_like(up), 100.0 - up], 1),
        ]
    )
    xy = xy + np.array([-50.0, 30.0])
    return np.hstack([xy, np.full((len(xy), 1), 1.6)])


def test_fit_recovers_the_datum_despite_noise_and_multipath() -> None:
    rng = np.random.default_rng(4)
    truth = _square_path()
    lla = local_to_geodetic(TRUE, truth)
    measured = truth + rng.normal(0.0, [1.0, 1.0, 2.0], truth.shape)  # 1 m fixes, 2 m up
    jumps = rng.choice(len(truth), 30, replace=False)
    measured[jumps, :2] += 15.0  # multipath
    fit = fit_datum(measured, lla, np.tile([1.0, 2.0], (len(truth), 1)))
    error = geodetic_to_enu(fit.datum, (TRUE.latitude, TRUE.longitude, TRUE.altitude))
    assert np.linalg.norm(error[:2]) < 0.3
    assert abs(error[2]) < 0.5
    assert fit.datum.heading_deg == pytest.approx(TRUE.heading_deg, abs=0.1)
    assert not fit.inliers[jumps].any()
    assert fit.inliers.mean() > 0.9
    assert fit.rms == pytest.approx(np.sqrt(2.0), rel=0.15)  # 1 m per axis


def test_degenerate_fixes_are_refused() -> None:
    lla = np.array([[30.31, 120.35, 5.0]] * 5)
    with pytest.raises(MappingError, match="at least 3 GNSS fixes"):
        fit_datum(np.zeros((2, 3)), lla[:2], np.ones((2, 2)))
    with pytest.raises(MappingError, match="heading is unobservable"):
        fit_datum(np.zeros((5, 3)), lla, np.ones((5, 2)))
