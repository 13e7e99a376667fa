"""WGS84 <-> local frames (xiaomanlv_core.geodesy): reference values, round trips, heading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.geodesy import (
    Datum,
    enu_to_geodetic,
    enu_to_local,
    geodetic_to_enu,
    geodetic_to_local,
    local_to_enu,
    local_to_geodetic,
)
from xiaomanlv_core.yamlfile import read_yaml

ORIGIN = Datum(31.0252, 121.4365, 10.0)
REPO = Path(__file__).resolve().parents[2]


# Reference values from pyproj 3 (EPSG:4979 <-> EPSG:4978, WGS84), as the simulator's own
# Bowring conversion was tested before it was replaced (it agreed with pymap3d to < 4e-9 m
# over both shipped worlds and both shipped maps' datums).
@pytest.mark.parametrize(
    ("enu", "expected"),
    [
        ((100.0, 200.0, 5.0), (31.0270039074, 121.4375473665, 15.003932)),
        ((-1500.0, 800.0, -3.0), (31.0324146963, 121.4207885953, 7.226601)),
    ],
)
def test_enu_to_geodetic_matches_pyproj(enu, expected) -> None:
    lat, lon, alt = enu_to_geodetic(ORIGIN, enu)
    assert lat == pytest.approx(expected[0], abs=1e-9)  # ~0.1 mm
    assert lon == pytest.approx(expected[1], abs=1e-9)
    assert alt == pytest.approx(expected[2], abs=1e-5)


def test_vectorised_over_rows_and_equal_to_one_at_a_time() -> None:
    enu = np.array([[100.0, 200.0, 5.0], [-1500.0, 800.0, -3.0], [0.0, 0.0, 0.0]])
    lla = enu_to_geodetic(ORIGIN, enu)
    assert lla.shape == (3, 3)
    for row, one in zip(lla, enu, strict=True):
        np.testing.assert_array_equal(row, enu_to_geodetic(ORIGIN, one))
    np.testing.assert_allclose(lla[2], [ORIGIN.latitude, ORIGIN.longitude, ORIGIN.altitude])
    np.testing.assert_allclose(geodetic_to_enu(ORIGIN, lla), enu, atol=1e-6)


def test_heading_turns_the_local_frame_counter_clockwise_from_east() -> None:
    north_up = Datum(-33.9, 18.4, 50.0, heading_deg=90.0)
    np.testing.assert_allclose(
        local_to_enu(north_up, [10.0, 0.0, 1.0]), [0.0, 10.0, 1.0], atol=1e-12
    )
    np.testing.assert_allclose(
        enu_to_local(north_up, [0.0, 10.0, 1.0]), [10.0, 0.0, 1.0], atol=1e-12
    )
    xyz = np.array([[123.0, -456.0, 7.0], [-3.0, 2.0, 0.5]])
    np.testing.assert_allclose(
        geodetic_to_local(north_up, local_to_geodetic(north_up, xyz)), xyz, atol=1e-6
    )


@pytest.mark.parametrize("site", ["university", "residential"])
def test_shipped_datums_round_trip_below_a_millimetre(site: str) -> None:
    data = read_yaml(REPO / "maps" / site / "datum.yaml")
    datum = Datum(**{k: float(v) for k, v in data.items()})
    xyz = np.random.default_rng(0).uniform([-400, -400, -10], [400, 400, 60], (500, 3))
    lla = local_to_geodetic(datum, xyz)
    assert np.abs(lla[:, 0] - datum.latitude).max() < 0.01  # within ~1 km of the origin
    assert np.linalg.norm(geodetic_to_local(datum, lla) - xyz, axis=1).max() < 1e-3


def test_a_wrong_shape_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"lla: expected \(\.\.\., 3\)"):
        geodetic_to_enu(ORIGIN, [30.0, 120.0])
