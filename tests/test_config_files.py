"""config/*.yaml holds only real overrides, of parameters the nodes declare.

Each node declares its parameters from one config dataclass (``declare_config(self, Config)``
in the module executables.txt names), whose defaults live only there. A YAML value equal to
what the node would have without it (the default, or what an earlier file of the same node
set) is a second copy of that value that silently goes stale when the default moves; so is a
parameter no field declares, which rclpy would only reject at start-up. The exceptions are the
values that must agree across nodes (``xiaomanlv_bringup.graph.AGREEMENTS``): both files state
them, and the graph loader checks that they agree.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest

from xiaomanlv_bringup.graph import (
    AGREEMENTS,
    NodeSpec,
    load_profile,
    node_parameters,
    profile_names,
    read_executables,
)

REPO = Path(__file__).resolve().parents[1]
GRAPH = REPO / "config" / "graph.yaml"
EXECUTABLES = read_executables(REPO / "executables.txt")
NODES = sorted(name for name, exe in EXECUTABLES.items() if exe.kind == "node")


def config_class(executable: str) -> type:
    """The dataclass the node's module passes to ``declare_config``, found in its source.

    The class is imported from the module the node imports it from (its config module), not
    through the node module, so this needs no rclpy and follows the class when it moves.
    """
    origin, tree = _node_source(executable)
    declared = [name for name, prefix in _declarations(tree) if prefix == ""]
    assert len(declared) == 1, f"{origin}: expected one declare_config(self, <Config>)"
    return _imported(executable, tree, declared[0])


def prefixed_classes(executable: str) -> dict[str, type]:
    """{prefix: dataclass} of the node's further configs, ``declare_config(self, <Config>,
    prefix=...)`` (a core's own settings), the prefix a string or a module constant."""
    _, tree = _node_source(executable)
    return {p: _imported(executable, tree, n) for n, p in _declarations(tree) if p}


def _node_source(executable: str) -> tuple[str, ast.Module]:
    """(file, parsed source) of the node's module, read without importing it (no rclpy)."""
    module = importlib.util.find_spec(EXECUTABLES[executable].module)
    assert module is not None and module.origin is not None
    return module.origin, ast.parse(Path(module.origin).read_text(encoding="utf-8"))


def _declarations(tree: ast.Module) -> list[tuple[str, str]]:
    """(config class name, prefix or "") of each ``declare_config`` call in ``tree``."""
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    out = []
    for call in ast.walk(tree):
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "declare_config"
            and len(call.args) == 2
            and isinstance(call.args[1], ast.Name)
        ):
            continue
        prefix = ""
        for keyword in call.keywords:
            if keyword.arg == "prefix":
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    prefix = value.value
                elif isinstance(value, ast.Name):
                    prefix = constants[value.id]
        out.append((call.args[1].id, prefix))
    return out


def _imported(executable: str, tree: ast.Module, name: str) -> type:
    """The class ``name`` as the node module imports it (from its own module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    cls: type = getattr(importlib.import_module(node.module), alias.name)
                    return cls
    cls = getattr(importlib.import_module(EXECUTABLES[executable].module), name)
    return cls


def defaults(cls: type) -> dict[str, Any]:
    """Each field's default as a parameter file writes it (a tuple is a YAML list)."""
    out = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        out[field.name] = list(field.default) if isinstance(field.default, tuple) else field.default
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as parameter values: 2 and 2.0 are the same number, True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def graph_nodes() -> list[tuple[str, NodeSpec]]:
    """(profile, node) for every node of every profile of config/graph.yaml."""
    return [
        (profile, spec)
        for profile in profile_names(GRAPH)
        for spec in load_profile(GRAPH, profile, executables=EXECUTABLES).nodes
    ]


AGREED = {side for a in AGREEMENTS for side in (a.first, a.second)}


@pytest.mark.parametrize("executable", NODES)
def test_every_node_declares_its_parameters_from_one_config_dataclass(executable: str) -> None:
    cls = config_class(executable)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert cls.__module__.rsplit(".", 1)[-1] == "config", (
        f"{cls.__name__} lives in {cls.__module__}: a node's config lives in a config module"
    )


