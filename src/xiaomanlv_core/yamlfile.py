"""Read a hand-written YAML file (a scenario, a site sidecar) without trusting its bytes.

``yaml.safe_load`` builds no arbitrary objects, but on its own it still lets through what turns
a bad file into a traceback or a hang instead of an error naming the file: bytes that are not
UTF-8 (``UnicodeDecodeError``), nesting deep enough to exhaust the composer's recursion
(``RecursionError``), a "billion laughs" document whose aliases expand to more values than any
scenario has (each alias is shared, not copied, but everything that walks the result visits it
again), and a file far larger than any scenario. :func:`read_yaml` checks each of these
before building the data and raises :class:`YamlFileError` with the reason; the callers turn
it into their own domain error (ScenarioError, SiteError), so every bad file reads alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 4 * 1024 * 1024  # [bytes] a 100-pedestrian scenario with every fault is ~10 kB
MAX_DEPTH = 32  # levels of nested mappings/sequences (a scenario uses 4)
MAX_VALUES = 200_000  # scalars, mappings and sequences, every alias expanded


class YamlFileError(ValueError):
    """A YAML file that cannot be read as data; the message says why, not where."""


def read_yaml(path: Path) -> Any:
    """The data in ``path``: UTF-8 YAML, at most MAX_BYTES, MAX_DEPTH deep, MAX_VALUES values.

    Raises:
        OSError: the file cannot be read (callers report ``strerror``).
        YamlFileError: not UTF-8, not YAML, too large, too deep or too many values.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YamlFileError(f"{size} bytes, more than the {MAX_BYTES} a YAML file here may have")
    raw = path.read_bytes()[: MAX_BYTES + 1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlFileError(f"not UTF-8 text (byte {err.start}: {err.reason})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise YamlFileError(f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, BEL, ...)
        code = err.character if isinstance(err.character, int) else ord(err.character)
        line = text.count("\n", 0, err.position) + 1
        raise YamlFileError(
            f"line {line}: not valid YAML (character #x{code:04x} is not allowed)"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise YamlFileError(f"{where}not valid YAML ({problem})") from None
    if node is None:
        return None
    _check_shape(node)
    return yaml.SafeLoader(text).get_single_data()


def _check_shape(root: yaml.Node) -> None:
    """Depth and expanded size of a composed document, walked without recursion."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    values = 0
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise YamlFileError(
                f"more than {MAX_VALUES} values once its aliases are expanded (a YAML bomb?)"
            )
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            continue
        if depth > MAX_DEPTH:  # the top-level collection is level 1
            raise YamlFileError(f"nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)
