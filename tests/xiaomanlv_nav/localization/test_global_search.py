"""GlobalSearch: from GNSS alone, heading unknown, to the pose; never confident when wrong."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.geometry import planar_pose, wrap_angle, yaw_of
from xiaomanlv_nav.localization.global_search import (
    AMBIGUOUS,
    BAD_GNSS,
    POOR_MATCH,
    TOO_FEW_POINTS,
    GlobalSearch,
    GlobalSearchConfig,
)


def _rig_module() -> ModuleType:
    path = Path(__file__).with_name("scan_rig.py")
    spec = importlib.util.spec_from_file_location("scan_rig", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rig() -> object:
    return _rig_module().ScanRig.for_world("university")


def error(pose: NDArray[np.float64], truth: NDArray[np.float64]) -> tuple[float, float]:
    """[m], [deg] horizontal position and heading error."""
    d = float(np.hypot(*(pose[:2, 3] - truth[:2, 3])))
    turn = abs(wrap_angle(yaw_of(pose[:3, :3]) - yaw_of(truth[:3, :3])))
    return d, math.degrees(turn)


def test_starts_from_gnss_on_walkways_of_a_shipped_map(rig: object) -> None:
    """Random walkway starts along the mapping route (the map sees them), no pose, heading
    unknown, GNSS 1 m: confident and within 0.2 m and 2 deg, or not confident at all."""
    module = _rig_module()
    rng = np.random.default_rng(11)
    search = GlobalSearch(rig.map_points)  # type: ignore[attr-defined]
    right = 0
    for _ in range(4):
        x, y, yaw = module.random_walkway_pose(rig.site, rng)  # type: ignore[attr-defined]
        truth = rig.in_map(rig.truth(x, y, yaw))  # type: ignore[attr-defined]
        scan = rig.scan(rig.truth(x, y, yaw))  # type: ignore[attr-defined]
        fix = truth[:2, 3] + rng.normal(0.0, 1.0, 2)
        result = search.search(scan, fix, np.eye(2))
        if result.confident:
            assert result.pose is not None
            d, turn = error(result.pose, truth)
            assert d < 0.2 and turn < 2.0, (x, y, yaw, d, turn, result.reason)
            right += 1
    assert right >= 3


def corridor_points(rng: np.random.Generator, length: float = 200.0) -> NDArray[np.float64]:
    """Two straight walls 4 m apart, 3 m high, along x, and the floor: nothing fixes x."""
    n = int(length * 3.0 * 40)
    walls = []
    for y in (-2.0, 2.0):
        walls.append(
            np.column_stack(
                [rng.uniform(-length / 2, length / 2, n), np.full(n, y), rng.uniform(0, 3.0, n)]
            )
        )
    floor = np.column_stack(
        [rng.uniform(-length / 2, length / 2, n), rng.uniform(-2.0, 2.0, n), np.zeros(n)]
    )
    return np.concatenate([*walls, floor])


def test_a_symmetric_corridor_is_never_confident() -> None:
    rng = np.random.default_rng(3)
    world = corridor_points(rng)
    pose = planar_pose(10.0, 0.0, 0.3)
    near = world[np.abs(world[:, 0] - 10.0) < 35.0]
    scan = (near - pose[:3, 3]) @ pose[:3, :3]  # into base_link
    search = GlobalSearch(corridor_points(np.random.default_rng(4)))
    result = search.search(scan, (10.5, 0.3), np.eye(2) * 4.0)
    assert not result.confident
    # Equal fits along the axis; the leaves (0.2 m cells, the refinement undone as it runs
    # away) lie up to 0.1 m into a wall, and grazing rays then cross it: poor match as often.
    assert result.reason in (AMBIGUOUS, POOR_MATCH)
    assert len(result.hypotheses) >= 2
    assert result.hypotheses[1][1] >= result.hypotheses[0][1] - 0.05  # as good a runner-up


def test_too_few_points_and_bad_fixes_are_not_confident() -> None:
    rng = np.random.default_rng(5)
    search = GlobalSearch(corridor_points(rng))
    few = np.column_stack([rng.uniform(-5, 5, 20), np.full(20, 2.0), rng.uniform(0, 3, 20)])
    assert search.search(few, (0.0, 0.0), np.eye(2)).reason == TOO_FEW_POINTS
    scan = corridor_points(rng, 60.0)
    assert search.search(scan, (math.nan, 0.0), np.eye(2)).reason == BAD_GNSS
    assert search.search(scan, (0.0, 0.0), np.zeros((2, 2))).reason == BAD_GNSS
    assert not search.search(np.zeros((0, 3)), (0.0, 0.0), np.eye(2)).confident


def test_config_and_target_are_checked() -> None:
    with pytest.raises(ConfigError, match="min_height"):
        GlobalSearchConfig(min_height=5.0, max_height=1.0)
    with pytest.raises(ConfigError, match="resolution"):
        GlobalSearchConfig(resolution=0.0)
    with pytest.raises(ValueError, match="target of shape"):
        GlobalSearch(np.zeros((10, 2)))
