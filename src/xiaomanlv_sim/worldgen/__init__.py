"""World generator: the shipped campus worlds, their site sidecars and the robot model.

``python -m xiaomanlv_sim.worldgen`` writes, from the Python layouts in this package,
``worlds/university.sdf``, ``worlds/university.site.yaml``, ``worlds/residential.sdf``,
``worlds/residential.site.yaml``, ``models/xiaomanlv/model.sdf`` and its URDF twin
``urdf/xiaomanlv.urdf`` (:mod:`~xiaomanlv_sim.worldgen.urdf`); ``--check`` regenerates
them in memory and fails if the committed files differ. The output is deterministic (no
randomness, fixed number formatting), pure Python (shapely, networkx, numpy; no rclpy).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from pathlib import Path

from xiaomanlv_sim.worldgen import residential, university
from xiaomanlv_sim.worldgen.layout import LayoutError, SiteLayout
from xiaomanlv_sim.worldgen.robot import RobotParams, robot_sdf
from xiaomanlv_sim.worldgen.urdf import URDF_FILE, robot_urdf
from xiaomanlv_sim.worldgen.writers import sidecar_yaml, world_sdf

__all__ = [
    "SITES",
    "LayoutError",
    "RobotParams",
    "SiteLayout",
    "check",
    "generate",
    "repo_root",
    "robot_sdf",
    "robot_urdf",
    "sidecar_yaml",
    "world_sdf",
    "write",
]

_log = logging.getLogger(__name__)

SITES: dict[str, Callable[[], SiteLayout]] = {
    "university": university.build,
    "residential": residential.build,
}


def repo_root() -> Path:
    """The source checkout this package lives in (worlds/ and models/ are written there)."""
    return Path(__file__).resolve().parents[3]


def generate() -> dict[str, str]:
    """Every generated file as {path relative to the repository root: text}.

    Raises LayoutError if a layout breaks one of its promises (blocked walkway, stop on an
    obstacle, disconnected walkways, mapping route off the walkways).
    """
    model = robot_sdf()
    files = {"models/xiaomanlv/model.sdf": model, URDF_FILE: robot_urdf(model)}
    for name, build in SITES.items():
        site = build()
        files[f"worlds/{name}.sdf"] = world_sdf(site)
        files[f"worlds/{name}.site.yaml"] = sidecar_yaml(site)
    return files


def write(root: Path) -> list[Path]:
    """Write every generated file under ``root``; returns the paths written."""
    written = []
    for relative, text in generate().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
        _log.info("wrote %s", path)
    return written


def check(root: Path) -> list[str]:
    """Differences between the files under ``root`` and a fresh generation, one per file.

    Each entry names the file and says whether it is missing or how many lines differ, with
    the first differing lines of a unified diff. An empty list means everything is current.
    """
    problems = []
    for relative, text in generate().items():
        path = root / relative
        if not path.is_file():
            problems.append(f"{relative}: missing (run python -m xiaomanlv_sim.worldgen)")
            continue
        current = path.read_text(encoding="utf-8")
        if current == text:
            continue
        diff = list(
            difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{relative} (committed)",
                f"{relative} (generated)",
                lineterm="",
                n=0,
            )
        )
        changed = sum(1 for line in diff[2:] if line[:1] in "+-")
        preview = "\n".join(diff[:12])
        problems.append(f"{relative}: {changed} lines differ from the generator\n{preview}")
    return problems
