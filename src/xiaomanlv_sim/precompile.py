"""Compile the simulator's numba kernels once, ahead of the first run (`make build` calls this).

The kernels are compiled on first use and cached next to their modules (`__pycache__`). Without
this step the first `sim` node to start would spend tens of seconds compiling before it
publishes, and a node's start-up deadline could pass. Runs the lockstep simulator on the
university rush-hour scenario for half a simulated second, rain included, so every kernel is
compiled with the argument types it gets at run time; a warm cache makes it a few seconds.

    python -m xiaomanlv_sim.precompile
"""

from __future__ import annotations

import sys
import time

import numpy as np

from xiaomanlv_sim import assets
from xiaomanlv_sim.scenario import load_scenario
from xiaomanlv_sim.simulator import Simulator
from xiaomanlv_sim.weather import WeatherState


def main() -> int:
    t0 = time.perf_counter()
    print("[precompile] simulator kernels (numba; cached after the first time)...", flush=True)
    scenario = load_scenario(assets.scenarios_dir() / "university_rush_hour.yaml")
    sim = Simulator.from_scenario(scenario)
    sim.set_cmd_vel(1.0, 0.2)
    for _ in range(round(0.5 * sim.physics_rate)):
        sim.step()
    pose = sim.state.world_from_base() @ sim.robot.lidar.pose
    sim.lidar.scan(sim.scene, pose, sim.time, WeatherState(rain=0.5))
    sim.scene.cast_hits(pose[None, :3, 3], np.array([[1.0, 0.0, 0.0]]))
    print(f"[precompile] done in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
