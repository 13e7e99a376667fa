"""stops.yaml: the station and the delivery stops, round trip and hand-editable layout."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import yaml

from xiaomanlv_core.stops import stops_to_dict
from xiaomanlv_mapping.mapfiles import STOPS_FILE, read_stops, write_stops


def test_stops_round_trip(tmp_path: Path, map_rig: ModuleType) -> None:
    write_stops(map_rig.synthetic_stops(), tmp_path / STOPS_FILE)
    assert read_stops(tmp_path / STOPS_FILE) == map_rig.synthetic_stops()


def test_each_stop_is_one_line_for_hand_editing(tmp_path: Path, map_rig: ModuleType) -> None:
    stops = map_rig.synthetic_stops()
    write_stops(stops, tmp_path / STOPS_FILE)
    text = (tmp_path / STOPS_FILE).read_text()
    assert text.startswith("# The station and the delivery stops")
    assert sum(1 for line in text.splitlines() if line.startswith("- {name: ")) == len(stops.stops)
    assert yaml.safe_load(text) == stops_to_dict(stops)
