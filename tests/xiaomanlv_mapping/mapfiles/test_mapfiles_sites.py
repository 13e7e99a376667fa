"""Finding maps/<site>: the map parameter wins, site names are plain, a missing site is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_mapping.config import MapServerConfig
from xiaomanlv_mapping.mapfiles import maps_roots, resolve_map_dir, site_map_dir
from xiaomanlv_mapping.model import MappingError


def test_site_resolution(tmp_path: Path) -> None:
    assert resolve_map_dir(MapServerConfig(map=str(tmp_path))) == tmp_path
    with pytest.raises(MappingError, match=r"no map for site 'nowhere_site': looked in"):
        resolve_map_dir(MapServerConfig(site="nowhere_site"))
    with pytest.raises(MappingError, match=r"parameter 'site' = '\.\./x' is not a site name"):
        resolve_map_dir(MapServerConfig(site="../x"))


def test_the_source_tree_maps_come_first(repo: Path) -> None:
    assert maps_roots()[0] == repo / "maps"
    assert site_map_dir("university") == repo / "maps" / "university"
