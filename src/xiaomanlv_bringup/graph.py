"""The node graph, declared once in ``config/graph.yaml``, read by both launchers.

``ros2 launch xiaomanlv <profile>.launch.py`` (on a machine with ROS 2 installed) and
``xiaomanlv bringup <profile>`` (here) both start what this module reads: for each profile,
the nodes with their executable, namespace, parameter files, remappings and exit policy.

The format (see ``docs/bringup.md``)::

    nodes:
      <name>:
        executable: <name in executables.txt>
        namespace: ""              # optional
        parameters: [<file in config/>, ...]
        remappings: {<from>: <to>}  # optional
        on_exit: restart | shutdown
        max_restarts: 5            # for on_exit: restart, within any restart_window
        restart_window: 60.0       # [s] the sliding window the restart budget covers
        critical: true             # may its loss stop the graph? (default true)
        retry_after: 300.0         # [s] a non-critical node that used up its budget is
                                   # started afresh after this long; 0: left down
    profiles:
      <profile>:
        description: <text>
        use_sim_time: true | false
        nodes: [<name>, ...]
        parameters: {<node>: [<extra file in config/>, ...]}   # optional overrides

Some parameters of different nodes must hold the same value (:data:`AGREEMENTS`: the kiosk's
``code_length`` and the locker's ``code_digits``; the map server's ``site`` and the simulator's
``world``; the localiser's ``site`` and the map server's). Where a profile runs both nodes,
each one's parameter files state the value (even when it equals the default, so a reader sees
both) and :func:`load_profile` checks that they
agree, naming both files and fields when they do not.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xiaomanlv_core.paths import PACKAGE

ON_EXIT = ("restart", "shutdown")
# Defaults of the exit policy, here only (the YAML overrides per node): at most 5 restarts in
# any 60 s (systemd's StartLimitBurst / StartLimitIntervalSec pattern, not a lifetime count);
# a node nobody declared non-critical stops the graph when it is lost for good (fail safe).
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0  # [s]
RETRY_AFTER = 300.0  # [s]
MAX_SECONDS = 86_400.0  # [s] upper bound of restart_window and retry_after (a day)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_EXECUTABLE_LINE = re.compile(
    r"^(?P<kind>node|cli)\s+(?P<name>[A-Za-z][A-Za-z0-9_]*)\s*=\s*"
    r"(?P<module>[A-Za-z_][A-Za-z0-9_.]*):(?P<function>[A-Za-z_][A-Za-z0-9_]*)\s*$"
)


class GraphError(ValueError):
    """The graph declaration or the executables list is malformed; names file and field."""


def _world_name(value: Any) -> Any:
    """``university`` for ``university``, ``worlds/university.sdf`` or an absolute SDF path."""
    return Path(value).stem if isinstance(value, str) and value.endswith(".sdf") else value


@dataclass(frozen=True)
class Agreement:
    """Parameters of two nodes (by executable) that must hold the same value."""

    first: tuple[str, str]  # (executable, parameter)
    second: tuple[str, str]
    why: str
    normalise: Callable[[Any], Any] = lambda value: value  # applied to both before comparing


AGREEMENTS = (
    Agreement(
        ("kiosk", "code_length"),
        ("locker", "code_digits"),
        "the kiosk takes codes of the length the locker issues",
    ),
    Agreement(
        ("map_server", "site"),
        ("sim", "world"),
        "the prior map must be of the world the simulator runs",
        normalise=_world_name,
    ),
    Agreement(
        ("localizer", "site"),
        ("map_server", "site"),
        "the localiser matches against the map the map server serves",
    ),
)


@dataclass(frozen=True)
class Executable:
    """One line of ``executables.txt``: a node executable or a command-line tool."""

    kind: str  # "node" (installed to lib/xiaomanlv) or "cli" (installed to bin)
    name: str
    module: str
    function: str


@dataclass(frozen=True)
class NodeSpec:
    """One node of a profile, with every path resolved against the package's config dir."""

    name: str
    executable: str
    namespace: str
    parameters: tuple[Path, ...]
    remappings: tuple[tuple[str, str], ...]
    on_exit: str
    max_restarts: int  # restarts allowed within any restart_window
    use_sim_time: bool
    restart_window: float = RESTART_WINDOW  # [s]
    critical: bool = True  # its loss for good (shutdown, or budget used up) stops the graph
    retry_after: float = RETRY_AFTER  # [s] non-critical, budget used up: retried after; 0 never

    def ros_args(self) -> list[str]:
        """The ``--ros-args`` tail that ``ros2 run`` would pass for this node."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for path in self.parameters:
            args += ["--params-file", str(path)]
        args += ["-p", f"use_sim_time:={'true' if self.use_sim_time else 'false'}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args

    def launch_ros_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``launch_ros.actions.Node`` (used by ``launch/*.launch.py``)."""
        return {
            "package": PACKAGE,
            "executable": self.executable,
            "name": self.name,
            "namespace": self.namespace,
            "parameters": [str(p) for p in self.parameters] + [{"use_sim_time": self.use_sim_time}],
            "remappings": list(self.remappings),
            "respawn": self.on_exit == "restart",
            "output": "screen",
        }


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    nodes: tuple[NodeSpec, ...] = field(default_factory=tuple)

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        known = ", ".join(n.name for n in self.nodes)
        raise GraphError(f"profile '{self.name}' has no node '{name}' (it has: {known})")


