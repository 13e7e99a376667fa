"""Where the installed ``xiaomanlv`` package keeps its files (via the ament index)."""

from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix

PACKAGE = "xiaomanlv"  # the ROS package: interfaces, executables, share files


class PackageNotBuiltError(RuntimeError):
    """The ROS package is not in the ament index of this environment."""


def package_prefix() -> Path:
    """The install prefix of the ``xiaomanlv`` ROS package.

    Raises:
        PackageNotBuiltError: when it is not built or its setup file is not sourced.
    """
    try:
        return Path(get_package_prefix(PACKAGE))
    except PackageNotFoundError:
        raise PackageNotBuiltError(
            f"ROS package '{PACKAGE}' is not in AMENT_PREFIX_PATH: run `make build`, then "
            "`source tools/env.sh` (or use the make targets, which do both)"
        ) from None


def share_dir() -> Path:
    """``<prefix>/share/xiaomanlv``: config/, launch/, maps/, worlds/, models/, urdf/."""
    return package_prefix() / "share" / PACKAGE


def graph_file() -> Path:
    return share_dir() / "config" / "graph.yaml"


def executables_file() -> Path:
    return share_dir() / "executables.txt"


def node_executable(name: str) -> Path:
    """``<prefix>/lib/xiaomanlv/<name>``, where ``ros2 run xiaomanlv <name>`` looks."""
    path = package_prefix() / "lib" / PACKAGE / name
    if not path.is_file():
        raise PackageNotBuiltError(f"node executable {path} is missing: run `make build`")
    return path
