"""xiaomanlv_bringup.graph: graph.yaml profiles, executables.txt and the launch arguments."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from xiaomanlv_bringup.graph import (
    Executable,
    GraphError,
    NodeSpec,
    Profile,
    load_profile,
    profile_names,
    read_executables,
)

REPO = Path(__file__).resolve().parents[2]

EXECUTABLES = """\
# name table
node nav_node = xiaomanlv_nav.nodes.nav:main
node monitor = xiaomanlv_nav.health.nodes.health_monitor:main   # trailing comment

cli tool = xiaomanlv_bringup.cli:main
"""


def _graph(tmp_path: Path, doc: Any, name: str = "graph.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _files(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/**:\n  ros__parameters: {}\n", encoding="utf-8")


def _at(path: Path, field: str) -> str:
    """A pattern for an error message that names ``path`` and then ``field``."""
    return re.escape(f"{path}: {field}")


def _doc(node: dict[str, Any] | None = None, profile: dict[str, Any] | None = None) -> dict:
    """A one-node, one-profile graph; ``node`` / ``profile`` replace fields of the defaults."""
    nav = {"executable": "nav_node", "parameters": ["nav.yaml"], "on_exit": "shutdown"}
    sim = {"description": "test", "use_sim_time": True, "nodes": ["nav"]}
    return {
        "nodes": {"nav": {**nav, **(node or {})}},
        "profiles": {"sim": {**sim, **(profile or {})}},
    }


@pytest.fixture
def executables(tmp_path: Path) -> dict[str, Executable]:
    path = tmp_path / "executables.txt"
    path.write_text(EXECUTABLES, encoding="utf-8")
    return read_executables(path)


# -- a valid profile --------------------------------------------------------------------------


@pytest.fixture
def full_graph(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    _files(config, "nav.yaml", "common/nav_common.yaml", "sim/nav.yaml", "monitor.yaml")
    doc = {
        "nodes": {
            "nav": {
                "executable": "nav_node",
                "namespace": "/robot1",
                "parameters": ["nav.yaml", "common/nav_common.yaml"],
                "remappings": {"/scan": "/lidar/scan", "odom": "/wheel/odom"},
                "on_exit": "restart",
                "max_restarts": 4,
            },
            "monitor": {"executable": "monitor", "parameters": ["monitor.yaml"]},
        },
        "profiles": {
            "sim": {
                "description": "against the simulator",
                "use_sim_time": True,
                "nodes": ["nav", "monitor"],
                "parameters": {"nav": ["sim/nav.yaml"]},
            },
            "robot": {"description": "on the robot", "nodes": ["monitor"]},
        },
    }
    return _graph(config, doc)


def test_valid_profile_resolves_parameter_files_next_to_the_graph_file(
    full_graph: Path, executables: dict[str, Executable], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(full_graph.parent.parent)
    profile = load_profile(Path("config/graph.yaml"), "sim", executables=executables)
    config = full_graph.parent.resolve()
    assert profile.name == "sim"
    assert profile.description == "against the simulator"
    assert [n.name for n in profile.nodes] == ["nav", "monitor"]
    nav = profile.node("nav")
    assert all(p.is_absolute() for p in nav.parameters)
    # The node's own files first, in order, then the profile's overrides.
    assert nav.parameters == (
        config / "nav.yaml",
        config / "common" / "nav_common.yaml",
        config / "sim" / "nav.yaml",
    )
    assert profile.node("monitor").parameters == (config / "monitor.yaml",)


def test_node_fields_are_read(full_graph: Path, executables: dict[str, Executable]) -> None:
    nav = load_profile(full_graph, "sim", executables=executables).node("nav")
    assert nav.executable == "nav_node"
    assert nav.namespace == "/robot1"
    assert nav.remappings == (("/scan", "/lidar/scan"), ("odom", "/wheel/odom"))
    assert (nav.on_exit, nav.max_restarts, nav.use_sim_time) == ("restart", 4, True)


def test_defaults_for_optional_fields(full_graph: Path) -> None:
    monitor = load_profile(full_graph, "robot").node("monitor")
    assert monitor.namespace == ""
    assert monitor.remappings == ()
    assert (monitor.on_exit, monitor.max_restarts, monitor.use_sim_time) == ("shutdown", 5, False)
    # The restart budget is 5 in any 60 s; a node not declared otherwise is critical.
    assert (monitor.restart_window, monitor.critical, monitor.retry_after) == (60.0, True, 300.0)


def test_ros_args(full_graph: Path) -> None:
    nav = load_profile(full_graph, "sim").node("nav")
    config = full_graph.parent.resolve()
    assert nav.ros_args() == [
        "--ros-args",
        "-r", "__node:=nav",
        "-r", "__ns:=/robot1",
        "--params-file", str(config / "nav.yaml"),
        "--params-file", str(config / "common" / "nav_common.yaml"),
        "--params-file", str(config / "sim" / "nav.yaml"),
        "-p", "use_sim_time:=true",
        "-r", "/scan:=/lidar/scan",
        "-r", "odom:=/wheel/odom",
    ]  # fmt: skip


def test_ros_args_without_namespace_on_wall_time(full_graph: Path) -> None:
    monitor = load_profile(full_graph, "robot").node("monitor")
    args = monitor.ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=monitor"]
    assert not any(a.startswith("__ns:=") for a in args)
    assert args[-2:] == ["-p", "use_sim_time:=false"]


def test_launch_ros_kwargs(full_graph: Path) -> None:
    nav = load_profile(full_graph, "sim").node("nav")
    kwargs = nav.launch_ros_kwargs()
    assert kwargs["package"] == "xiaomanlv"
    assert kwargs["executable"] == "nav_node"
    assert kwargs["name"] == "nav"
    assert kwargs["namespace"] == "/robot1"
    assert kwargs["parameters"][:-1] == [str(p) for p in nav.parameters]
    assert kwargs["parameters"][-1] == {"use_sim_time": True}
    assert kwargs["remappings"] == [("/scan", "/lidar/scan"), ("odom", "/wheel/odom")]
    assert kwargs["respawn"] is True
    assert kwargs["output"] == "screen"


def test_respawn_only_for_restart(full_graph: Path) -> None:
    kwargs = load_profile(full_graph, "robot").node("monitor").launch_ros_kwargs()
    assert kwargs["respawn"] is False
    assert kwargs["parameters"][-1] == {"use_sim_time": False}


def test_profile_node_unknown_name_lists_the_nodes(full_graph: Path) -> None:
    profile = load_profile(full_graph, "sim")
    with pytest.raises(
        GraphError, match=re.escape("profile 'sim' has no node 'x' (it has: nav, monitor)")
    ):
        profile.node("x")


def test_profile_names_sorted(full_graph: Path) -> None:
    assert profile_names(full_graph) == ["robot", "sim"]


def test_profile_without_nodes_key_is_rejected(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(profile={"nodes": None}))
    with pytest.raises(
        GraphError, match=_at(path, "profiles.sim.nodes: expected a list of strings")
    ):
        load_profile(path, "sim")


def test_empty_profile_is_allowed(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    profile = load_profile(_graph(tmp_path, _doc(profile={"nodes": []})), "sim")
    assert profile == Profile(name="sim", description="test", nodes=())


# -- graph errors -----------------------------------------------------------------------------


def test_unknown_profile_lists_declared_ones(full_graph: Path) -> None:
    with pytest.raises(
        GraphError, match=re.escape(f"{full_graph}: no profile 'lab' (declared: robot, sim)")
    ):
        load_profile(full_graph, "lab")


def test_node_in_profile_but_not_declared(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(profile={"nodes": ["nav", "planner"]}))
    with pytest.raises(
        GraphError, match=_at(path, "profiles.sim.nodes: 'planner' is not declared under nodes")
    ):
        load_profile(path, "sim")


def test_missing_parameter_file(tmp_path: Path) -> None:
    path = _graph(tmp_path, _doc())
    with pytest.raises(
        GraphError, match=_at(path, "nodes.nav.parameters: file 'nav.yaml' not found next to")
    ):
        load_profile(path, "sim")


def test_parameter_path_that_is_a_directory_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "nav.yaml").mkdir()
    path = _graph(tmp_path, _doc())
    with pytest.raises(GraphError, match=_at(path, "nodes.nav.parameters: file 'nav.yaml'")):
        load_profile(path, "sim")


def test_missing_override_file_names_the_profile_field(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(profile={"parameters": {"nav": ["sim/missing.yaml"]}}))
    with pytest.raises(GraphError, match=_at(path, "profiles.sim.parameters.nav")):
        load_profile(path, "sim")


@pytest.mark.parametrize("on_exit", ["respawn", "", None, True])
def test_on_exit_must_be_restart_or_shutdown(tmp_path: Path, on_exit: object) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"on_exit": on_exit}))
    with pytest.raises(
        GraphError,
        match=_at(path, f"nodes.nav.on_exit: {on_exit!r} is not one of restart, shutdown"),
    ):
        load_profile(path, "sim")


@pytest.mark.parametrize("max_restarts", [-1, True, False, 2.0, "3"])
def test_max_restarts_must_be_a_non_negative_integer(tmp_path: Path, max_restarts: object) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"on_exit": "restart", "max_restarts": max_restarts}))
    with pytest.raises(
        GraphError,
        match=_at(path, f"nodes.nav.max_restarts: expected an integer >= 0, got {max_restarts!r}"),
    ):
        load_profile(path, "sim")


def test_max_restarts_zero_is_allowed(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"on_exit": "restart", "max_restarts": 0}))
    assert load_profile(path, "sim").node("nav").max_restarts == 0


def test_exit_policy_fields_are_read(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    node = {
        "on_exit": "restart",
        "max_restarts": 2,
        "restart_window": 30,
        "critical": False,
        "retry_after": 0,
    }
    nav = load_profile(_graph(tmp_path, _doc(node=node)), "sim").node("nav")
    assert (nav.max_restarts, nav.restart_window, nav.critical, nav.retry_after) == (
        2,
        30.0,
        False,
        0.0,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("restart_window", 0, "expected seconds > 0, got 0.0"),
        ("restart_window", -1.0, "expected seconds in [0, 86400], got -1.0"),
        ("restart_window", ".nan", "expected seconds in [0, 86400], got nan"),
        ("restart_window", "1.0e+400", "expected seconds in [0, 86400], got inf"),
        ("restart_window", "60", "expected seconds in [0, 86400], got '60'"),
        ("restart_window", True, "expected seconds in [0, 86400], got True"),
        ("retry_after", 1e6, "expected seconds in [0, 86400], got 1000000.0"),
        ("retry_after", None, "expected seconds in [0, 86400], got None"),
        ("critical", "yes", "expected true or false, got 'yes'"),
        ("critical", 1, "expected true or false, got 1"),
    ],
)
def test_exit_policy_fields_are_validated(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    _files(tmp_path, "nav.yaml")
    path = tmp_path / "graph.yaml"
    text = yaml.safe_dump(_doc(node={"on_exit": "restart"}), sort_keys=False)
    raw = value if field == "restart_window" and value in (".nan", "1.0e+400") else None
    if raw is not None:  # YAML spellings of NaN and an overflowing float
        text = text.replace("on_exit: restart", f"on_exit: restart\n    {field}: {raw}")
        path.write_text(text, encoding="utf-8")
    else:
        path = _graph(tmp_path, _doc(node={"on_exit": "restart", field: value}))
    with pytest.raises(GraphError, match=_at(path, f"nodes.nav.{field}: {message}")):
        load_profile(path, "sim")


def test_graph_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "graph.yaml"
    path.write_bytes(b"nodes: {}\nprofiles: {sim: {nodes: []}}\n# \xff\xfe\n")
    message = f"{path}: not UTF-8 text (byte 41: invalid start byte)"
    with pytest.raises(GraphError, match=re.escape(message)):
        load_profile(path, "sim")
    table = tmp_path / "executables.txt"
    table.write_bytes(b"node a = m:f  # \xe9\n")
    with pytest.raises(GraphError, match=re.escape(f"{table}: not UTF-8 text")):
        read_executables(table)


def test_shipped_graph_declares_which_nodes_are_critical() -> None:
    # The /clock source, the map and where the robot is on it are what the rest cannot run
    # without; the locker and the kiosk are each other's clients and the graph runs on without
    # them.
    sim = load_profile(REPO / "config" / "graph.yaml", "sim")
    critical = {n.name: n.critical for n in sim.nodes}
    assert critical == {
        "sim": True,
        "map_server": True,
        "localizer": True,
        "ekf": False,
        "health_monitor": True,
        "locker": False,
        "kiosk": False,
    }
    for node in sim.nodes:
        assert node.on_exit == "shutdown" or (node.max_restarts, node.restart_window) == (5, 60.0)


def test_unknown_node_field(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"respawn": True, "args": []}))
    with pytest.raises(GraphError, match=_at(path, "nodes.nav: unknown field(s) args, respawn")):
        load_profile(path, "sim")


@pytest.mark.parametrize("executable", ["ghost", "tool"])
def test_executable_must_be_a_node_in_executables_txt(
    tmp_path: Path, executables: dict[str, Executable], executable: str
) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"executable": executable}))
    with pytest.raises(
        GraphError,
        match=_at(path, f"nodes.nav.executable: '{executable}' is not a node in executables.txt"),
    ):
        load_profile(path, "sim", executables=executables)
    # Without a table to check against, the name is taken as given.
    assert load_profile(path, "sim").node("nav").executable == executable


@pytest.mark.parametrize("executable", [None, "", 5])
def test_executable_must_be_a_name(tmp_path: Path, executable: object) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"executable": executable}))
    with pytest.raises(GraphError, match=_at(path, "nodes.nav.executable: expected an executable")):
        load_profile(path, "sim")


def test_use_sim_time_must_be_a_bool(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(profile={"use_sim_time": "yes"}))
    with pytest.raises(
        GraphError, match=_at(path, "profiles.sim.use_sim_time: expected true or false")
    ):
        load_profile(path, "sim")


def test_bad_node_name(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    doc = _doc()
    doc["nodes"]["2nav"] = doc["nodes"].pop("nav")
    doc["profiles"]["sim"]["nodes"] = ["2nav"]
    path = _graph(tmp_path, doc)
    with pytest.raises(GraphError, match=_at(path, "nodes.2nav: node names are letters")):
        load_profile(path, "sim")


def test_override_for_a_node_not_in_the_profile(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml", "extra.yaml")
    doc = _doc(profile={"parameters": {"planner": ["extra.yaml"]}})
    path = _graph(tmp_path, doc)
    with pytest.raises(
        GraphError,
        match=_at(path, "profiles.sim.parameters: 'planner' is not a node of this profile"),
    ):
        load_profile(path, "sim")


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("nodes: [unclosed\nprofiles: {}\n", encoding="utf-8")
    with pytest.raises(GraphError, match=re.escape(f"{path}: not valid YAML")):
        load_profile(path, "sim")


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "list"), ("", "NoneType"), ("3\n", "int")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "graph.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GraphError, match=re.escape(f"{path}: expected a mapping, got {kind}")):
        load_profile(path, "sim")
    with pytest.raises(GraphError, match=re.escape(f"{path}: expected a mapping")):
        profile_names(path)


def test_nodes_and_profiles_must_be_mappings(tmp_path: Path) -> None:
    path = _graph(tmp_path, {"nodes": ["nav"], "profiles": {}})
    with pytest.raises(GraphError, match=_at(path, "nodes: expected a mapping, got list")):
        load_profile(path, "sim")
    path = _graph(tmp_path, {"nodes": {}}, name="no_profiles.yaml")
    with pytest.raises(GraphError, match=_at(path, "profiles: expected a mapping, got NoneType")):
        profile_names(path)


def test_missing_graph_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(GraphError, match=re.escape(f"cannot read graph declaration {path}")):
        load_profile(path, "sim")


def test_relative_namespace_never_reaches_ros_args_unqualified(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(node={"namespace": "robot1"}))
    try:
        profile = load_profile(path, "sim")
    except GraphError as err:
        assert "nodes.nav.namespace" in str(err)
    else:
        assert "__ns:=/robot1" in profile.node("nav").ros_args()


def test_node_listed_twice_in_a_profile_is_rejected(tmp_path: Path) -> None:
    _files(tmp_path, "nav.yaml")
    path = _graph(tmp_path, _doc(profile={"nodes": ["nav", "nav"]}))
    with pytest.raises(GraphError, match=_at(path, "profiles.sim.nodes")):
        load_profile(path, "sim")


# -- read_executables -------------------------------------------------------------------------


def test_read_executables_ignores_comments_and_blank_lines(
    executables: dict[str, Executable],
) -> None:
    assert executables == {
        "nav_node": Executable("node", "nav_node", "xiaomanlv_nav.nodes.nav", "main"),
        "monitor": Executable(
            "node", "monitor", "xiaomanlv_nav.health.nodes.health_monitor", "main"
        ),
        "tool": Executable("cli", "tool", "xiaomanlv_bringup.cli", "main"),
    }


@pytest.mark.parametrize(
    "bad",
    [
        "service nav = pkg.mod:main",
        "node nav = pkg.mod",
        "node nav pkg.mod:main",
        "node 1nav = pkg.mod:main",
        "node nav = pkg.mod:main extra",
    ],
)
def test_read_executables_malformed_line_reports_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "executables.txt"
    path.write_text(f"# header\nnode ok = pkg.mod:main\n{bad}\n", encoding="utf-8")
    with pytest.raises(
        GraphError, match=re.escape(f"{path}:3: expected '<node|cli> <name> = <module>:<function>'")
    ):
        read_executables(path)


def test_read_executables_rejects_a_duplicate_name(tmp_path: Path) -> None:
    path = tmp_path / "executables.txt"
    path.write_text("node nav = pkg.a:main\n\ncli nav = pkg.b:main\n", encoding="utf-8")
    with pytest.raises(GraphError, match=re.escape(f"{path}:3: executable 'nav' is listed twice")):
        read_executables(path)


def test_read_executables_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "executables.txt"
    path.write_text("# nothing yet\n\n", encoding="utf-8")
    assert read_executables(path) == {}


# -- the repository's own declaration ---------------------------------------------------------


def test_repository_graph_loads_for_every_profile() -> None:
    graph = REPO / "config" / "graph.yaml"
    executables = read_executables(REPO / "executables.txt")
    names = profile_names(graph)
    assert names
    for name in names:
        profile = load_profile(graph, name, executables=executables)
        assert profile.nodes, f"profile {name} has no nodes"
        for node in profile.nodes:
            assert isinstance(node, NodeSpec)
            assert executables[node.executable].kind == "node"
            for path in node.parameters:
                assert path.is_absolute()
                assert path.is_file(), f"{name}/{node.name}: {path} is missing"
