"""Mapping: one mapping drive of the university world becomes a prior map; how fast, how good.

1. Record the site's mapping route in the lockstep simulator to a rosbag2 MCAP bag
   (`xiaomanlv map record`; the full university route is 2,307 m with a loop, at 1.5 m/s).
2. Build the map from the bag (`xiaomanlv map build`) ``--runs`` times on ONE core: the
   process is pinned to one CPU and BLAS/OpenMP/Open3D/small_gicp use one thread.
   ``realtime_factor`` = drive duration / median build time.
3. Evaluate the built map (`xiaomanlv map evaluate`): ``ate_rmse_m`` (estimated drive vs. the
   simulator's ground truth, SE(3)-aligned), ``map_rms_m`` (map points to the world's true
   surfaces), ``grid_iou`` (the 0.1 m occupancy grid vs. the true footprints), and the same ATE
   of the lidar odometry before loop closure, to show what the pose graph adds. Writes the
   evaluation picture next to the map.

    source tools/env.sh && python bench/mapping.py [--quick] [--bag DIR] [--runs N]

``--quick`` drives the first 300 m only (about a minute in all). Last line: one JSON object.
Targets (issue 4, full drive): realtime_factor >= 10, ate_rmse_m <= 0.10, map_rms_m <= 0.05,
grid_iou >= 0.90.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from xiaomanlv_bringup.map_evaluation import evaluate_map, evaluate_trajectory  # noqa: E402
from xiaomanlv_bringup.ros.mapping_drive import record_mapping_drive  # noqa: E402
from xiaomanlv_core.robot import load_robot, model_file  # noqa: E402
from xiaomanlv_core.site import load_site  # noqa: E402
from xiaomanlv_mapping.bag import open_drive  # noqa: E402
from xiaomanlv_mapping.build import build_map  # noqa: E402
from xiaomanlv_sim import assets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"realtime_factor": 10.0, "ate_rmse_m": 0.10, "map_rms_m": 0.05, "grid_iou": 0.90}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first 300 m of the route")
    parser.add_argument("--world", default="university")
    parser.add_argument("--bag", help="use this recorded drive instead of recording one")
    parser.add_argument("--runs", type=int, help="builds to time (default 3, quick 1)")
    parser.add_argument("--workdir", default=str(REPO / "build" / "bench" / "mapping"))
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    length = 300.0 if args.quick else None
    work = Path(args.workdir) / (f"{args.world}-quick" if args.quick else args.world)
    work.mkdir(parents=True, exist_ok=True)
    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})
    print(f"[mapping] one core (cpu {cpu}); world {args.world}; work dir {work}", flush=True)

    if args.bag:
        bag = Path(args.bag)
        record_s: float | None = None
    else:
        bag = work / "bag"
        if bag.exists():
            shutil.rmtree(bag)
        t0 = time.perf_counter()
        rec = record_mapping_drive(args.world, bag, length=length, progress=True)
        record_s = time.perf_counter() - t0
        print(
            f"[mapping] recorded {rec.distance:.0f} m, {rec.duration:.0f} s of driving, "
            f"in {record_s:.0f} s",
            flush=True,
        )

    world_path = assets.world_file(args.world)
    site = load_site(assets.site_file(world_path))
    robot = load_robot(model_file())
    out = work / "map"
    times: list[float] = []
    summary = None
    for run in range(runs):
        summary = build_map(bag, out, site=site, robot=robot, overwrite=True)
        times.append(summary.build_time)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in summary.stages.items())
        print(
            f"[mapping] build {run + 1}/{runs}: {summary.build_time:.1f} s ({stages})", flush=True
        )
    assert summary is not None
    build_s = statistics.median(times)
    report = evaluate_map(out, bag=bag, world=args.world, png=work / "evaluation.png")
    print(f"[mapping] evaluation picture: {work / 'evaluation.png'}", flush=True)
    truth = open_drive(bag).truth
    before = (
        evaluate_trajectory(summary.result.odometry_only, truth).ate_rmse_m
        if truth is not None
        else None
    )
    result: dict[str, Any] = {
        "world": args.world,
        "quick": args.quick,
        "drive_m": round(report["drive_m"], 1),
        "drive_s": round(summary.drive_duration, 1),
        "record_s": None if record_s is None else round(record_s, 1),
        "build_s_median": round(build_s, 2),
        "build_s_runs": [round(t, 2) for t in times],
        "stages_s": {k: round(v, 2) for k, v in summary.stages.items()},
        "realtime_factor": round(summary.drive_duration / build_s, 2),
        "keyframes": len(summary.result.keyframes),
        "loop_closures": len(summary.result.loop_closures),
        "ate_rmse_odometry_only_m": before,
        **{k: v for k, v in report.items() if k != "drive_m"},
    }
    result["targets"] = TARGETS
    result["met"] = {
        "realtime_factor": result["realtime_factor"] >= TARGETS["realtime_factor"],
        "ate_rmse_m": result.get("ate_rmse_m", float("inf")) <= TARGETS["ate_rmse_m"],
        "map_rms_m": result.get("map_rms_m", float("inf")) <= TARGETS["map_rms_m"],
        "grid_iou": result.get("grid_iou", 0.0) >= TARGETS["grid_iou"],
    }
    print(json.dumps(result, allow_nan=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
