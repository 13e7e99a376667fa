"""The GNSS velocity is the antenna's: a turn swings an antenna behind the axle sideways."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_sim.sensors.gnss import Gnss
from xiaomanlv_sim.world import World


class _OpenSky:
    def sky_blocked_fraction(self, xyz: NDArray[np.float64], min_elevation: float = 0.26) -> float:
        return 0.0


def test_a_turn_on_the_spot_moves_the_antenna_sideways() -> None:
    spec = dataclasses.replace(
        load_robot(model_file()).gnss, velocity_stddev=0.0, horizontal_stddev=0.0
    )
    turned = Datum(30.2, 120.2, 8.0, heading_deg=90.0)  # world x points north
    gnss = Gnss(spec, World("bare", Path("bare.sdf"), (), turned), np.random.default_rng(0))
    pose = np.eye(4)
    still = gnss.read(pose, np.zeros(3), 0.0, _OpenSky())
    spin = gnss.read(pose, np.zeros(3), 0.2, _OpenSky(), angular_velocity=np.array([0, 0, 1.0]))
    np.testing.assert_allclose(still.velocity_enu, 0.0, atol=1e-12)
    lever = spec.pose[:3, 3]  # behind the axle: turning left swings it to the right (-y)
    assert lever[0] < -0.1
    np.testing.assert_allclose(spin.velocity_enu, [-lever[0], 0.0, 0.0], atol=1e-9)
