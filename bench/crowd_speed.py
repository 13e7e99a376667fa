"""Crowd speed: median wall time of `Crowd.step` for 100 pedestrians + 10 cyclists.

Target (docs/simulator.md budget): well under 1 ms per step on one core. Runs on the shipped
`university` world when it and its sidecar load, else on a synthetic 4x4 block campus.

Also measures PySocialForce (pip `pysocialforce`, Helbing-Molnar forces with groups) on the
same agents and the same walls, when it is importable, because Conventions #12 asks why the
crowd is hand-written numpy: PySocialForce samples walls into points (10 per metre) and loops
over agents in Python for the obstacle force, has a single goal per agent and no
non-penetration, and is what this comparison times. It is not a dependency of the project;
to reproduce the comparison:

    python -m venv /tmp/psf && /tmp/psf/bin/pip install pysocialforce shapely networkx \
        scipy pyyaml opencv-python-headless
    PYTHONPATH=src /tmp/psf/bin/python bench/crowd_speed.py

Usage: source tools/env.sh && python bench/crowd_speed.py [--quick]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from xiaomanlv_sim.agents import Crowd
from xiaomanlv_sim.footprint import Footprints
from xiaomanlv_sim.scenario import CrowdSpec
from xiaomanlv_sim.site import MappingRoute, Pose2D, Site, Station, Walkways
from xiaomanlv_sim.world import Box, Shape, World


def _pose(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def synthetic_campus() -> tuple[World, Site]:
    """4x4 blocks of 20 m buildings on a 30 m grid, walkways between them, a door per building."""
    shapes, entrances = [], {}
    for i in range(4):
        for j in range(4):
            name = f"b{i}{j}"
            shapes.append(
                Shape(name, Box((20, 20, 10)), _pose(i * 30, j * 30, 5), name, "building")
            )
            entrances[name] = (float(i * 30), float(j * 30 - 10))
    nodes: dict[str, tuple[float, float]] = {}
    edges = []
    for i in range(5):
        for j in range(5):
            nodes[f"n{i}{j}"] = (i * 30.0 - 15, j * 30.0 - 15)
            if i:
                edges.append((f"n{i - 1}{j}", f"n{i}{j}", 4.0 if j % 2 == 0 else 2.5))
            if j:
                edges.append((f"n{i}{j - 1}", f"n{i}{j}", 2.5))
    world = World("synthetic", Path("synthetic.sdf"), tuple(shapes), None)
    station = Station("station", Pose2D(-15, -15), Pose2D(-14, -15))
    site = Site(
        "synthetic",
        world.source,
        station,
        (),
        MappingRoute(((-15.0, -15.0),), False, 0.0),
        Walkways(nodes, tuple(edges)),
        entrances,
    )
    return world, site


def load_campus() -> tuple[World, Site, str]:
    try:
        from xiaomanlv_sim.assets import site_file, world_file
        from xiaomanlv_sim.sdf import load_world
        from xiaomanlv_sim.site import load_site

        path = world_file("university")
        return load_world(path), load_site(site_file(path)), "university"
    except Exception as err:  # any failure: the shipped world is not there yet
        print(f"[crowd_speed] university world not usable ({err}); synthetic campus", flush=True)
        world, site = synthetic_campus()
        return world, site, "synthetic"


def time_crowd(crowd: Crowd, steps: int, dt: float) -> list[float]:
    robot = np.array([crowd.site.station.loading.x, crowd.site.station.loading.y])
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        crowd.step(dt, robot, np.array([0.5, 0.0]), 0.45)
        times.append(time.perf_counter() - t0)
    return times


def time_pysocialforce(crowd: Crowd, footprints: Footprints, steps: int) -> list[float] | None:
    try:
        import pysocialforce as psf  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    lines = []
    for fp in footprints.all:
        xy = np.asarray(fp.polygon.exterior.coords)
        for (x0, y0), (x1, y1) in itertools.pairwise(xy):
            if np.hypot(x1 - x0, y1 - y0) >= 0.2:  # PySocialForce fails on empty samplings
                lines.append((x0, x1, y0, y1))
    state = np.hstack([crowd.pos, crowd.vel, crowd.goals])
    groups = [list(map(int, np.flatnonzero(crowd.group == g))) for g in np.unique(crowd.group)]
    logging.getLogger("numba").setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    sim = psf.Simulator(state, groups=groups, obstacles=lines)
    sim.step(3)  # numba compiles on first use
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        sim.step(1)
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--pedestrians", type=int, default=100)
    parser.add_argument("--cyclists", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    steps = 300 if args.quick else 2000
    dt = 0.05

    world, site, name = load_campus()
    t0 = time.perf_counter()
    footprints = Footprints.from_world(world)
    t_fp = time.perf_counter() - t0
    print(f"[crowd_speed] {name}: {len(footprints.static)} footprints in {t_fp:.2f} s", flush=True)
    spec = CrowdSpec(pedestrians=args.pedestrians, cyclists=args.cyclists)
    t0 = time.perf_counter()
    crowd = Crowd(spec, site, footprints, np.random.default_rng(0))
    t_init = time.perf_counter() - t0
    time_crowd(crowd, 50, dt)  # warm-up
    print(f"[crowd_speed] timing {steps} steps of {args.pedestrians}+{args.cyclists}", flush=True)
    runs = [float(np.median(time_crowd(crowd, steps, dt))) for _ in range(3)]
    step_ms = 1e3 * float(np.median(runs))
    print(f"[crowd_speed] Crowd.step median {step_ms:.3f} ms", flush=True)

    psf_steps = 20 if args.quick else 100
    psf_times = time_pysocialforce(crowd, footprints, psf_steps)
    psf_ms = None if psf_times is None else 1e3 * float(np.median(psf_times))
    if psf_ms is None:
        print("[crowd_speed] pysocialforce not importable: comparison skipped", flush=True)
    else:
        print(f"[crowd_speed] pysocialforce step median {psf_ms:.3f} ms", flush=True)
    result = {
        "bench": "crowd_speed",
        "world": name,
        "pedestrians": args.pedestrians,
        "cyclists": args.cyclists,
        "dt_s": dt,
        "steps": steps,
        "footprints_build_s": round(t_fp, 3),
        "crowd_init_s": round(t_init, 3),
        "step_median_ms": round(step_ms, 4),
        "target_step_ms": 1.0,
        "pysocialforce_step_median_ms": None if psf_ms is None else round(psf_ms, 3),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
