"""Hostile scenario and site files get the one-line error other bad files get (issue 11).

Through `xiaomanlv sim scenario validate` as a user meets them, and through load_site for the
site sidecar: not UTF-8, too deep, a YAML bomb, too large, control characters.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xiaomanlv_core.site import SiteError, load_site
from xiaomanlv_core.yamlfile import MAX_BYTES, MAX_DEPTH, YamlFileError, read_yaml
from xiaomanlv_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "scenarios" / "university_rain.yaml").read_bytes()

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)  # 10^9 values once expanded


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


HOSTILE = {
    "latin1.yaml": (GOOD.replace(b"name: ", b"name: caf\xe9 ", 1), "not UTF-8 text (byte "),
    "deep.yaml": (b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested more than 32"),
    "deep_but_parsable.yaml": (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "nested more than 32"),
    "bomb.yaml": (BOMB.encode(), "more than 200000 values once its aliases are expanded"),
    "nul.yaml": (
        GOOD.replace(b"name: ", b"name: a\x00b", 1),
        "line 3: not valid YAML (character #x0000 is not allowed)",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_scenario_validate_reports_a_hostile_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    data, reason = HOSTILE[name]
    path = _write(tmp_path, name, data)
    good = REPO / "scenarios" / "university_rain.yaml"
    assert main(["sim", "scenario", "validate", str(good), str(path)]) == 2
    captured = capsys.readouterr()
    assert "ok " in captured.out  # the good file is still checked
    err = captured.err.strip().splitlines()  # the file's line, then the count
    assert err[1:] == ["xiaomanlv sim: 1 of 2 scenarios invalid"], captured.err
    assert err[0].startswith(f"xiaomanlv sim: {path}: ")
    assert reason in err[0]


def test_a_file_larger_than_any_scenario_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    assert main(["sim", "scenario", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (
        f"xiaomanlv sim: {path}: {MAX_BYTES + 1} bytes, more than the {MAX_BYTES} "
        "a YAML file here may have"
    )


@pytest.mark.parametrize("name", ["latin1.yaml", "deep.yaml", "bomb.yaml"])
def test_a_hostile_site_sidecar_gets_a_site_error_naming_it(tmp_path: Path, name: str) -> None:
    data, reason = HOSTILE[name]
    path = _write(tmp_path, "odd.site.yaml", data)
    with pytest.raises(SiteError, match=rf"^odd\.site\.yaml: {re.escape(reason)}"):
        load_site(path)


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1  # the top-level mapping is one level
    text = "a: " + "[" * depth + "1" + "]" * depth + "\n"
    data = read_yaml(_write(tmp_path, "nested.yaml", text.encode()))
    inner = data["a"]
    for _ in range(depth - 1):
        inner = inner[0]
    assert inner == [1]
    with pytest.raises(YamlFileError, match="nested more than 32 levels deep"):
        read_yaml(_write(tmp_path, "deeper.yaml", f"a: [{text[3:-1]}]\n".encode()))


def test_aliases_within_the_budget_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, "anchors.yaml", b"base: &b {x: 1}\none: *b\ntwo: *b\n")
    assert read_yaml(path) == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}
    assert read_yaml(_write(tmp_path, "empty.yaml", b"")) is None
    with pytest.raises(YamlFileError, match=r"^line 1: not valid YAML \(character #x0007"):
        read_yaml(_write(tmp_path, "tab.yaml", b"a: [\x07]\n"))
