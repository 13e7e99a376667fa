"""The layer contracts in pyproject.toml ([tool.importlinter]) can fail: a deliberate violation,
planted in a copy of src/, breaks the contract it should, and names the offending import."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

VIOLATIONS = {
    # core imports nothing of ours
    "layers": ("xiaomanlv_core/planted.py", "import xiaomanlv_sim.world\n"),
    # nav, mapping and locker never import the simulator (siblings are independent)
    "layers-sibling": ("xiaomanlv_locker/planted.py", "from xiaomanlv_sim import scenario\n"),
    # subsystems of the runtime stack share only core and published interfaces
    "subsystems": ("xiaomanlv_nav/planted_subsystem/__init__.py", "import xiaomanlv_nav.health\n"),
}


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        ["lint-imports", "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_planted_violation_breaks_its_contract(repo: Path, tmp_path: Path, case: str) -> None:
    shutil.copy(repo / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        repo / "src",
        tmp_path / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.nbi", "*.nbc"),
    )
    relative, line = VIOLATIONS[case]
    planted = tmp_path / "src" / relative
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(f'"""A deliberate violation of the {case} contract."""\n\n{line}')
    proc = _lint_imports(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Broken contracts" in out
    module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert module in out, out
