"""Top-down render: the PNG, its size, building colours, the trajectory, agents, errors."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.agents import AgentArrays
from xiaomanlv_sim.render import (
    BACKGROUND,
    CATEGORY_COLOURS,
    OBSTACLE,
    PANEL_WIDTH,
    PEDESTRIAN,
    POINTS,
    TRAJECTORY,
    RenderError,
    render_top_down,
)
from xiaomanlv_sim.scenario import ObstacleSpec
from xiaomanlv_sim.world import Box, Cylinder, Shape, World

RES = 0.25  # [m/px]


def shape(
    name: str, geometry: Box | Cylinder, x: float, y: float, z: float, category: str
) -> Shape:
    pose = np.eye(4)
    pose[:3, 3] = (x, y, z)
    return Shape(name, geometry, pose, name, category)


@pytest.fixture
def world() -> World:
    shapes = (
        shape("hall", Box((20, 10, 8)), 10, 20, 4, "building"),
        shape("kerb", Box((40, 0.2, 0.12)), 20, 0, 0.06, "kerb"),
        shape("oak", Cylinder(2.0, 1.0), 35, 35, 5, "tree"),
    )
    return World("toy", Path("toy.sdf"), shapes, None)


def rgb_at(img: np.ndarray, x: float, y: float, x0: float, y1: float) -> tuple[int, int, int]:
    """The RGB pixel at world (x, y) for a canvas whose west edge is x0 and north edge y1."""
    col, row = round((x - x0) / RES), round((y1 - y) / RES)
    b, g, r = img[row, col]
    return int(r), int(g), int(b)


def test_png_size_building_colour_trajectory_and_agents(world: World, tmp_path: Path) -> None:
    traj = np.column_stack([np.linspace(-5, 45, 200), np.full(200, 8.0)])
    agents = AgentArrays(
        positions=np.array([[30.0, 12.0]]),
        velocities=np.zeros((1, 2)),
        radii=np.array([0.3]),
        heights=np.array([1.7]),
        kinds=np.array([0], dtype=np.int8),
        ids=np.array([0], dtype=np.int32),
    )
    trolley = ObstacleSpec("trolley", Pose2D(0.0, 30.0, 0.0), (2.0, 2.0, 1.0))
    out = render_top_down(
        world,
        None,
        agents=agents,
        trajectory=traj,
        obstacles=[trolley],
        resolution=RES,
        path=tmp_path / "a" / "toy.png",
    )
    assert out == tmp_path / "a" / "toy.png"
    img = cv2.imread(str(out))
    assert img is not None
    # the canvas spans every shape, the trajectory and the obstacles plus a 12 m margin
    x0, y0, x1, y1 = -5 - 12, -0.1 - 12, 45 + 12, 37 + 12
    map_h = math.ceil((y1 - y0) / RES)
    assert img.shape[1] == math.ceil((x1 - x0) / RES) + PANEL_WIDTH  # map + legend panel
    assert img.shape[0] >= map_h  # padded below when the legend is taller than the map
    top = y0 + map_h * RES
    assert rgb_at(img, 12.0, 22.0, x0, top) == CATEGORY_COLOURS["building"]
    assert rgb_at(img, 35.0, 35.0, x0, top) == CATEGORY_COLOURS["tree"]  # canopy seen from above
    assert rgb_at(img, 20.0, 8.0, x0, top) == TRAJECTORY
    assert rgb_at(img, 30.0, 12.0, x0, top) == PEDESTRIAN
    assert rgb_at(img, 0.0, 30.0, x0, top) == OBSTACLE
    assert rgb_at(img, 25.0, 12.0, x0, top) == BACKGROUND  # open ground stays background


def test_without_overlays_nothing_is_drawn_on_open_ground(world: World, tmp_path: Path) -> None:
    img = cv2.imread(str(render_top_down(world, resolution=RES, path=tmp_path / "plain.png")))
    x0, y0 = -12.0, -0.1 - 12
    top = y0 + math.ceil((37 + 12 - y0) / RES) * RES
    assert rgb_at(img, 20.0, 8.0, x0, top) == BACKGROUND
    assert rgb_at(img, 12.0, 22.0, x0, top) == CATEGORY_COLOURS["building"]


def test_bad_arguments(world: World, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="resolution"):
        render_top_down(world, resolution=0.0, path=tmp_path / "x.png")
    with pytest.raises(RenderError, match=r"\(N,2\)"):
        render_top_down(world, trajectory=np.zeros(5), path=tmp_path / "x.png")
    empty = World("empty", Path("e.sdf"), (), None)
    with pytest.raises(RenderError, match="nothing to draw"):
        render_top_down(empty, path=tmp_path / "x.png")


def test_a_window_crops_the_map_and_points_are_drawn(world: World, tmp_path: Path) -> None:
    scan = np.array([[30.0, 5.0], [31.0, 5.0]])
    out = render_top_down(
        world, resolution=RES, window=(0.0, 0.0, 40.0, 30.0), points=scan, path=tmp_path / "w.png"
    )
    img = cv2.imread(str(out))
    assert img.shape[1] == round(40.0 / RES) + PANEL_WIDTH
    assert rgb_at(img, 30.0, 5.0, 0.0, 30.0) == POINTS
    assert rgb_at(img, 12.0, 22.0, 0.0, 30.0) == CATEGORY_COLOURS["building"]
    with pytest.raises(RenderError, match="window"):
        render_top_down(world, window=(5.0, 0.0, 5.0, 1.0), path=tmp_path / "x.png")
    with pytest.raises(RenderError, match="points"):
        render_top_down(world, points=np.zeros((3, 3, 1)), path=tmp_path / "x.png")


def test_shipped_world_with_site_is_readable(tmp_path: Path) -> None:
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim.assets import site_file, world_file
    from xiaomanlv_sim.sdf import load_world

    path = world_file("university")
    world = load_world(path)
    site = load_site(site_file(path))
    out = render_top_down(
        world, site, trajectory=np.array(site.mapping_route.waypoints), path=tmp_path / "u.png"
    )
    img = cv2.imread(str(out))
    assert 1000 < img.shape[0] < 4000 and 1000 < img.shape[1] < 4000  # a 450 m site at 0.25 m/px
    pixels = img.reshape(-1, 3)[:, ::-1]
    for colour in (CATEGORY_COLOURS["building"], TRAJECTORY):
        assert np.any(np.all(pixels == colour, axis=1))
