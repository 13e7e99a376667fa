"""Lidar speed: one 16 x 1800 scan (28,800 rays) with 100 pedestrians, on one core.

Loads worlds/university.sdf (or --world), builds the Scene, places pedestrians on open ground,
and times `Lidar.scan` at random robot poses on open ground (a new crowd layout every scan, as
in the simulator): the sweep as the simulator casts it, in `SimulatorConfig.lidar_sectors`
azimuth sectors each from its own pose (driving at 2 m/s, turning at 1 rad/s), and beside it the
whole scan from one pose as one fan (`lidar_instant_ms_median`). Also times the other per-step
sensing calls the simulator makes: the 8 ultrasonic rangers, `ground_height` for the 4 wheel
contacts, `set_agents` and `sky_blocked_fraction`. One core: the process is pinned to one CPU
and numba and Open3D are given one thread. Side by side, the static world alone (no agents, no
noise) through the compiled caster and through an Open3D/Embree scene of the same shapes
triangulated, as the simulator cast before.

    source tools/env.sh && python bench/lidar_speed.py [--quick] [--world NAME]

The last line is one JSON object (medians and p90 in milliseconds). Target (issue 3 and
docs/simulator.md speed budget): lidar_ms_median <= 5.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402

from xiaomanlv_core.robot import (  # noqa: E402
    LidarSpec,
    load_robot,
    model_file,
)
from xiaomanlv_sim import assets  # noqa: E402
from xiaomanlv_sim.scene import Scene, build_raycaster  # noqa: E402
from xiaomanlv_sim.sdf import load_world  # noqa: E402
from xiaomanlv_sim.sensors.lidar import Lidar  # noqa: E402
from xiaomanlv_sim.sensors.ultrasonic import Ultrasonic, read_rangers  # noqa: E402
from xiaomanlv_sim.simulator import SimulatorConfig  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall time [ms] of each of `repeats` calls of `fn` (importable by other benches)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def open_ground(scene: Scene, n: int, rng: np.random.Generator, margin: float = 5.0) -> np.ndarray:
    """`n` random x-y points [m] with nothing but walkable ground below 3 m above them."""
    xmin, ymin, xmax, ymax = scene.bounds
    found: list[np.ndarray] = []
    while sum(len(f) for f in found) < n:
        xy = rng.uniform([xmin + margin, ymin + margin], [xmax - margin, ymax - margin], (4 * n, 2))
        ground = scene.ground_height(xy)
        origins = np.column_stack([xy, ground + 3.0])
        down = np.tile([0.0, 0.0, -1.0], (len(xy), 1))
        dist = scene.cast(origins, down)
        found.append(xy[np.abs(dist - 3.0) < 0.02])
    return np.concatenate(found)[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer scans (under 30 s)")
    parser.add_argument("--world", default="university")
    parser.add_argument("--pedestrians", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    scans = 50 if args.quick else 200
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    world = load_world(assets.world_file(args.world))
    t1 = time.perf_counter()
    scene = Scene.from_world(world)
    t2 = time.perf_counter()
    bare = Scene.from_world(world)  # the static world alone
    embree, _, _ = build_raycaster(world.shapes)
    print(f"{world.name}: {len(world.shapes)} shapes, load {t1 - t0:.2f} s, scene {t2 - t1:.2f} s")

    robot = load_robot(model_file())
    lidar_spec: LidarSpec = robot.lidar
    # The simulator's: the sweep cast in azimuth sectors, each from the pose at its time.
    lidar = Lidar(lidar_spec, np.random.default_rng(1), sectors=SimulatorConfig().lidar_sectors)
    instant = Lidar(lidar_spec, np.random.default_rng(1))  # one fan from one pose
    sonars = [Ultrasonic(s, np.random.default_rng(2 + i)) for i, s in enumerate(robot.ultrasonic)]

    poses = open_ground(scene, scans, rng)
    layouts = [open_ground(scene, args.pedestrians, rng) for _ in range(8)]
    radii = np.full(args.pedestrians, 0.3)
    heights = rng.uniform(1.5, 1.9, args.pedestrians)

    def base_pose(i: int) -> np.ndarray:
        x, y = poses[i]
        yaw = rng.uniform(-np.pi, np.pi)
        pose = np.eye(4)
        pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        pose[:3, 3] = (x, y, scene.ground_height(poses[i : i + 1])[0])
        return pose

    bases = [base_pose(i) for i in range(scans)]

    def sweep(base: np.ndarray) -> np.ndarray:
        """The lidar at each sector's time, driving forward at 2 m/s turning at 1 rad/s."""
        out = np.repeat((base @ lidar_spec.pose)[None], lidar.sectors, axis=0)
        for k, dt in enumerate(lidar.sector_times):
            c, s = np.cos(dt), np.sin(dt)
            step = np.eye(4)
            step[:2, :2] = [[c, -s], [s, c]]
            step[0, 3] = 2.0 * dt
            out[k] = base @ step @ lidar_spec.pose
        return out

    lidar_ms, sonar_ms, batch_ms, static_ms, embree_ms, points = [], [], [], [], [], []
    instant_ms = []
    cutoff = lidar_spec.range_max + 3.0 * lidar_spec.noise_stddev + 1.0
    lidar.scan(scene, sweep(bases[0]), 0.0)  # compile (numba) outside the timing
    instant.scan(scene, bases[0] @ lidar_spec.pose, 0.0)
    rays = np.empty((lidar.fan.rows * lidar.fan.cols, 6), dtype=np.float32)
    set_ms = timed(lambda: scene.set_agents(layouts[0], radii, heights), 50)
    for i in range(scans):
        scene.set_agents(layouts[i % len(layouts)], radii, heights)
        pose = bases[i] @ lidar_spec.pose
        moving = sweep(bases[i])
        t = time.perf_counter()
        scan = lidar.scan(scene, moving, 0.0)
        lidar_ms.append((time.perf_counter() - t) * 1e3)
        points.append(len(scan.points))
        t = time.perf_counter()
        instant.scan(scene, pose, 0.0)
        instant_ms.append((time.perf_counter() - t) * 1e3)
        # The static world alone: the compiled caster, then Open3D/Embree on the same rays.
        t = time.perf_counter()
        bare.cast_fan(lidar.fan, pose, max_range=cutoff)
        static_ms.append((time.perf_counter() - t) * 1e3)
        rays[:, :3] = pose[:3, 3]
        rays[:, 3:] = lidar.fan.directions @ pose[:3, :3].T
        tensor = o3d.core.Tensor.from_numpy(rays)
        t = time.perf_counter()
        embree.cast_rays(tensor, nthreads=1)
        embree_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        for sonar in sonars:
            sonar.read(scene, bases[i] @ sonar.spec.pose, 0.0)
        sonar_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()  # as the simulator reads them: one batched cast
        read_rangers(sonars, scene, [bases[i] @ s.spec.pose for s in sonars], 0.0)
        batch_ms.append((time.perf_counter() - t) * 1e3)
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{scans} scans, median {np.median(lidar_ms):.2f} ms", flush=True)

    wheels = poses[:4] + 0.3
    ground_us = [1e3 * v for v in timed(lambda: scene.ground_height(wheels), 2000)]
    sky_ms = timed(lambda: scene.sky_blocked_fraction(np.array([*poses[0], 1.6])), 200)
    # Open3D's per-ray floor: the same rays in a scene with nothing in their way.
    empty = o3d.t.geometry.RaycastingScene()
    far = o3d.geometry.TriangleMesh.create_box(1, 1, 1)
    far.translate((1e4, 1e4, 1e4))
    empty.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(far))
    floor_ms = timed(lambda: empty.cast_rays(tensor, nthreads=1), 50)

    result = {
        "world": world.name,
        "lidar_ms_median": round(float(np.median(lidar_ms)), 3),
        "lidar_ms_p90": round(float(np.percentile(lidar_ms, 90)), 3),
        "lidar_sectors": lidar.sectors,
        "lidar_instant_ms_median": round(float(np.median(instant_ms)), 3),
        "scene_build_s": round(t2 - t1, 3),
        "rays": int(rays.shape[0]),
        "pedestrians": args.pedestrians,
        "scans": scans,
        "points_median": int(np.median(points)),
        "static_cast_ms_median": round(float(np.median(static_ms)), 3),
        "open3d_static_cast_ms_median": round(float(np.median(embree_ms)), 3),
        "open3d_empty_scene_cast_ms_median": round(float(np.median(floor_ms)), 3),
        "ultrasonic_x8_ms_median": round(float(np.median(sonar_ms)), 3),
        "ultrasonic_x8_batched_ms_median": round(float(np.median(batch_ms)), 3),
        "ground_height_4pts_us_median": round(float(np.median(ground_us)), 2),
        "set_agents_ms_median": round(float(np.median(set_ms)), 3),
        "sky_blocked_ms_median": round(float(np.median(sky_ms)), 3),
        "threads": 1,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
