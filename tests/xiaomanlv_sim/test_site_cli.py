"""`xiaomanlv sim site check` (lines, exit codes) and `sim render` of a site sidecar."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from site_rig import HALF_PI, box_model, toy_site

from xiaomanlv_sim.cli import main
from xiaomanlv_sim.render import PROBLEM_ERROR, ROUTE, RenderError, render_top_down
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sitecheck import SiteProblem


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


def has_colour(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(img.reshape(-1, 3) == rgb[::-1], axis=1).sum())


def test_a_clean_site_exits_0_with_one_ok_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = toy_site(tmp_path)
    code, out, _ = run(["sim", "site", "check", str(path)], capsys)
    assert code == 0
    assert out == [f"ok {path}: toy on toy.sdf: 1 stops, 5 walkway edges, mapping route 60 m"]


def test_the_shipped_sites_by_name_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sim", "site", "check", "university", "residential"], capsys)
    assert code == 0 and [line.split()[0] for line in out] == ["ok", "ok"]


def test_warnings_only_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def turn(d: dict[str, Any]) -> None:
        d["stops"][0]["pose"] = [-12, 10, -HALF_PI]

    path = toy_site(tmp_path, turn)
    code, out, _ = run(["sim", "site", "check", str(path)], capsys)
    assert code == 1
    assert out == [
        f"{path}: warning: stops[0] (hall_south): faces 180 deg away from its entrance "
        "(allowed 45 deg) at (-12.00, 10.00)",
        f"{path}: 0 errors, 1 warnings",
    ]


def test_every_problem_is_a_line_naming_its_element_and_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def two_stops_off(d: dict[str, Any]) -> None:
        far = {"name": "far", "pose": [40, 30, 0], "building": "hall", "entrance": [-7, 17]}
        d["stops"] = [
            {**d["stops"][0], "pose": [-12, 5, HALF_PI]},
            far,
        ]

    path = toy_site(tmp_path, two_stops_off, models=[box_model("bin", "bench", 20, 5, (1, 1, 1))])
    code, out, _ = run(["sim", "site", "check", str(path)], capsys)
    assert code == 2
    assert all(line.startswith(f"{path}: ") for line in out)
    found = [tuple(line.removeprefix(f"{path}: ").split(": ")[:2]) for line in out[:-1]]
    assert found == [
        ("error", "walkways.edges[1] (a - b)"),
        ("error", "stops[0] (hall_south)"),
        ("warning", "stops[1] (far)"),  # 48.8 m from its door
        ("warning", "stops[1] (far)"),  # faces away from it
        ("error", "stops[1] (far)"),  # off the walkways
        ("warning", "stops[1] (far)"),  # its door is not in entrances
        ("error", "mapping_route.waypoints[1]-[2]"),
    ]
    assert "blocked by bin::link::c (bench" in out[0] and out[0].endswith("at (20.00, 5.00)")
    assert out[-1] == f"{path}: 4 errors, 3 warnings"


def test_a_schema_error_is_one_line_exit_2_and_the_next_file_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad(d: dict[str, Any]) -> None:
        d["stops"][0]["pose"] = [1, 2]

    broken = toy_site(tmp_path, bad, name="broken.site.yaml")
    good = toy_site(tmp_path)
    code, out, _ = run(["sim", "site", "check", str(broken), str(good)], capsys)
    assert code == 2
    assert out[0] == (
        f"{broken}: error: broken.site.yaml: stops[0].pose: expected [x, y, yaw], got [1, 2]"
    )
    assert out[1].startswith(f"ok {good}")


def test_world_option_and_pairing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def unwritten(d: dict[str, Any]) -> None:
        d["world"] = "toy_v2.sdf"

    path = toy_site(tmp_path, unwritten)
    code, out, _ = run(["sim", "site", "check", str(path)], capsys)
    assert code == 2 and out[0].startswith(f"{path}: error: toy.site.yaml: world: toy_v2.sdf does")
    code, out, _ = run(
        ["sim", "site", "check", str(path), "--world", str(tmp_path / "toy.sdf")], capsys
    )
    assert code == 0 and out[0].startswith("ok ")
    shutil.copy(tmp_path / "toy.sdf", tmp_path / "toy_v2.sdf")
    code, out, _ = run(["sim", "site", "check", str(path)], capsys)
    assert code == 1
    assert out[0] == (
        f"{path}: warning: world: names toy_v2.sdf but toy.sdf sits beside this sidecar: "
        "the simulator pairs toy.sdf with it"
    )
    code, _, err = run(["sim", "site", "check", str(path), "--world", "gone.sdf"], capsys)
    assert code == 2 and err.strip() == "xiaomanlv sim: --world gone.sdf does not exist"


def test_render_draws_a_sidecar_not_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = toy_site(tmp_path, name="plan.yaml")  # the name says nothing: the keys do
    png = tmp_path / "plan.png"
    code, out, err = run(["sim", "render", str(path), "-o", str(png)], capsys)
    assert code == 0, err
    assert out[-1] == f"[sim render] wrote {png}"
    img = cv2.imread(str(png))
    assert has_colour(img, ROUTE) > 100
    assert has_colour(img, PROBLEM_ERROR) == 0


def test_render_marks_the_problems_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = box_model("bench", "bench", 10, 1.0, (1.6, 0.5, 0.45))
    path = toy_site(tmp_path, models=[bench])
    png = tmp_path / "toy.png"
    code, out, _ = run(["sim", "render", str(path), "-o", str(png)], capsys)
    assert code == 0
    assert out[1].startswith("[sim render] 1: error: walkways.edges[0] (s - a): not clear")
    assert has_colour(cv2.imread(str(png)), PROBLEM_ERROR) > 50


def test_render_top_down_route_and_problem_arguments(tmp_path: Path) -> None:
    world = load_world(toy_site(tmp_path).with_name("toy.sdf"))
    with pytest.raises(RenderError, match=r"route must be a finite \(N,2\) array"):
        render_top_down(world, route=np.zeros((3, 3)), path=tmp_path / "x.png")
    problem = SiteProblem("error", "stops[0] (x)", "off", (0.0, 0.0))
    out = render_top_down(world, problems=[problem], path=tmp_path / "p.png")
    assert has_colour(cv2.imread(str(out)), PROBLEM_ERROR) > 50
