"""Sidecar loading: messages that point at the fix, and a world given instead of the named one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from xiaomanlv_core.site import SiteError, load_site


def _write(tmp_path: Path, **changes: Any) -> Path:
    (tmp_path / "tiny.sdf").write_text("<sdf version='1.9'/>")
    data: dict[str, Any] = {
        "name": "tiny",
        "world": "tiny.sdf",
        "station": {"name": "s", "loading": [0, 0, 0], "charging": [0, 0, 0]},
        "stops": [],
        "entrances": {},
        "walkways": {
            "nodes": {"north_gate": [0, 0], "b": [30, 0], "c": [30, 40]},
            "edges": [["north_gate", "b", 2.0], ["b", "c", 2.0]],
        },
        "mapping_route": {"waypoints": [[0, 0], [30, 0], [30, 40]]},
    }
    data.update(changes)
    path = tmp_path / "tiny.site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_unknown_edge_node_suggests_the_close_names(tmp_path: Path) -> None:
    walkways = {
        "nodes": {"north_gate": [0, 0], "b": [30, 0]},
        "edges": [["north_gat", "b", 2.0]],
    }
    with pytest.raises(
        SiteError,
        match=r"edges\[0\]\[0\]: unknown walkway node 'north_gat' "
        r"\(did you mean north_gate\?\)$",
    ):
        load_site(_write(tmp_path, walkways=walkways))


def test_a_waypoint_off_the_nodes_names_the_nearest(tmp_path: Path) -> None:
    route = {"waypoints": [[0, 0], [29.5, 0.2]]}
    with pytest.raises(
        SiteError,
        match=r"waypoints\[1\]: \[29\.5, 0\.2\] is not a walkway node \(within 0\.01 m\); "
        r"the nearest is b at \[30\.0, 0\.0\], 0\.54 m away$",
    ):
        load_site(_write(tmp_path, mapping_route=route))


def test_a_skipped_edge_names_both_waypoints(tmp_path: Path) -> None:
    route = {"waypoints": [[0, 0], [30, 40]]}
    with pytest.raises(
        SiteError,
        match=r"waypoints\[1\]: no walkway edge from north_gate "
        r"\(waypoints\[0\]\) to c: consecutive waypoints must be",
    ):
        load_site(_write(tmp_path, mapping_route=route))


def test_a_given_world_replaces_the_named_one(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.sdf"
    other.write_text("<sdf version='1.9'/>")
    path = _write(tmp_path, world="not_written_yet.sdf")
    with pytest.raises(SiteError, match=r"world: not_written_yet\.sdf does not exist"):
        load_site(path)
    assert load_site(path, world=other).world == other.resolve()
    with pytest.raises(SiteError, match=r"world: the world file given for it, .*gone\.sdf, does"):
        load_site(path, world=tmp_path / "gone.sdf")