def read_executables(path: Path) -> dict[str, Executable]:
    """Parse ``executables.txt``: ``<node|cli> <name> = <module>:<function>`` per line."""
    table: dict[str, Executable] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise GraphError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise GraphError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _EXECUTABLE_LINE.match(line)
        if match is None:
            raise GraphError(
                f"{path}:{number}: expected '<node|cli> <name> = <module>:<function>', got {raw!r}"
            )
        exe = Executable(**match.groupdict())
        if exe.name in table:
            raise GraphError(f"{path}:{number}: executable '{exe.name}' is listed twice")
        table[exe.name] = exe
    return table


def load_profile(
    graph_file: Path,
    profile: str,
    *,
    executables: Mapping[str, Executable] | None = None,
) -> Profile:
    """Read ``profile`` from ``graph_file``; parameter files resolve in the file's folder.

    Raises:
        GraphError: unknown profile or node, a missing parameter file, an executable not in
            ``executables``, or a malformed field; the message names file and field.
    """
    doc = _read_yaml(graph_file)
    nodes = _mapping(doc.get("nodes"), f"{graph_file}: nodes")
    profiles = _mapping(doc.get("profiles"), f"{graph_file}: profiles")
    if profile not in profiles:
        raise GraphError(
            f"{graph_file}: no profile '{profile}' (declared: {', '.join(sorted(profiles))})"
        )
    where = f"{graph_file}: profiles.{profile}"
    body = _mapping(profiles[profile], where)
    use_sim_time = body.get("use_sim_time", False)
    if not isinstance(use_sim_time, bool):
        raise GraphError(f"{where}.use_sim_time: expected true or false, got {use_sim_time!r}")
    overrides = _mapping(body.get("parameters", {}), f"{where}.parameters")
    specs = []
    names = _string_list(body.get("nodes"), f"{where}.nodes")
    for name in names:
        if name not in nodes:
            raise GraphError(f"{where}.nodes: '{name}' is not declared under nodes")
        if names.count(name) > 1:
            raise GraphError(f"{where}.nodes: '{name}' is listed more than once")
        spec = _node_spec(graph_file, name, nodes[name], use_sim_time, executables)
        extra_where = f"{where}.parameters.{name}"
        extra = _parameter_files(graph_file, overrides.get(name, []), extra_where)
        specs.append(dataclasses.replace(spec, parameters=(*spec.parameters, *extra)))
    for name in overrides:
        if name not in {s.name for s in specs}:
            raise GraphError(f"{where}.parameters: '{name}' is not a node of this profile")
    check_agreements(specs)
    description = str(body.get("description", ""))
    return Profile(name=profile, description=description, nodes=tuple(specs))


def node_parameters(spec: NodeSpec) -> dict[str, tuple[Any, Path]]:
    """What ``spec``'s parameter files set for it: name -> (value, the file that set it);
    nested mappings give dotted names, as ROS reads them.

    Files apply in order (a later one wins), as ``--params-file`` does; of each file the
    sections for every node (``/**``) and for this node (by name or fully qualified) count.

    Raises:
        GraphError: a file that is not a ROS parameter file, naming it.
    """
    qualified = f"{spec.namespace}/{spec.name}"  # "/<name>" or "/<namespace>/<name>"
    sections = {"/**", spec.name, qualified, qualified.lstrip("/")}
    values: dict[str, tuple[Any, Path]] = {}
    for path in spec.parameters:
        doc = _read_yaml(path)
        for key, section in doc.items():
            if key not in sections:
                continue
            body = _mapping(section, f"{path}: {key}")
            params = _mapping(body.get("ros__parameters", {}), f"{path}: {key}.ros__parameters")
            values.update({name: (value, path) for name, value in _flat(params).items()})
    return values


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter mappings as ROS reads them: ``integrity: {no_fit_time: 0.5}`` is the
    parameter ``integrity.no_fit_time``."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def check_agreements(nodes: list[NodeSpec] | tuple[NodeSpec, ...]) -> None:
    """Check :data:`AGREEMENTS` among ``nodes`` (those whose nodes both run).

    Raises:
        GraphError: a value stated for one node only, or two that differ; the message names
            both files and both fields.
    """
    for agreement in AGREEMENTS:
        sides = []
        for executable, parameter in (agreement.first, agreement.second):
            sides += [(s, parameter) for s in nodes if s.executable == executable][:1]
        if len(sides) < 2:
            continue
        found = [node_parameters(spec).get(name) for spec, name in sides]
        where = [
            f"{got[1] if got else _files_text(spec)}: {spec.name}.{name}"
            for (spec, name), got in zip(sides, found, strict=True)
        ]
        missing = [w for w, got in zip(where, found, strict=True) if got is None]
        if missing:
            raise GraphError(
                f"{' and '.join(missing)}: not stated; {where[0]} and {where[1]} must agree "
                f"({agreement.why}), so both files state it"
            )
        first, second = (got[0] for got in found if got is not None)
        if agreement.normalise(first) != agreement.normalise(second):
            raise GraphError(
                f"{where[0]} = {first!r} and {where[1]} = {second!r} disagree ({agreement.why})"
            )


