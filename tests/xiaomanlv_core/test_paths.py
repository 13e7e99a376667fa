"""Finding maps/<site>: one search for the map server and the localiser, plain names only, a
missing site named with where it was looked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_core import paths
from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.paths import SiteMapError, maps_roots, site_map_dir
from xiaomanlv_mapping.mapfiles import site_map_dir as mapping_site_map_dir
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.nodes.localizer import map_directory


def test_the_source_tree_comes_first(repo: Path) -> None:
    assert maps_roots()[0] == repo / "maps"
    assert site_map_dir("university") == repo / "maps" / "university"


@pytest.mark.parametrize("site", ["../university", "", "..", "university/../residential"])
def test_a_site_is_a_plain_name(site: str) -> None:
    with pytest.raises(SiteMapError, match=r"parameter 'site' = .* is not a site name"):
        site_map_dir(site)


def test_a_missing_site_names_where_it_looked(repo: Path) -> None:
    with pytest.raises(SiteMapError, match=rf"no map for site 'nowhere': looked in {repo}/maps"):
        site_map_dir("nowhere")


def test_map_server_and_localiser_find_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "maps" / "testsite").mkdir(parents=True)
    monkeypatch.setattr(paths, "_SOURCE_ROOT", tmp_path)
    expected = tmp_path / "maps" / "testsite"
    assert mapping_site_map_dir("testsite") == expected
    assert map_directory(LocalizerConfig(site="testsite")) == expected
    assert map_directory(LocalizerConfig(map=str(tmp_path))) == tmp_path
    with pytest.raises(ConfigError, match="no map for site 'elsewhere'"):
        map_directory(LocalizerConfig(site="elsewhere"))
