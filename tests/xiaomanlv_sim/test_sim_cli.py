"""`xiaomanlv sim ...`: render, scenario validate, scenario generate; errors exit 2 in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from xiaomanlv_sim.cli import add_sim_commands, load_trajectory, main
from xiaomanlv_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]


def test_add_sim_commands_plugs_into_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="xiaomanlv")
    add_sim_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["sim", "scenario", "generate", "--world", "w", "--count", "2", "--seed", "1", "-o", "d"]
    )
    assert (args.world, args.count, args.seed, args.output) == ("w", 2, 1, "d")
    assert callable(args.func)


def test_render_world_with_trajectory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = tmp_path / "t.csv"
    traj.write_text("x,y\n150,-150\n100,-100\n0,0\n")
    out = tmp_path / "u.png"
    assert (
        main(
            [
                "sim",
                "render",
                "university",
                "-o",
                str(out),
                "--trajectory",
                str(traj),
                "--resolution",
                "0.5",
            ]
        )
        == 0
    )
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 500
    assert "wrote" in capsys.readouterr().out


def test_render_scenario_with_its_crowd(tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    scenario = REPO / "scenarios" / "university_rush_hour.yaml"
    assert (
        main(["sim", "render", str(scenario), "--agents", "-o", str(out), "--resolution", "0.5"])
        == 0
    )
    img = cv2.imread(str(out))
    pink = np.all(img.reshape(-1, 3) == (140, 0, 220), axis=1)  # pedestrians, BGR
    assert pink.sum() > 50


def test_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "render", "atlantis"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "xiaomanlv sim: no world named 'atlantis' (shipped worlds: residential, university)"
    ]
    assert main(["sim", "render", "university", "--trajectory", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nworld: university\nseed: 1\nduration: -1\nstart: station\n")
    assert (
        main(
            [
                "sim",
                "scenario",
                "validate",
                str(REPO / "scenarios" / "university_rain.yaml"),
                str(bad),
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "ok " in captured.out and "university_rain" in captured.out
    assert f"{bad}: duration: must be > 0" in captured.err


def test_generate_writes_valid_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen"
    assert (
        main(
            [
                "sim",
                "scenario",
                "generate",
                "--world",
                "residential",
                "--count",
                "5",
                "--seed",
                "2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    files = sorted(out.glob("*.yaml"))
    assert len(files) == 5
    assert all(load_scenario(f).world == "residential" for f in files)
    assert "5/5" in capsys.readouterr().out
    assert main(["sim", "scenario", "validate", *map(str, files)]) == 0
    assert (
        main(
            [
                "sim",
                "scenario",
                "generate",
                "--world",
                "residential",
                "--count",
                "0",
                "--seed",
                "2",
                "-o",
                str(out),
            ]
        )
        == 2
    )


def test_load_trajectory_formats(tmp_path: Path) -> None:
    npy = tmp_path / "t.npy"
    np.save(npy, np.array([[0.0, 1.0, 0.5], [2.0, 3.0, 0.1]]))
    assert load_trajectory(npy).tolist() == [[0.0, 1.0], [2.0, 3.0]]
    txt = tmp_path / "t.txt"
    txt.write_text("# x y\n1 2\n3 4\n")
    assert load_trajectory(txt).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    txt.write_text("1 2\noops\n")
    with pytest.raises(ValueError, match="line 2: not numbers"):
        load_trajectory(txt)
