"""The package as a whole: layout, one list of executables, launch files, pure cores."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xiaomanlv_bringup.graph import load_profile, profile_names, read_executables

PACKAGES = (
    "xiaomanlv_core",
    "xiaomanlv_nav",
    "xiaomanlv_mapping",
    "xiaomanlv_locker",
    "xiaomanlv_sim",
    "xiaomanlv_bringup",
)
ADAPTER_DIRS = {"nodes", "ros"}  # the only places allowed to import rclpy


def core_modules(repo: Path) -> list[str]:
    modules = []
    for package in PACKAGES:
        for path in sorted((repo / "src" / package).rglob("*.py")):
            rel = path.relative_to(repo / "src").with_suffix("")
            if ADAPTER_DIRS & set(rel.parts[1:-1]):
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            modules.append(".".join(parts))
    return modules


def test_design_card_layout_exists(repo: Path) -> None:
    for name in ("package.xml", "setup.py", "CMakeLists.txt", "executables.txt", "README.md"):
        assert (repo / name).is_file(), name
    for name in (
        "msg",
        "srv",
        "action",
        "launch",
        "config",
        "maps",
        "worlds",
        "models",
        "tests",
        "bench",
        *(f"src/{p}" for p in PACKAGES),
    ):
        assert (repo / name).is_dir(), name
    cmake = (repo / "CMakeLists.txt").read_text()
    assert "foreach(pkg " + " ".join(PACKAGES) + ")" in cmake
    assert "install(DIRECTORY launch config maps worlds models" in cmake


def test_core_modules_never_import_rclpy(repo: Path) -> None:
    modules = core_modules(repo)
    assert "xiaomanlv_nav.health.monitor" in modules and "xiaomanlv_bringup.supervisor" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'rclpy' in sys.modules:\n"
        "        print(name); sys.exit(1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, f"core module imports rclpy: {proc.stdout} {proc.stderr}"


def test_the_check_would_catch_an_adapter(repo: Path) -> None:
    """The rclpy check above can fail: an adapter module does pull rclpy in."""
    script = "import sys, xiaomanlv_core.ros.params; print('rclpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_every_listed_executable_is_installed_and_importable(repo: Path) -> None:
    from xiaomanlv_core.paths import package_prefix

    executables = read_executables(repo / "executables.txt")
    assert {e.kind for e in executables.values()} == {"node", "cli"}
    prefix = package_prefix()
    for exe in executables.values():
        where = prefix / ("lib/xiaomanlv" if exe.kind == "node" else "bin") / exe.name
        assert where.is_file() and os.access(where, os.X_OK), where
        assert f"from {exe.module} import {exe.function}" in where.read_text()
        source = repo / "src" / (exe.module.replace(".", "/") + ".py")
        tree = ast.parse(source.read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert exe.function in functions, f"{exe.module}:{exe.function}"


def test_setup_py_builds_a_wheel_with_the_same_console_scripts(repo: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("xiaomanlv-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(
            next(n for n in names if n.endswith("entry_points.txt"))
        ).decode()
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names
    scripts = {
        line.split("=")[0].strip(): line.split("=")[1].strip()
        for line in entry_points.splitlines()
        if "=" in line
    }
    listed = {
        e.name: f"{e.module}:{e.function}"
        for e in read_executables(repo / "executables.txt").values()
    }
    assert scripts == listed


def test_graph_refers_only_to_listed_executables_and_existing_files(repo: Path) -> None:
    executables = read_executables(repo / "executables.txt")
    graph = repo / "config" / "graph.yaml"
    assert set(profile_names(graph)) >= {"sim", "robot"}
    for name in profile_names(graph):
        profile = load_profile(graph, name, executables=executables)
        assert profile.nodes
        for node in profile.nodes:
            assert all(p.is_file() for p in node.parameters)


def _launch_files(repo: Path) -> list[Path]:
    files = sorted((repo / "launch").glob("*.launch.py"))
    assert files, "launch/ has no launch files"
    return files


@pytest.mark.parametrize("name", ["sim", "robot"])
def test_each_profile_has_its_launch_file(repo: Path, name: str) -> None:
    assert (repo / "launch" / f"{name}.launch.py").is_file()


def test_launch_files_refer_only_to_what_exists(repo: Path) -> None:
    """Parse each launch file (launch itself is not installable here) and check its references."""
    profiles = set(profile_names(repo / "config" / "graph.yaml"))
    executables = read_executables(repo / "executables.txt")
    for path in _launch_files(repo):
        tree = ast.parse(path.read_text(), filename=str(path))
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in functions, path
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("xiaomanlv_")
            ):
                module = repo / "src" / (node.module.replace(".", "/") + ".py")
                assert module.is_file(), f"{path.name}: imports missing {node.module}"
                defined = {
                    n.name
                    for n in ast.parse(module.read_text()).body
                    if isinstance(n, ast.FunctionDef | ast.ClassDef)
                }
                for alias in node.names:
                    assert alias.name in defined, f"{path.name}: {node.module}.{alias.name}"
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "generate_for_profile"
            ):
                (arg,) = node.args
                assert isinstance(arg, ast.Constant) and arg.value in profiles, path.name
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Node":
                # Nodes of other packages (ros_gz_sim create, ros_gz_bridge) are not ours to list.
                constants = {
                    kw.arg: kw.value.value
                    for kw in node.keywords
                    if isinstance(kw.value, ast.Constant)
                }
                if (
                    constants.get("package", "xiaomanlv") == "xiaomanlv"
                    and "executable" in constants
                ):
                    assert constants["executable"] in executables, path.name
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.endswith((".yaml", ".sdf", ".launch.py", ".urdf", ".xml")):
                    candidates = [repo / text, repo / "config" / text, repo / "launch" / text]
                    assert any(c.is_file() for c in candidates), f"{path.name}: {text}"
