"""Where a site's map lives: ``maps/<site>/`` in the source checkout or the installed share.

The source tree comes first, so an edited or freshly built map needs no rebuild; then the
installed ``share/xiaomanlv/maps`` (found through the ament index).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from xiaomanlv_mapping.config import MapServerConfig
from xiaomanlv_mapping.model import MappingError

_SOURCE_ROOT = Path(__file__).resolve().parents[3]  # src/xiaomanlv_mapping/mapfiles/ -> repo


def maps_roots() -> list[Path]:
    """Folders that may hold ``<site>/`` maps: the source checkout's maps/ (edits need no
    rebuild), then the installed ``share/xiaomanlv/maps``."""
    roots = []
    if (_SOURCE_ROOT / "maps").is_dir():
        roots.append(_SOURCE_ROOT / "maps")
    try:
        from xiaomanlv_core.paths import PackageNotBuiltError, share_dir

        with contextlib.suppress(PackageNotBuiltError):
            roots.append(share_dir() / "maps")
    except ImportError:  # ament_index_python is not installed: only the source tree
        pass
    return roots


def site_map_dir(site: str) -> Path:
    """``maps/<site>`` of a shipped or built site.

    Raises:
        MappingError: the name is not a plain name, or no root holds that site's map.
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", site):
        raise MappingError(f"parameter 'site' = {site!r} is not a site name")
    roots = maps_roots()
    for root in roots:
        if (root / site).is_dir():
            return root / site
    looked = ", ".join(str(r / site) for r in roots) or "(no source tree or installed share)"
    raise MappingError(
        f"no map for site '{site}': looked in {looked}; build one (`xiaomanlv map build`) "
        "or set the 'map' parameter to a map directory"
    )


def resolve_map_dir(config: MapServerConfig) -> Path:
    """The directory ``config`` names: ``map`` if set, else ``maps/<site>``."""
    if config.map:
        return Path(config.map).expanduser()
    return site_map_dir(config.site)