def _files_text(spec: NodeSpec) -> str:
    return ", ".join(str(p) for p in spec.parameters) or f"(no parameter file of {spec.name})"


def profile_names(graph_file: Path) -> list[str]:
    doc = _read_yaml(graph_file)
    return sorted(_mapping(doc.get("profiles"), f"{graph_file}: profiles"))


def _node_spec(
    graph_file: Path,
    name: str,
    raw: Any,
    use_sim_time: bool,
    executables: Mapping[str, Executable] | None,
) -> NodeSpec:
    where = f"{graph_file}: nodes.{name}"
    if not _NAME.match(name):
        raise GraphError(f"{where}: node names are letters, digits and '_', got {name!r}")
    body = _mapping(raw, where)
    unknown = set(body) - {
        "executable",
        "namespace",
        "parameters",
        "remappings",
        "on_exit",
        "max_restarts",
        "restart_window",
        "critical",
        "retry_after",
    }
    if unknown:
        raise GraphError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    executable = body.get("executable")
    if not isinstance(executable, str) or not executable:
        raise GraphError(f"{where}.executable: expected an executable name, got {executable!r}")
    if executables is not None:
        exe = executables.get(executable)
        if exe is None or exe.kind != "node":
            raise GraphError(f"{where}.executable: '{executable}' is not a node in executables.txt")
    namespace = body.get("namespace", "")
    if not isinstance(namespace, str):
        raise GraphError(f"{where}.namespace: expected a string, got {namespace!r}")
    if namespace and not namespace.startswith("/"):
        namespace = "/" + namespace  # as launch_ros does: rcl wants it fully qualified
    parameters = _parameter_files(graph_file, body.get("parameters", []), f"{where}.parameters")
    remap = _mapping(body.get("remappings", {}), f"{where}.remappings")
    remappings = tuple((str(k), str(v)) for k, v in remap.items())
    on_exit = body.get("on_exit", "shutdown")
    if on_exit not in ON_EXIT:
        raise GraphError(f"{where}.on_exit: {on_exit!r} is not one of {', '.join(ON_EXIT)}")
    max_restarts = body.get("max_restarts", MAX_RESTARTS)
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise GraphError(f"{where}.max_restarts: expected an integer >= 0, got {max_restarts!r}")
    restart_window = _seconds(body.get("restart_window", RESTART_WINDOW), f"{where}.restart_window")
    if restart_window <= 0.0:
        raise GraphError(f"{where}.restart_window: expected seconds > 0, got {restart_window!r}")
    retry_after = _seconds(body.get("retry_after", RETRY_AFTER), f"{where}.retry_after")
    critical = body.get("critical", True)
    if not isinstance(critical, bool):
        raise GraphError(f"{where}.critical: expected true or false, got {critical!r}")
    return NodeSpec(
        name=name,
        executable=executable,
        namespace=namespace,
        parameters=parameters,
        remappings=remappings,
        on_exit=on_exit,
        max_restarts=max_restarts,
        use_sim_time=use_sim_time,
        restart_window=restart_window,
        critical=critical,
        retry_after=retry_after,
    )


def _seconds(value: Any, where: str) -> float:
    """A duration field: a finite number of seconds in [0, MAX_SECONDS]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 <= value <= MAX_SECONDS:
        raise GraphError(f"{where}: expected seconds in [0, {MAX_SECONDS:g}], got {value!r}")
    return float(value)


def _parameter_files(graph_file: Path, value: Any, where: str) -> tuple[Path, ...]:
    paths = []
    for rel in _string_list(value, where):
        path = (graph_file.parent / rel).resolve()
        if not path.is_file():
            raise GraphError(f"{where}: file '{rel}' not found next to {graph_file}")
        paths.append(path)
    return tuple(paths)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise GraphError(f"cannot read graph declaration {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise GraphError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except yaml.YAMLError as err:
        raise GraphError(f"{path}: not valid YAML: {err}") from None
    return _mapping(doc, str(path))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GraphError(f"{where}: expected a list of strings, got {value!r}")
    return value