def override_problems(spec: NodeSpec) -> list[str]:
    """Values of ``spec``'s parameter files that override nothing, or no declared field."""
    cls = config_class(spec.executable)
    effective = defaults(cls)
    further = prefixed_classes(spec.executable)
    for prefix, other in further.items():
        effective.update({prefix + k: v for k, v in defaults(other).items()})
    problems = []
    for path in spec.parameters:
        only = dataclasses.replace(spec, parameters=(path,))
        for name, (value, _) in node_parameters(only).items():
            where = f"{path.name}: {name} (node {spec.name})"
            if name not in effective:
                owner = next((c for p, c in further.items() if name.startswith(p)), cls)
                problems.append(f"{where}: {owner.__name__} declares no such field")
            elif (spec.executable, name) not in AGREED and same(value, effective[name]):
                problems.append(
                    f"{where} = {value!r} equals the value the node has without it; drop it "
                    f"(the default lives in {cls.__module__}.{cls.__name__})"
                )
            effective[name] = value
    return problems


@pytest.mark.parametrize(("profile", "spec"), graph_nodes(), ids=lambda v: getattr(v, "name", v))
def test_parameter_files_hold_only_real_overrides(profile: str, spec: NodeSpec) -> None:
    assert override_problems(spec) == [], f"profile {profile}"


def test_agreements_name_declared_fields() -> None:
    for agreement in AGREEMENTS:
        for executable, name in (agreement.first, agreement.second):
            assert executable in NODES, f"AGREEMENTS: {executable!r} is no node executable"
            assert name in defaults(config_class(executable)), (
                f"AGREEMENTS: {executable} declares no parameter {name!r}"
            )


def test_agreed_defaults_agree_too() -> None:
    """Run without the YAML (ros2 run on its own), the two nodes still agree."""
    for agreement in AGREEMENTS:
        (a, a_name), (b, b_name) = agreement.first, agreement.second
        first = defaults(config_class(a))[a_name]
        second = defaults(config_class(b))[b_name]
        assert agreement.normalise(first) == agreement.normalise(second), agreement


def _copy_config(target: Path) -> None:
    """config/ (with robot/) copied to ``target``, to break on purpose."""
    (target / "robot").mkdir()
    for path in [*(REPO / "config").glob("*.yaml"), *(REPO / "config").glob("robot/*.yaml")]:
        (target / path.relative_to(REPO / "config")).write_bytes(path.read_bytes())


def test_the_check_finds_redundant_and_unknown_values(tmp_path: Path) -> None:
    """The rule can fail: a copy of config/ with a default restated, a profile file that
    repeats the base file, and a field nobody declares."""
    _copy_config(tmp_path)
    (tmp_path / "health_monitor.yaml").write_text(
        "/**:\n  ros__parameters:\n    publish_rate: 2.0\n    stale_factor: 5.0\n"
        "    no_such_field: 1\n",
        encoding="utf-8",
    )
    spec = load_profile(tmp_path / "graph.yaml", "robot").node("health_monitor")
    problems = override_problems(spec)
    assert len(problems) == 3, problems
    assert problems[0].startswith("health_monitor.yaml: publish_rate (node health_monitor) = 2.0")
    assert "no_such_field (node health_monitor): HealthMonitorConfig declares" in problems[1]
    # robot/health_monitor.yaml sets stale_factor 5.0 again: no override either
    assert problems[2].startswith("health_monitor.yaml: stale_factor (node health_monitor) = 5.0")


def test_a_nodes_further_configs_are_checked_under_their_prefix(tmp_path: Path) -> None:
    """The localiser's integrity and search settings (``integrity.*``, ``search.*``), nested
    in its file as ROS reads them: a real override passes, a default restated and a field
    neither config declares do not."""
    assert set(prefixed_classes("localizer")) == {"integrity.", "search."}
    _copy_config(tmp_path)
    with (tmp_path / "localizer.yaml").open("a", encoding="utf-8") as f:
        f.write(
            "    integrity:\n      no_fit_time: 0.4\n      lost_persistence: 0.3\n"
            "    search:\n      no_such_field: 1\n"
        )
    spec = load_profile(tmp_path / "graph.yaml", "sim").node("localizer")
    problems = override_problems(spec)
    assert len(problems) == 2, problems
    assert "integrity.lost_persistence (node localizer) = 0.3 equals" in problems[0]
    assert "search.no_such_field (node localizer): GlobalSearchConfig declares" in problems[1]
