"""Simulator speed: lockstep on the university world at rush hour, all sensors, no stack, one core.

Loads scenarios/university_rush_hour.yaml (100 pedestrians and the 12 cyclists that scenario
has, obstacles and all) and drives the robot from the station along the walkway graph with a
scripted pure-pursuit command on the ground-truth pose (no navigation stack), through
``Simulator.step``: physics 200 Hz, lidar 10 Hz (16 x 1800 rays with the agents, each sweep
cast in ``lidar_sectors`` azimuth sectors from the poses at their times), IMU 100 Hz,
odometry 50 Hz, GNSS 5 Hz, 8 ultrasonic rangers at 20 Hz, crowd 20 Hz.

One core: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and NUMBA_NUM_THREADS are set
to 1 before numpy, numba and Open3D load, and the process is pinned to one CPU
(``os.sched_setaffinity``); the compiled ray caster runs on the calling thread.

``realtime_factor`` comes from runs with nothing wrapped (wall time); ``realtime_factor_cpu``
from the same runs' process time, which other processes on a shared machine disturb far less
(compare builds side by side with it; the target is on wall time). One more run, not counted,
times
every part by wrapping its method on the instances (no change to the simulator):
lidar, ultrasonic (``read_rangers``: all due rangers in one batched cast), crowd,
agents_to_scene (``Scene.set_agents``), physics (``dynamics.step``, which looks the ground up
itself), imu, odometry (incl. integrating the encoder ticks since its last reading), gnss (incl.
sky_blocked_fraction), and
``loop_other`` (the rest of ``Simulator.step``).

    source tools/env.sh && python bench/sim_speed.py [--quick] [--seconds 60]

Last line: one JSON object. Targets (issue 3): lidar_ms_median <= 5, realtime_factor >= 50.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from xiaomanlv_core.robot import (  # noqa: E402
    RobotSpec,
    load_robot,
    model_file,
)
from xiaomanlv_core.site import Site, load_site  # noqa: E402
from xiaomanlv_sim import assets  # noqa: E402
from xiaomanlv_sim import simulator as simulator_module  # noqa: E402
from xiaomanlv_sim.scenario import Scenario, load_scenario  # noqa: E402
from xiaomanlv_sim.scene import Scene  # noqa: E402
from xiaomanlv_sim.sdf import load_world  # noqa: E402
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig  # noqa: E402
from xiaomanlv_sim.world import World  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Timers:
    """Per-part call durations [s]."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.wrapped: list[tuple[Any, str, Any]] = []

    def wrap(self, obj: Any, method: str, part: str, *, restore: bool = False) -> None:
        """Time ``obj.method``; ``restore``: put the original back on unwrap (a module
        attribute), else drop the instance attribute so the class method shows through."""
        inner: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.calls[part].append(time.perf_counter() - t0)

        setattr(obj, method, timed)
        self.wrapped.append((obj, method, inner if restore else None))

    def unwrap(self) -> None:
        """Undo every wrap, last first."""
        for obj, method, original in reversed(self.wrapped):
            if original is not None:
                setattr(obj, method, original)
            else:
                delattr(obj, method)
        self.wrapped.clear()

    def total(self, part: str) -> float:
        return sum(self.calls.get(part, []))


def walkway_route(site: Site, start: tuple[float, float], hops: int = 40) -> list[np.ndarray]:
    """A long walk on the walkway graph from the node nearest ``start``: repeatedly the
    shortest path to the farthest node not visited yet."""
    g = nx.Graph()
    for a, b, _w in site.walkways.edges:
        pa, pb = np.asarray(site.walkways.nodes[a]), np.asarray(site.walkways.nodes[b])
        g.add_edge(a, b, length=float(np.linalg.norm(pa - pb)))
    names = list(g.nodes)
    xy = np.array([site.walkways.nodes[n] for n in names], dtype=float)
    current = names[int(np.argmin(np.hypot(*(xy - np.asarray(start)).T)))]
    route = [current]
    visited = {current}
    rng = np.random.default_rng(0)
    for _ in range(hops):
        lengths = nx.single_source_dijkstra_path_length(g, current, weight="length")
        choices = [n for n in lengths if n not in visited] or list(lengths)
        target = choices[int(rng.integers(len(choices)))]
        path = nx.shortest_path(g, current, target, weight="length")
        route += path[1:]
        visited.update(path)
        current = target
    return [np.asarray(site.walkways.nodes[n], dtype=float) for n in route]


