"""Where the simulator finds worlds, site sidecars and the robot model.

The source checkout this package was imported from comes first (so edits need no rebuild), then
the installed ``share/xiaomanlv`` of the ROS package. A name without a suffix means a shipped
world (``university`` -> ``worlds/university.sdf``); anything else is taken as a path.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class AssetNotFoundError(FileNotFoundError):
    """A world, sidecar or model file is not where it was looked for; the message says where."""


def _roots() -> list[Path]:
    roots = []
    if (_SOURCE_ROOT / "worlds").is_dir() and (_SOURCE_ROOT / "models").is_dir():
        roots.append(_SOURCE_ROOT)
    try:
        from xiaomanlv_core.paths import PackageNotBuiltError, share_dir

        with contextlib.suppress(PackageNotBuiltError):
            roots.append(share_dir())
    except ImportError:  # ament_index_python is not installed: only the source tree
        pass
    return roots


def _find(relative: str) -> Path:
    roots = _roots()
    for root in roots:
        if (root / relative).exists():
            return root / relative
    looked = ", ".join(str(r / relative) for r in roots) or "(no source tree or installed share)"
    raise AssetNotFoundError(f"{relative} not found; looked in {looked}")


def models_dir() -> Path:
    return _find("models")


def worlds_dir() -> Path:
    return _find("worlds")


def scenarios_dir() -> Path:
    return _find("scenarios")


def shipped_worlds() -> list[str]:
    """Names of the worlds in worlds/ (those with an SDF file)."""
    return sorted(p.stem for p in worlds_dir().glob("*.sdf"))


def world_file(name_or_path: str | Path) -> Path:
    """The SDF file of a shipped world name, or the given path when it names an existing file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".sdf"):
        path = Path(name_or_path)
        if not path.is_file():
            raise AssetNotFoundError(f"world file {path} does not exist")
        return path
    path = worlds_dir() / f"{text}.sdf"
    if not path.is_file():
        known = ", ".join(shipped_worlds()) or "none"
        raise AssetNotFoundError(f"no world named '{text}' (shipped worlds: {known})")
    return path


def site_file(world_path: Path) -> Path:
    """The site sidecar that belongs to a world file: ``<name>.site.yaml`` next to it."""
    path = world_path.with_name(world_path.stem + ".site.yaml")
    if not path.is_file():
        raise AssetNotFoundError(f"world {world_path} has no site sidecar {path.name} next to it")
    return path
