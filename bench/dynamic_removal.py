"""Dynamic removal: what moving people leave in a map, with and without removing them.

Records a crowded mapping drive (the university's first 300 m, 40 pedestrians, 4 cyclists;
or takes ``--bag``), estimates it once, then builds the map cloud and grid three ways on ONE
core and evaluates each against the world's truth:

- ``count``: the observation count of `cloud.assemble_cloud` alone (the build before removal);
- ``range_image``: plus `dynamic.remove_dynamic` (what the build does);
- ``dufomap``: plus DUFOMap (`pip install dufomap`; skipped when absent) fed the same
  keyframes and lidar poses, one thread, with ``--dufomap-dp`` (the paper's d_p, default 1).

    source tools/env.sh && python bench/dynamic_removal.py [--bag DIR] [--world W]

Last line: one JSON object, per method: ``phantom_cells_pct``, ``grid_iou``, ``grid_recall``,
``map_rms_m`` and ``seconds`` (the removal's wall time). docs/mapping.md, "Moving things".
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from xiaomanlv_bringup.map_evaluation import evaluate_cloud, evaluate_grid  # noqa: E402
from xiaomanlv_bringup.ros.mapping_drive import record_mapping_drive  # noqa: E402
from xiaomanlv_core.robot import load_robot, model_file  # noqa: E402
from xiaomanlv_core.site import load_site  # noqa: E402
from xiaomanlv_mapping.bag import DriveTopics, open_drive  # noqa: E402
from xiaomanlv_mapping.build import BuildConfig  # noqa: E402
from xiaomanlv_mapping.cloud import assemble_cloud, downsample  # noqa: E402
from xiaomanlv_mapping.dynamic import remove_dynamic  # noqa: E402
from xiaomanlv_mapping.grid import grid_from_cloud  # noqa: E402
from xiaomanlv_mapping.slam import estimate  # noqa: E402
from xiaomanlv_sim import assets  # noqa: E402
from xiaomanlv_sim.scene import Scene  # noqa: E402
from xiaomanlv_sim.sdf import load_world  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _dufomap(keyframes: Any, lidar_pose: Any, dense: Any, d_p: int) -> Any:
    from dufomap import dufomap  # type: ignore[import-not-found]

    mapper = dufomap(0.1, 0.2, d_p, num_threads=1)
    views = []
    for kf in keyframes:
        sensor = np.asarray(kf.pose) @ lidar_pose
        points = np.asarray(kf.points, float) @ kf.pose[:3, :3].T + kf.pose[:3, 3]
        mapper.run(points, sensor, cloud_transform=False)
        views.append(sensor)
    mapper.oncePropagateCluster(if_propagate=True, if_cluster=False)
    # label the map points from the last keyframe's viewpoint (labels read the voxel map)
    return mapper.segment(np.asarray(dense, np.float32), views[-1], cloud_transform=False) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bag", help="a recorded drive instead of recording one")
    parser.add_argument("--world", default="university")
    parser.add_argument("--length", type=float, default=300.0, help="metres of route to drive")
    parser.add_argument("--pedestrians", type=int, default=40)
    parser.add_argument("--cyclists", type=int, default=4)
    parser.add_argument("--dufomap-dp", type=int, default=1, help="DUFOMap's d_p [voxels]")
    parser.add_argument("--workdir", default=str(REPO / "build" / "bench" / "dynamic"))
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if args.bag:
        bag = Path(args.bag)
    else:
        bag = Path(args.workdir) / f"{args.world}-crowd"
        record_mapping_drive(
            args.world, bag, length=args.length, pedestrians=args.pedestrians,
            cyclists=args.cyclists, overwrite=True, progress=True,
        )  # fmt: skip
    world_path = assets.world_file(args.world)
    site = load_site(assets.site_file(world_path))
    robot = load_robot(model_file())
    world = load_world(world_path)
    scene = Scene.from_world(world)
    cfg = BuildConfig()
    drive = open_drive(bag, DriveTopics(truth=""))
    start = site.station.loading
    result = estimate(
        drive, lidar_pose=robot.lidar.pose, gnss_antenna=np.asarray(robot.gnss.pose[:3, 3]),
        start=(start.x, start.y, start.yaw), config=cfg.slam,
    )  # fmt: skip
    dense = assemble_cloud(
        result.keyframes, voxel=cfg.grid.resolution, min_observations=cfg.min_observations,
        count_voxel=cfg.count_voxel,
    )  # fmt: skip
    lidar = robot.lidar
    rings = (lidar.vertical_min, lidar.vertical_max, lidar.vertical_samples)
    remove_dynamic(dense[:10], result.keyframes[:2], lidar_pose=lidar.pose, ring_elevations=rings)

    def range_image() -> Any:
        return remove_dynamic(
            dense, result.keyframes, lidar_pose=lidar.pose, ring_elevations=rings,
            config=cfg.dynamic,
        ).kept  # fmt: skip

    methods: dict[str, Any] = {
        "count": lambda: np.ones(len(dense), bool),
        "range_image": range_image,
    }
    try:
        import dufomap  # type: ignore[import-not-found]  # noqa: F401

        methods["dufomap"] = lambda: _dufomap(result.keyframes, lidar.pose, dense, args.dufomap_dp)
    except ImportError:
        print("[dynamic] dufomap is not installed: skipped", flush=True)
    report: dict[str, Any] = {"bag": str(bag), "drive_s": round(drive.duration, 1)}
    for name, method in methods.items():
        t0 = time.perf_counter()
        kept = method()
        seconds = time.perf_counter() - t0
        cloud = dense[kept]
        grid = grid_from_cloud(
            cloud, result.trajectory, max_step=robot.body.max_step,
            max_slope=robot.body.max_slope, robot_height=robot.height, config=cfg.grid,
        )  # fmt: skip
        g = evaluate_grid(grid, world, scene=scene)
        c = evaluate_cloud(downsample(cloud, cfg.cloud_voxel), world)
        report[name] = {
            "phantom_cells_pct": round(g.phantom_cells_pct, 2),
            "grid_iou": round(g.grid_iou, 4),
            "grid_recall": round(g.grid_recall, 4),
            "map_rms_m": round(c.map_rms_m, 4),
            "points_removed": int((~kept).sum()),
            "seconds": round(seconds, 2),
        }
        print(f"[dynamic] {name}: {report[name]}", flush=True)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