class PurePursuit:
    """cmd_vel toward a lookahead point on the route, from the true pose (no stack)."""

    def __init__(self, route: list[np.ndarray], speed: float = 1.5, lookahead: float = 2.0):
        self.route = route
        self.i = 0
        self.speed = speed
        self.lookahead = lookahead

    def command(self, x: float, y: float, yaw: float) -> tuple[float, float]:
        while self.i < len(self.route) - 1 and (
            math.hypot(*(self.route[self.i] - (x, y))) < self.lookahead
        ):
            self.i += 1
        tx, ty = self.route[self.i]
        heading = math.atan2(ty - y, tx - x)
        err = (heading - yaw + math.pi) % (2 * math.pi) - math.pi
        v = self.speed * max(0.0, math.cos(err)) if abs(err) < 1.2 else 0.0
        return v, max(-1.0, min(1.0, 2.0 * err))


def build(scenario_path: Path) -> tuple[Scenario, World, Site, RobotSpec, Scene]:
    scenario = load_scenario(scenario_path)
    world_path = assets.world_file(scenario.world)
    world = load_world(world_path)
    site = load_site(assets.site_file(world_path))
    robot = load_robot(model_file())
    return scenario, world, site, robot, Scene.from_world(world)


def run(
    seconds: float,
    parts_of_world: tuple[Scenario, World, Site, RobotSpec, Scene],
    config: SimulatorConfig,
    *,
    timed: bool,
) -> Any:
    """One run; returns (wall [s], process time [s], timers, reading counts, simulator).
    ``timed``: wrap every part in a timer (the times then include the timers' own cost)."""
    scenario, world, site, robot, scene = parts_of_world
    sim = Simulator(world, robot, site, scenario, scene=scene, config=config)
    assert sim.site is not None and sim.crowd is not None
    timers = Timers()
    if timed:
        wrap_parts(sim, timers)
    route = walkway_route(sim.site, (sim.start.x, sim.start.y))
    pilot = PurePursuit(route)
    ticks = round(seconds * sim.physics_rate)
    every = max(1, round(sim.physics_rate / 20.0))
    counts: dict[str, int] = defaultdict(int)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for k in range(ticks):
        if k % every == 0:  # 20 Hz commands, like a local planner
            st = sim.state
            sim.set_cmd_vel(*pilot.command(st.x, st.y, st.yaw))
        for reading in sim.step():
            counts[type(reading).__name__] += 1
        if k % 4000 == 0:
            print(f"  t={sim.time:6.1f} s sim, {time.perf_counter() - t0:6.1f} s wall", flush=True)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    timers.unwrap()  # the scene is reused by the next run
    return wall, cpu, timers, counts, sim


def wrap_parts(sim: Simulator, timers: Timers) -> None:
    """Time every part of ``sim``'s step."""
    assert sim.crowd is not None
    timers.wrap(sim.lidar, "scan", "lidar")
    # The simulator reads all due rangers with one batched cast (ultrasonic.read_rangers).
    timers.wrap(simulator_module, "read_rangers", "ultrasonic", restore=True)
    timers.wrap(sim.crowd, "step", "crowd")
    timers.wrap(sim.scene, "set_agents", "agents_to_scene")
    timers.wrap(sim.dynamics, "step", "physics")
    timers.wrap(sim.imu, "read", "imu")
    timers.wrap(sim.odometry, "update", "odometry")
    timers.wrap(sim.odometry, "read", "odometry")
    if sim.gnss is not None:
        timers.wrap(sim.gnss, "read", "gnss")
    timers.wrap(sim, "step", "step")


