"""Fixtures of the bag tests: a small drive written with BagWriter."""

from __future__ import annotations

from pathlib import Path

import pytest
from bag_rig import write_drive


@pytest.fixture
def drive_bag(tmp_path: Path) -> Path:
    return write_drive(tmp_path / "drive")
