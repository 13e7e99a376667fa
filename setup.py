"""pip-installable Python packages of xiaomanlv (tools, tests, campaigns).

The ROS package itself is built by ament_cmake (CMakeLists.txt); this file keeps the four
Python packages installable with pip. Console scripts come from executables.txt, the same list
CMakeLists.txt installs from.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
LINE = re.compile(r"^(node|cli)\s+(\w+)\s*=\s*([\w.]+:\w+)\s*$")


def console_scripts() -> list[str]:
    scripts = []
    for raw in (HERE / "executables.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        match = LINE.match(line)
        if match:
            scripts.append(f"{match.group(2)} = {match.group(3)}")
        elif line:
            raise SystemExit(f"executables.txt: cannot parse {raw!r}")
    return scripts


setup(
    name="xiaomanlv",
    version="0.1.0",
    description="Navigation stack for campus last-mile delivery robots",
    license="Apache-2.0",
    python_requires=">=3.11",
    package_dir={"": "src"},
    packages=find_packages("src"),
    # The kiosk's web pages are data files next to its modules.
    package_data={"xiaomanlv_locker.kiosk": ["templates/*.html", "static/*"]},
    install_requires=["numpy>=2", "scipy>=1.11", "pyyaml>=6"],
    entry_points={"console_scripts": console_scripts()},
)
