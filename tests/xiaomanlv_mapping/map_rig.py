"""Synthetic prior maps for the map-file, conversion and map-server tests.

A small site: a 60 x 40 cell grid with free, occupied and unknown cells, a cloud spread over
several 100 m tiles (also across the negative quadrants), a datum, a route graph from the
station through a junction to two stops and a dead end, and the matching stops.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from xiaomanlv_core.types import Stop
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Datum,
    Grid,
    PoseSeries,
    PriorMap,
    RouteEdge,
    RouteGraph,
    RouteNode,
    StopSet,
)


def synthetic_grid(seed: int = 0, shape: tuple[int, int] = (40, 60)) -> Grid:
    rng = np.random.default_rng(seed)
    cells = rng.choice(np.array([FREE, OCCUPIED, UNKNOWN], dtype=np.int8), size=shape)
    cells[0, :] = OCCUPIED  # the bottom row: distinguishes up from down in the image
    cells[-1, :5] = UNKNOWN
    return Grid(resolution=0.25, origin=(-7.5, -5.0, 0.1), cells=cells.astype(np.int8))


def synthetic_cloud(seed: int = 0, points: int = 3000) -> np.ndarray:
    """Points over x in [-150, 250), y in [-80, 120): six tiles of 100 m, a few exactly on a
    tile edge."""
    rng = np.random.default_rng(seed)
    cloud = np.column_stack(
        [
            rng.uniform(-150.0, 250.0, points),
            rng.uniform(-80.0, 120.0, points),
            rng.uniform(-0.5, 12.0, points),
        ]
    ).astype(np.float32)
    cloud[:4, 0] = [0.0, 100.0, -100.0, 200.0]  # on tile boundaries
    cloud[:4, 1] = [0.0, -0.0, 100.0, 0.5]
    return cloud


def synthetic_routes() -> RouteGraph:
    """Station (0) - junction (1) - stop_a (2), junction - stop_b (3), junction - end (4).
    Edge ids start above the node ids (Nav2 needs ids unique across nodes and edges)."""
    nodes = (
        RouteNode(0, 0.0, 0.0, "station", "depot"),
        RouteNode(1, 20.0, 0.0, "junction"),
        RouteNode(2, 20.0, 30.0, "stop", "stop_a"),
        RouteNode(3, 45.5, -2.25, "stop", "stop_b"),
        RouteNode(4, 20.0, -15.0, "end"),
    )
    edges = (
        RouteEdge(10, 0, 1, ((0.0, 0.0), (10.0, 0.5), (20.0, 0.0)), 1.5, 3.0),
        RouteEdge(11, 1, 2, ((20.0, 0.0), (20.0, 30.0)), 1.2, 2.5),
        RouteEdge(12, 1, 3, ((20.0, 0.0), (33.0, -1.0), (45.5, -2.25)), 2.0, 4.0),
        RouteEdge(13, 4, 1, ((20.0, -15.0), (20.0, 0.0)), 0.8, 1.6),
    )
    return RouteGraph(nodes=nodes, edges=edges)


def synthetic_stops() -> StopSet:
    return StopSet(
        station="depot",
        loading=Stop("depot_loading", 0.0, -2.0, -math.pi / 2, "depot"),
        charging=Stop("depot_charging", 4.0, -2.0, -1.570796, "depot"),
        stops=(
            Stop("stop_a", 20.0, 30.0, math.pi / 2, "library"),
            Stop("stop_b", 45.5, -2.25, 0.0, ""),
        ),
    )


def synthetic_map(site: str = "testsite", seed: int = 0, points: int = 3000) -> PriorMap:
    return PriorMap(
        site=site,
        cloud=synthetic_cloud(seed, points),
        cloud_voxel=0.2,
        grid=synthetic_grid(seed),
        datum=Datum(latitude=30.308, longitude=120.351, altitude=8.5, heading_deg=12.5),
        routes=synthetic_routes(),
        stops=synthetic_stops(),
        info={"bag": "drives/testsite.mcap", "params": {"voxel": 0.2, "loops": [1, 2]}, "n": 3},
        trajectory=synthetic_trajectory(seed),
    )


def synthetic_trajectory(seed: int = 0, n: int = 50) -> PoseSeries:
    """A wandering drive: poses map <- base_link at 10 Hz with yaw, a little roll and pitch."""
    rng = np.random.default_rng(seed)
    yaw = np.cumsum(rng.normal(0.0, 0.05, n))
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = Rotation.from_euler(
        "xyz", np.column_stack([rng.normal(0, 0.01, n), rng.normal(0, 0.01, n), yaw])
    ).as_matrix()
    poses[:, 0, 3] = np.cumsum(np.cos(yaw)) * 0.15
    poses[:, 1, 3] = np.cumsum(np.sin(yaw)) * 0.15
    poses[:, 2, 3] = rng.normal(0.0, 0.02, n)
    return PoseSeries(stamps=100.0 + 0.1 * np.arange(n), poses=poses)


def sorted_rows(cloud: np.ndarray) -> np.ndarray:
    """The cloud's rows in lexicographic order (to compare clouds as sets of points)."""
    c = np.asarray(cloud)
    return c[np.lexsort((c[:, 2], c[:, 1], c[:, 0]))]


def assert_same_map(a: PriorMap, b: PriorMap) -> None:
    """Equal in every field; the clouds as the same points in any order, bit for bit."""
    assert a.site == b.site
    assert a.cloud.dtype == b.cloud.dtype == np.float32
    assert np.array_equal(sorted_rows(a.cloud), sorted_rows(b.cloud))
    assert a.cloud_voxel == b.cloud_voxel
    assert a.grid.resolution == b.grid.resolution and a.grid.origin == b.grid.origin
    assert a.grid.cells.dtype == b.grid.cells.dtype == np.int8
    assert np.array_equal(a.grid.cells, b.grid.cells)
    assert a.datum == b.datum
    assert a.routes == b.routes
    assert a.stops == b.stops
    assert a.info == b.info
    if a.trajectory is None or b.trajectory is None:
        assert a.trajectory is b.trajectory is None
    else:
        np.testing.assert_allclose(a.trajectory.stamps, b.trajectory.stamps, atol=1e-6)
        np.testing.assert_allclose(a.trajectory.poses, b.trajectory.poses, atol=1e-6)
