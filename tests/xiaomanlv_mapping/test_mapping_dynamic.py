"""Moving things leave no trace (xiaomanlv_mapping.dynamic): a drive past a wall, a parked car,
a walker and a person who stood and left, cast with the robot's 16-ring lidar."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_mapping.cloud import assemble_cloud
from xiaomanlv_mapping.dynamic import DynamicConfig, remove_dynamic
from xiaomanlv_mapping.model import Keyframe, MappingError

LIDAR = load_robot(model_file()).lidar
RINGS = (LIDAR.vertical_min, LIDAR.vertical_max, LIDAR.vertical_samples)
Box = tuple[tuple[float, float, float], tuple[float, float, float]]  # (min xyz, max xyz) [m]

WALL: Box = ((-5.0, 6.0, 0.0), (45.0, 6.3, 2.5))
CAR: Box = ((13.0, -4.9, 0.0), (17.0, -3.1, 1.5))  # parked for the whole drive
KERB: Box = ((-5.0, -2.6, 0.0), (45.0, -2.4, 0.13))  # 0.13 m: above the robot's 0.12 m step
STANDING = (22.0, 2.0)  # [m] a person waits here during the first 8 keyframes, then leaves


def _person(x: float, y: float) -> Box:
    return ((x - 0.25, y - 0.25, 0.0), (x + 0.25, y + 0.25, 1.75))


def _walker(k: int) -> tuple[float, float]:
    """A pedestrian walking beside the robot, a little slower, then crossing its path."""
    return (3.0 + 0.9 * k, 2.5) if k < 25 else (25.5, 2.5 - 0.9 * (k - 25))


def _cast(origin: NDArray[np.float64], boxes: list[Box]) -> NDArray[np.float64]:
    """(N,3) [m] returns (world) of the lidar at ``origin`` (level, yaw 0): ground z = 0 and
    axis-aligned boxes, slab intersection; rays that meet nothing within 60 m give none."""
    el = np.linspace(RINGS[0], RINGS[1], RINGS[2])
    az = np.radians(np.arange(0.0, 360.0, 0.25))
    e, a = np.meshgrid(el, az, indexing="ij")
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[:, 2] < 0, -origin[2] / d[:, 2], np.inf)
        for lo, hi in boxes:
            t0 = (np.asarray(lo) - origin) / d
            t1 = (np.asarray(hi) - origin) / d
            near = np.nanmax(np.minimum(t0, t1), axis=1)
            far = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (near <= far) & (near > 0)
            t = np.where(hit & (near < t), near, t)
    keep = t < 60.0
    return origin + d[keep] * t[keep, None]


def _drive(standing_for: int = 8) -> list[Keyframe]:
    """Keyframes every metre along y = 0, x = 0 .. 35 m (the robot's base on the ground)."""
    mount = LIDAR.pose
    keyframes = []
    for k in range(36):
        pose = np.eye(4)
        pose[0, 3] = float(k)
        boxes = [WALL, CAR, KERB, _person(*_walker(k))]
        if k < standing_for:
            boxes.append(_person(*STANDING))
        sensor = pose @ mount
        world = _cast(sensor[:3, 3], boxes)
        base = world - pose[:3, 3]  # yaw 0: base_link axes are the world's
        keyframes.append(Keyframe(k, float(k), pose, base.astype(np.float32)))
    return keyframes


def _near(cloud: NDArray[np.floating], box: Box, pad: float = 0.15) -> NDArray[np.bool_]:
    lo, hi = np.asarray(box[0]) - pad, np.asarray(box[1]) + pad
    out: NDArray[np.bool_] = np.all((cloud >= lo) & (cloud <= hi), axis=1)
    return out


@pytest.fixture(scope="module")
def drive() -> tuple[list[Keyframe], NDArray[np.float32]]:
    keyframes = _drive()
    return keyframes, assemble_cloud(keyframes, voxel=0.1, min_observations=3, count_voxel=0.5)


def _above(cloud: NDArray[np.floating], height: float) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = cloud[:, 2] > height
    return out


def test_people_who_moved_are_removed_what_stood_still_stays(
    drive: tuple[list[Keyframe], NDArray[np.float32]],
) -> None:
    keyframes, cloud = drive
    waiting = _near(cloud, _person(*STANDING)) & _above(cloud, 0.15)
    trail = np.zeros(len(cloud), dtype=bool)
    for k in range(len(keyframes)):
        trail |= _near(cloud, _person(*_walker(k)), pad=0.05)
    trail &= _above(cloud, 0.15) & ~_near(cloud, WALL) & ~_near(cloud, CAR)
    # the observation count alone keeps the person who waited, and some of the walker
    assert waiting.sum() > 20 and trail.sum() > 20
    removal = remove_dynamic(cloud, keyframes, lidar_pose=LIDAR.pose, ring_elevations=RINGS)
    kept = removal.kept
    assert removal.removed == int((~kept).sum()) > 0 and removal.candidates >= removal.removed
    assert not (kept & waiting).any()  # stood, then left: seen empty afterwards
    assert (kept & trail).sum() <= 0.05 * trail.sum()
    # everything that stood still for the whole drive stays: every point below its top (the
    # rim of a roof that beams passed just above may go; the sides below it carry the grid)
    for static in (WALL, CAR, KERB):
        inside = _near(cloud, static, pad=0.05)
        below_rim = inside & (cloud[:, 2] < static[1][2] - 0.1)
        assert below_rim.sum() > 50 and kept[below_rim].all(), static
    assert kept[_near(cloud, KERB, pad=0.05)].all()
    ground = np.abs(cloud[:, 2]) < 0.05
    assert kept[ground].all()


def test_off_or_without_keyframes_everything_stays(
    drive: tuple[list[Keyframe], NDArray[np.float32]],
) -> None:
    keyframes, cloud = drive
    off = remove_dynamic(
        cloud, keyframes, lidar_pose=LIDAR.pose, ring_elevations=RINGS,
        config=DynamicConfig(enabled=False),
    )  # fmt: skip
    assert off.kept.all() and off.removed == 0
    assert remove_dynamic(cloud, [], lidar_pose=LIDAR.pose, ring_elevations=RINGS).kept.all()
    empty = remove_dynamic(
        np.zeros((0, 3)), keyframes, lidar_pose=LIDAR.pose, ring_elevations=RINGS
    )
    assert empty.kept.shape == (0,)


def test_a_low_start_of_the_band_would_cut_the_kerb(
    drive: tuple[list[Keyframe], NDArray[np.float32]],
) -> None:
    """Why candidates start at 0.15 m: beams grazing the kerb's top see through its top
    points, which a start below the kerb's height would remove."""
    keyframes, cloud = drive
    kerb = _near(cloud, KERB, pad=0.05) & _above(cloud, 0.08)
    low = remove_dynamic(
        cloud, keyframes, lidar_pose=LIDAR.pose, ring_elevations=RINGS,
        config=DynamicConfig(min_height=0.0),
    )  # fmt: skip
    assert not low.kept[kerb].all()
    default = remove_dynamic(cloud, keyframes, lidar_pose=LIDAR.pose, ring_elevations=RINGS)
    assert default.kept[kerb].all()


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(MappingError, match=r"max_height \(0.1 m\) must be above min_height"):
        DynamicConfig(min_height=0.2, max_height=0.1)
    with pytest.raises(MappingError, match=r"\(N,3\) array"):
        remove_dynamic(np.zeros((4, 2)), [], lidar_pose=np.eye(4), ring_elevations=RINGS)
    with pytest.raises(MappingError, match="NaN"):
        remove_dynamic(np.full((2, 3), math.nan), [], lidar_pose=np.eye(4), ring_elevations=RINGS)
    with pytest.raises(MappingError, match="at least one ring"):
        remove_dynamic(np.zeros((2, 3)), [], lidar_pose=np.eye(4), ring_elevations=(0.0, 0.0, 0))
