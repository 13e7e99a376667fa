"""Fixtures for the locker core tests (the rig itself is in locker_rig.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from locker_rig import Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.locker.store.close()


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**overrides: Any) -> Rig:
        r = Rig(tmp_path / f"rig{len(made)}", **overrides)
        made.append(r)
        return r

    yield make
    for r in made:
        r.locker.store.close()