PARTS = ["lidar", "ultrasonic", "crowd", "agents_to_scene", "physics", "imu", "odometry", "gnss"]


def breakdown(seconds: float, timers: Timers) -> dict[str, float]:
    """[ms] of wall time per simulated second, per part (physics includes its ground lookups)."""
    out = {p: 1e3 * timers.total(p) / seconds for p in PARTS}
    out["loop_other"] = 1e3 * timers.total("step") / seconds - sum(out[p] for p in PARTS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of sim time")
    parser.add_argument("--seconds", type=float, default=60.0, help="sim seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs; medians are reported")
    parser.add_argument(
        "--physics-rate", type=float, default=None, help="[Hz] override SimulatorConfig's"
    )
    parser.add_argument("--crowd-rate", type=float, default=None, help="[Hz] likewise")
    parser.add_argument(
        "--lidar-sectors", type=int, default=None, help="likewise (1: the sweep at one instant)"
    )
    parser.add_argument(
        "--scenario", type=Path, default=REPO / "scenarios" / "university_rush_hour.yaml"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
    seconds = 10.0 if args.quick else args.seconds
    repeats = args.repeats
    print(f"sim_speed: {args.scenario.name}, {repeats} x {seconds:g} s sim, one core", flush=True)
    t_build = time.perf_counter()
    world_parts = build(args.scenario)
    build_s = time.perf_counter() - t_build
    overrides = {
        "physics_rate": args.physics_rate,
        "crowd_rate": args.crowd_rate,
        "lidar_sectors": args.lidar_sectors,
    }
    config = SimulatorConfig(**{k: v for k, v in overrides.items() if v is not None})
    rtf: list[float] = []
    rtf_cpu: list[float] = []
    lidar_ms: list[float] = []
    parts: list[dict[str, float]] = []
    calls: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = {}
    # Compile (numba) and warm every path once, outside the measurement.
    run(1.0, world_parts, config, timed=False)
    for k in range(repeats):
        wall, cpu, _, counts, sim = run(seconds, world_parts, config, timed=False)
        rtf.append(seconds / wall)
        rtf_cpu.append(seconds / cpu)
        print(f"  run {k + 1}: realtime_factor {rtf[-1]:.2f} (cpu {rtf_cpu[-1]:.2f})", flush=True)
    wall, _, timers, _, _ = run(seconds, world_parts, config, timed=True)
    print(f"  timed run: realtime_factor {seconds / wall:.2f} with every part wrapped", flush=True)
    lidar_ms += [1e3 * t for t in timers.calls["lidar"]]
    parts.append(breakdown(seconds, timers))
    for p in [*PARTS, "step"]:
        calls[p] += timers.calls.get(p, [])
    truth = sim.ground_truth
    scenario = world_parts[0]
    result = {
        "lidar_ms_median": round(statistics.median(lidar_ms), 3),
        "lidar_ms_p90": round(float(np.percentile(lidar_ms, 90)), 3),
        "realtime_factor": round(statistics.median(rtf), 2),
        "realtime_factor_runs": [round(r, 2) for r in rtf],
        "realtime_factor_cpu": round(statistics.median(rtf_cpu), 2),
        "pedestrians": scenario.crowd.pedestrians,
        "cyclists": scenario.crowd.cyclists,
        "sim_seconds": seconds,
        "repeats": repeats,
        "build_seconds": round(build_s, 2),
        "ms_per_sim_second": {
            p: round(statistics.median(r[p] for r in parts), 2) for p in parts[0]
        },
        "median_ms_per_call": {
            p: round(1e3 * statistics.median(v), 4) for p, v in calls.items() if v
        },
        "readings_per_run": counts,
        "distance_driven_m": round(
            float(math.hypot(truth.pose[0, 3] - sim.start.x, truth.pose[1, 3] - sim.start.y)), 1
        ),
        "tipped": truth.tipped,
        "threads": 1,
        "physics_rate": config.physics_rate,
        "crowd_rate": config.crowd_rate,
        "lidar_sectors": config.lidar_sectors,
        "scenario": args.scenario.name,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
