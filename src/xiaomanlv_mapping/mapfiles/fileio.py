"""Reading and writing a map's files: errors that name the file, atomic writes, YAML text.

Every read failure (missing, unreadable, not UTF-8, not YAML) is a
:class:`~xiaomanlv_mapping.model.MapFormatError` naming the path. :func:`write_file` writes a
temporary file beside the target, fsyncs and renames it (POSIX ``rename`` is atomic), so a
reader never sees half a file. :func:`yaml_text` writes the commented YAML of the map files,
with short mappings and lists on one line where that reads better by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from xiaomanlv_core.fields import Fields
from xiaomanlv_core.yamlfile import YamlFileError, read_yaml
from xiaomanlv_mapping.model import MapFormatError


def map_fields(label: str) -> Fields:
    """Typed access to a map file's parsed content; errors are MapFormatErrors naming ``label``."""
    return Fields(label, MapFormatError)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MapFormatError(f"{path}: missing") from None
    except OSError as err:
        raise MapFormatError(f"{path}: cannot read: {err.strerror or err}") from None


def read_text(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as err:
        raise MapFormatError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_yaml(path: Path) -> Any:
    """The data of map file ``path`` (read with the limits of `xiaomanlv_core.yamlfile`)."""
    try:
        return read_yaml(path)
    except FileNotFoundError:
        raise MapFormatError(f"{path}: missing") from None
    except OSError as err:
        raise MapFormatError(f"{path}: cannot read: {err.strerror or err}") from None
    except YamlFileError as err:
        raise MapFormatError(f"{path}: {err}") from None


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def yaml_text(data: Mapping[str, Any], header: str, *, flow_leaves: bool = False) -> bytes:
    """YAML with a comment header; ``flow_leaves`` writes innermost mappings and lists on one
    line (``{name: a, x: 1.0}``), else only lists of scalars are."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(
        _flow_lists(dict(data), flow_leaves),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return (comment + body).encode("utf-8")


class _Flow(dict[str, Any]):
    """A mapping YAML writes in flow style."""


class _FlowList(list[Any]):
    """A list YAML writes in flow style."""


def _flow_lists(value: Any, flow_leaves: bool) -> Any:
    if isinstance(value, dict):
        items = {k: _flow_lists(v, flow_leaves) for k, v in value.items()}
        leaf = all(not isinstance(v, dict | list) for v in value.values())
        return _Flow(items) if flow_leaves and leaf and items else items
    if isinstance(value, list):
        items_list = [_flow_lists(v, flow_leaves) for v in value]
        leaf = all(not isinstance(v, dict | list) for v in value)
        return _FlowList(items_list) if leaf else items_list
    return value


def _represent_flow(dumper: yaml.SafeDumper, data: Any) -> yaml.Node:
    if isinstance(data, dict):
        return dumper.represent_mapping("tag:yaml.org,2002:map", dict(data), flow_style=True)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes _Flow and _FlowList in flow style."""


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowList, _represent_flow)
