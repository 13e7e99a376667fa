"""Crowd speed: median wall time of `Crowd.step` on the rush-hour crowd, one core.

The crowd is the one `Simulator.from_scenario(scenarios/university_rush_hour.yaml)` makes:
the scenario's 100 pedestrians and 12 cyclists with its group/loiter/crossing fractions, the
simulator's crowd generator (stream 5 of `SeedSequence(seed)`), its footprints, and the
scenario's obstacles synced at the crowd rate (the trolley appears at 120 s). The robot (the
model's body radius, as the simulator uses) drives the walkway graph from the station at
1.5 m/s, kinematically, so people meet it. dt = 0.05 s (20 Hz).

One core: OMP/OpenBLAS/MKL threads = 1 before numpy loads and the process pinned to one CPU
(`sched_setaffinity`). Reported: `step_median_ms` (median of three runs' medians; the target),
`step_mean_ms` (incl. the steps where someone arrives and plans a new route: what the
simulator pays per step on average), `crowd_ms_per_sim_s` (mean x 20 Hz), and
`first_call_s`: crowd construction plus the first step, which includes loading the compiled
kernels from numba's on-disk cache or compiling them (`kernels_compiled` says which;
`--cold` compiles into a fresh cache directory to measure the compile).

Also measures PySocialForce (pip `pysocialforce`, Helbing-Molnar forces with groups) on the
same agents and the same walls, when it is importable, because Conventions #12 asks why the
crowd is hand-written: PySocialForce samples walls into points (10 per metre) and loops
over agents in Python for the obstacle force, has a single goal per agent and no
non-penetration, and is what this comparison times. It is not a dependency of the project;
to reproduce the comparison:

    python -m venv /tmp/psf && /tmp/psf/bin/pip install pysocialforce shapely networkx \\
        scipy pyyaml opencv-python-headless numba
    PYTHONPATH=src /tmp/psf/bin/python bench/crowd_speed.py

Usage: source tools/env.sh && python bench/crowd_speed.py [--quick] [--cold] [--scenario F]
Last line: one JSON object. Target (issue 3: 50x real time leaves the crowd ~2 ms per
simulated second): step median <= 0.1 ms.
"""

from __future__ import annotations

import os
import sys
import tempfile

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
COLD_CACHE = None
if "--cold" in sys.argv:  # before numba loads: compile into an empty cache
    COLD_CACHE = tempfile.mkdtemp(prefix="crowd_speed_numba_")
    os.environ["NUMBA_CACHE_DIR"] = COLD_CACHE

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from xiaomanlv_core.robot import load_robot, model_file  # noqa: E402
from xiaomanlv_core.site import Site, load_site  # noqa: E402
from xiaomanlv_sim import assets  # noqa: E402
from xiaomanlv_sim.agents import Crowd  # noqa: E402
from xiaomanlv_sim.footprint import Footprints  # noqa: E402
from xiaomanlv_sim.scenario import Scenario, load_scenario  # noqa: E402
from xiaomanlv_sim.sdf import load_world  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DT = 0.05  # [s] the simulator's crowd step at 20 Hz
CROWD_STREAM = 5  # the simulator's generator for the crowd: SeedSequence(seed).spawn(...)[5]


class Robot:
    """The robot driving the walkway graph at constant speed: node to node, far and back."""

    def __init__(self, site: Site, speed: float = 1.5) -> None:
        g = nx.Graph()
        for a, b, _w in site.walkways.edges:
            pa, pb = np.asarray(site.walkways.nodes[a]), np.asarray(site.walkways.nodes[b])
            g.add_edge(a, b, length=float(np.linalg.norm(pa - pb)))
        names = list(g.nodes)
        xy = np.array([site.walkways.nodes[n] for n in names], dtype=float)
        station = np.array([site.station.loading.x, site.station.loading.y])
        start = names[int(np.argmin(np.hypot(*(xy - station).T)))]
        lengths = nx.single_source_dijkstra_path_length(g, start, weight="length")
        far = max(lengths, key=lambda n: lengths[n])
        path = nx.shortest_path(g, start, far, weight="length")
        self.route = [station] + [np.asarray(site.walkways.nodes[n], float) for n in path]
        self.route += self.route[-2::-1]  # and back
        self.speed = speed
        self.i = 1
        self.xy = station.copy()
        self.velocity = np.zeros(2)

    def move(self, dt: float) -> None:
        left = self.speed * dt
        for _ in range(len(self.route)):
            to = self.route[self.i] - self.xy
            d = float(np.hypot(*to))
            if d > left:
                self.velocity = to / d * self.speed
                self.xy = self.xy + to / d * left
                return
            self.xy = self.route[self.i].copy()
            left -= d
            self.i = self.i + 1 if self.i + 1 < len(self.route) else 1


def build(scenario: Scenario) -> tuple[Footprints, Site, float]:
    world_path = assets.world_file(scenario.world)
    world = load_world(world_path)
    site = load_site(assets.site_file(world_path))
    body = load_robot(model_file()).body
    return Footprints.from_world(world), site, 0.5 * math.hypot(body.length, body.width)


