"""Repoint the CMake exports of the ``ros-jazzy-*`` wheels at this environment.

The wheels were built in a manylinux container whose Python lived under
``/opt/python/cp311-cp311``; their CMake export files and ament index entries still name
that prefix, so ``find_package(std_msgs)`` in a package that generates interfaces fails with
"non-existent path /opt/python/cp311-cp311/include/python3.11". This rewrites those paths to
the running interpreter's include directory, NumPy's include directory and the venv prefix.

It also marks the venv as an ament prefix (empty ``local_setup.sh`` and ``.bash``: tools/env.sh
sets AMENT_PREFIX_PATH and CMAKE_PREFIX_PATH), so colcon does not warn that the prefix lacks one.

Idempotent: a second run finds nothing to rewrite. Run it after every ``pip install`` of ROS
wheels (``tools/setup.sh`` does).
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

BUILD_PREFIX = "/opt/python/cp311-cp311"


def replacements(prefix: Path) -> list[tuple[str, str]]:
    """Longest build-machine paths first, so a prefix never shadows a longer path."""
    import numpy

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        raise SystemExit(
            f"fix_ros_wheels: Python.h not found in {include}; install the Python headers "
            "(Debian: python3-dev) so rosidl can build the interface extension modules"
        )
    return [
        (f"{BUILD_PREFIX}/lib/{version}/site-packages/numpy/_core/include", numpy.get_include()),
        (f"{BUILD_PREFIX}/include/{version}", str(include)),
        (BUILD_PREFIX, str(prefix)),
    ]


def fix(prefix: Path) -> int:
    """Rewrite every text file under ``prefix/share`` that names the build prefix."""
    rules = replacements(prefix)
    changed = 0
    for path in (prefix / "share").rglob("*"):
        if not path.is_file() or path.suffix not in {"", ".cmake", ".txt"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if BUILD_PREFIX not in text:
            continue
        for old, new in rules:
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
        changed += 1
    return changed


def mark_prefix(prefix: Path) -> None:
    """colcon's install/setup.bash sources these for every prefix it chains; they set nothing."""
    for marker in (prefix / "local_setup.sh", prefix / "local_setup.bash"):
        marker.write_text(
            "# Written by tools/fix_ros_wheels.py: this venv is the ament prefix of the ROS 2\n"
            "# wheels. tools/env.sh sets AMENT_PREFIX_PATH and CMAKE_PREFIX_PATH for it.\n",
            encoding="utf-8",
        )


def main() -> None:
    prefix = Path(sys.prefix)
    changed = fix(prefix)
    mark_prefix(prefix)
    print(f"fix_ros_wheels: rewrote {changed} file(s) under {prefix / 'share'}")


if __name__ == "__main__":
    main()
