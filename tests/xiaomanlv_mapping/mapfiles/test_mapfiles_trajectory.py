"""trajectory.tum: a bad row is named by file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xiaomanlv_mapping.mapfiles import read_trajectory
from xiaomanlv_mapping.model import MapFormatError


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("100.0 1 2 3 0 0 0", "line 3: expected 8 finite numbers"),
        ("100.0 1 2 nan 0 0 0 1", "line 3: expected 8 finite numbers"),
        ("100.0 1 2 3 0 0 0 2", "line 3: qx qy qz qw is not a unit quaternion"),
        ("50.0 1 2 3 0 0 0 1", "line 3: stamp 50.0 does not increase"),
        ("100.0 1 2 three 0 0 0 1", "line 3: expected 8 numbers"),
    ],
)
def test_a_bad_trajectory_row_is_named_by_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "trajectory.tum"
    path.write_text(f"# header\n99.0 0 0 0 0 0 0 1\n{line}\n")
    with pytest.raises(MapFormatError, match=re.escape(f"{path}: {message}")):
        read_trajectory(path)