def time_crowd(
    crowd: Crowd, footprints: Footprints, scenario: Scenario, robot: Robot, radius: float, n: int
) -> tuple[list[float], int]:
    """Per-step wall times [s] of n crowd steps, and how many steps had an agent event."""
    times = []
    event_steps = 0
    for _ in range(n):
        footprints.sync_obstacles(scenario.obstacles, crowd.time)
        before = EVENTS[0]
        t0 = time.perf_counter()
        crowd.step(DT, robot.xy, robot.velocity, radius)
        times.append(time.perf_counter() - t0)
        event_steps += EVENTS[0] > before
        robot.move(DT)
    return times, event_steps


class CountingCrowd(Crowd):
    """The crowd, counting calls of its per-agent event handler (arrival, stuck, pause over)."""

    def _event(self, i: int, arrived: bool, stuck: bool) -> None:
        EVENTS[0] += 1
        super()._event(i, arrived, stuck)


EVENTS = [0]


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


def kernels_compiled() -> bool | None:
    """Whether this process compiled the crowd kernels (None: no compiled kernels)."""
    try:
        from xiaomanlv_sim import crowd_kernels
    except ImportError:
        return None
    stats = crowd_kernels.step.stats
    return bool(stats.cache_misses) or not bool(stats.cache_hits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--cold", action="store_true", help="compile the kernels afresh")
    parser.add_argument(
        "--scenario", type=Path, default=REPO / "scenarios" / "university_rush_hour.yaml"
    )
    parser.add_argument("--psf-steps", type=int, default=None, help="PySocialForce steps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    steps = 300 if args.quick else 2000

    scenario = load_scenario(args.scenario)
    t0 = time.perf_counter()
    footprints, site, robot_radius = build(scenario)
    t_world = time.perf_counter() - t0
    spec = scenario.crowd
    print(
        f"[crowd_speed] {scenario.name}: {len(footprints.static)} footprints, "
        f"{spec.pedestrians}+{spec.cyclists} agents, robot radius {robot_radius:.2f} m",
        flush=True,
    )
    footprints.sync_obstacles(scenario.obstacles, 0.0)
    robot = Robot(site)
    stream = np.random.SeedSequence(scenario.seed).spawn(CROWD_STREAM + 1)[CROWD_STREAM]
    t0 = time.perf_counter()
    crowd = CountingCrowd(spec, site, footprints, np.random.default_rng(stream))
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    time_crowd(crowd, footprints, scenario, robot, robot_radius, 1)
    t_first = time.perf_counter() - t0
    compiled = kernels_compiled()
    print(f"[crowd_speed] construction {t_init:.2f} s, first step {t_first:.3f} s", flush=True)
    time_crowd(crowd, footprints, scenario, robot, robot_radius, 50)  # warm-up
    print(f"[crowd_speed] timing 3 x {steps} steps", flush=True)
    medians, means, event_steps = [], [], 0
    for _ in range(3):
        times, events = time_crowd(crowd, footprints, scenario, robot, robot_radius, steps)
        medians.append(float(np.median(times)))
        means.append(float(np.mean(times)))
        event_steps += events
    step_ms = 1e3 * float(np.median(medians))
    mean_ms = 1e3 * float(np.median(means))
    print(
        f"[crowd_speed] Crowd.step median {step_ms:.4f} ms (runs "
        + ", ".join(f"{1e3 * m:.4f}" for m in medians)
        + f"), mean {mean_ms:.4f} ms",
        flush=True,
    )

    psf_steps = args.psf_steps if args.psf_steps is not None else (20 if args.quick else 100)
    psf_times = time_pysocialforce(crowd, footprints, psf_steps) if psf_steps else None
    psf_ms = None if psf_times is None else 1e3 * float(np.median(psf_times))
    if psf_ms is None:
        print("[crowd_speed] pysocialforce not importable: comparison skipped", flush=True)
    else:
        print(f"[crowd_speed] pysocialforce step median {psf_ms:.3f} ms", flush=True)
    result = {
        "bench": "crowd_speed",
        "scenario": scenario.name,
        "world": scenario.world,
        "pedestrians": spec.pedestrians,
        "cyclists": spec.cyclists,
        "dt_s": DT,
        "steps": 3 * steps,
        "world_build_s": round(t_world, 3),
        "crowd_init_s": round(t_init, 3),
        "first_call_s": round(t_init + t_first, 3),
        "kernels_compiled": compiled,
        "step_median_ms": round(step_ms, 4),
        "step_run_medians_ms": [round(1e3 * m, 4) for m in medians],
        "step_mean_ms": round(mean_ms, 4),
        "event_step_share": round(event_steps / (3 * steps), 4),
        "crowd_ms_per_sim_s": round(mean_ms / DT, 3),
        "target_step_ms": 0.1,
        "pysocialforce_step_median_ms": None if psf_ms is None else round(psf_ms, 3),
        "python": sys.version.split()[0],
    }
    if COLD_CACHE is not None:
        shutil.rmtree(COLD_CACHE, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
