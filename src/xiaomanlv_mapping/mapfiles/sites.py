"""Where a site's map lives: ``maps/<site>/`` in the source checkout or the installed share.

The search itself is the foundation's (`xiaomanlv_core.paths.site_map_dir`, shared with the
localiser); here it raises the mapping's own error and honours the map server's ``map``.
"""

from __future__ import annotations

from pathlib import Path

from xiaomanlv_core.paths import SiteMapError, maps_roots
from xiaomanlv_core.paths import site_map_dir as _site_map_dir
from xiaomanlv_mapping.config import MapServerConfig
from xiaomanlv_mapping.model import MappingError

__all__ = ["maps_roots", "resolve_map_dir", "site_map_dir"]


def site_map_dir(site: str) -> Path:
    """``maps/<site>`` of a shipped or built site (`xiaomanlv_core.paths.site_map_dir`).

    Raises:
        MappingError: the name is not a plain name, or no root holds that site's map.
    """
    try:
        return _site_map_dir(site)
    except SiteMapError as err:
        raise MappingError(str(err)) from None


def resolve_map_dir(config: MapServerConfig) -> Path:
    """The directory ``config`` names: ``map`` if set, else ``maps/<site>``."""
    if config.map:
        return Path(config.map).expanduser()
    return site_map_dir(config.site)
