"""bench/mapping.py maps a world given by its path and reports it in its last-line JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_bench_maps_a_world_given_by_path_among_people(tmp_path: Path) -> None:
    world = REPO / "worlds" / "university.sdf"
    run = subprocess.run(
        [
            sys.executable, str(REPO / "bench" / "mapping.py"), "--world", str(world),
            "--length", "25", "--runs", "1", "--seed", "3", "--pedestrians", "4",
            "--cyclists", "1", "--workdir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert "[mapping] seed 3 (repeat with --seed 3)" in lines[0]
    result = json.loads(lines[-1])
    assert result["seed"] == 3 and result["sites_mapped"] == ["university"]
    assert result["builds_failed"] == 0 and result["drives_failed"] == 0
    (site,) = result["sites"]
    assert site["world"] == str(world) and 20.0 < site["drive_m"] < 30.0
    assert result["grid_iou"] == site["grid_iou"] and result["grid_iou_site"] == "university"
    assert (tmp_path / "university" / "map" / "info.yaml").is_file()
