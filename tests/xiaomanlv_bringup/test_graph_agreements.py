"""xiaomanlv_bringup.graph.check_agreements: values that must agree across nodes do, at load."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from xiaomanlv_bringup.graph import GraphError, load_profile, node_parameters, profile_names

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of config/ to break."""
    for path in [*(REPO / "config").glob("*.yaml"), *(REPO / "config").glob("robot/*.yaml")]:
        target = tmp_path / path.relative_to(REPO / "config")
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(path.read_bytes())
    return tmp_path


def _set(path: Path, **values: object) -> None:
    """Set (or, with None, remove) parameters in the ``/**`` section of ``path``."""
    doc = yaml.safe_load(path.read_text())
    params = doc["/**"]["ros__parameters"]
    for name, value in values.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    path.write_text(yaml.safe_dump(doc))


def test_the_shipped_profiles_agree() -> None:
    for name in profile_names(REPO / "config" / "graph.yaml"):
        load_profile(REPO / "config" / "graph.yaml", name)


def test_a_kiosk_code_length_other_than_the_lockers_fails_naming_both(config: Path) -> None:
    _set(config / "kiosk.yaml", code_length=6)
    kiosk, locker = config / "kiosk.yaml", config / "locker.yaml"
    expected = (
        f"{kiosk}: kiosk.code_length = 6 and {locker}: locker.code_digits = 8 disagree "
        "(the kiosk takes codes of the length the locker issues)"
    )
    with pytest.raises(GraphError, match=re.escape(expected)):
        load_profile(config / "graph.yaml", "sim")


def test_a_map_of_another_site_than_the_sim_world_fails(config: Path) -> None:
    _set(config / "map_server.yaml", site="residential")
    with pytest.raises(GraphError, match=r"map_server.site = 'residential' and .*sim.world"):
        load_profile(config / "graph.yaml", "sim")
    _set(config / "sim.yaml", world="worlds/residential.sdf")  # an SDF path names its world
    _set(config / "localizer.yaml", site="residential")
    load_profile(config / "graph.yaml", "sim")


def test_a_localiser_on_another_map_than_the_map_servers_fails(config: Path) -> None:
    _set(config / "localizer.yaml", site="residential")
    localizer, server = config / "localizer.yaml", config / "map_server.yaml"
    expected = (
        f"{localizer}: localizer.site = 'residential' and {server}: map_server.site = "
        "'university' disagree (the localiser matches against the map the map server serves)"
    )
    for profile in ("sim", "robot"):
        with pytest.raises(GraphError, match=re.escape(expected)):
            load_profile(config / "graph.yaml", profile)


def test_a_value_stated_on_one_side_only_fails(config: Path) -> None:
    _set(config / "locker.yaml", code_digits=None)
    with pytest.raises(GraphError, match=r"locker\.yaml: locker\.code_digits: not stated; "):
        load_profile(config / "graph.yaml", "sim")


def test_profiles_without_both_nodes_are_not_checked(config: Path) -> None:
    _set(config / "map_server.yaml", site="residential")  # the robot profile runs no sim
    _set(config / "localizer.yaml", site="residential")
    load_profile(config / "graph.yaml", "robot")


def test_node_parameters_later_files_win_and_sections_match_the_node(config: Path) -> None:
    spec = load_profile(config / "graph.yaml", "robot").node("health_monitor")
    extra = config / "extra.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "/**": {"ros__parameters": {"publish_rate": 4.0}},
                "health_monitor": {"ros__parameters": {"rate_window": 3.0}},
                "/other_node": {"ros__parameters": {"rate_window": 9.0}},
            }
        )
    )
    values = node_parameters(dataclasses.replace(spec, parameters=(*spec.parameters, extra)))
    assert values["stale_factor"] == (5.0, config / "robot" / "health_monitor.yaml")
    assert values["publish_rate"] == (4.0, extra)
    assert values["rate_window"] == (3.0, extra)
