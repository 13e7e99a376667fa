"""Where the installed ``xiaomanlv`` package keeps its files (via the ament index), and where a
site's prior map lives: ``maps/<site>/`` in the source checkout, then the installed share (the
one home of that search: the map server and the localiser both use :func:`site_map_dir`).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix

PACKAGE = "xiaomanlv"  # the ROS package: interfaces, executables, share files
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # src/xiaomanlv_core/ -> the checkout
_SITE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class PackageNotBuiltError(RuntimeError):
    """The ROS package is not in the ament index of this environment."""


class SiteMapError(LookupError):
    """A site name that is not a plain name, or a site no maps folder holds; names the site
    and where it looked."""


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


def maps_roots() -> list[Path]:
    """Folders that may hold ``<site>/`` maps: the source checkout's maps/ (an edited or freshly
    built map needs no rebuild), then the installed ``share/xiaomanlv/maps`` when the package
    is built."""
    roots = []
    if (_SOURCE_ROOT / "maps").is_dir():
        roots.append(_SOURCE_ROOT / "maps")
    with contextlib.suppress(PackageNotBuiltError):
        roots.append(share_dir() / "maps")
    return roots


def site_map_dir(site: str) -> Path:
    """``maps/<site>`` of a shipped or built site, from the first of :func:`maps_roots` that
    holds it.

    Raises:
        SiteMapError: ``site`` is not a plain name (no path), or no root holds its map.
    """
    if not _SITE_NAME.fullmatch(site):
        raise SiteMapError(f"parameter 'site' = {site!r} is not a site name")
    roots = maps_roots()
    for root in roots:
        if (root / site).is_dir():
            return root / site
    looked = ", ".join(str(r / site) for r in roots) or "(no source tree or installed share)"
    raise SiteMapError(
        f"no map for site '{site}': looked in {looked}; build one (`xiaomanlv map build`) "
        "or set the 'map' parameter to a map directory"
    )
