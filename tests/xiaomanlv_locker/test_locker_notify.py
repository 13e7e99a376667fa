"""Notification sender plugins and the JSON-lines file that stands for the recipient's phone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xiaomanlv_core.config import ConfigError
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.notify import (
    JsonLinesSender,
    Notification,
    latest_codes,
    make_sender,
    read_notifications,
)


def note(gen: int, code: str) -> Notification:
    return Notification("r@x", "p1", "A", code, 5.0, gen, "loaded" if gen == 1 else "reissued")


def test_jsonl_sender_appends_private_lines(tmp_path: Path) -> None:
    sender = JsonLinesSender(tmp_path / "n.jsonl")
    sender.send(note(1, "11111111"))
    sender.send(note(2, "22222222"))
    assert os.stat(tmp_path / "n.jsonl").st_mode & 0o777 == 0o600
    assert read_notifications(tmp_path / "n.jsonl") == [note(1, "11111111"), note(2, "22222222")]
    assert latest_codes(tmp_path / "n.jsonl") == {"p1": "22222222"}


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    JsonLinesSender(path).send(note(1, "11111111"))
    with path.open("a") as handle:
        handle.write('{"recipient": "r@')
    assert len(read_notifications(path)) == 1


def test_registry_names_unknown_sender(tmp_path: Path) -> None:
    assert isinstance(make_sender(LockerConfig(data_dir=str(tmp_path))), JsonLinesSender)
    with pytest.raises(ConfigError, match=r"'notifier' = 'sms'.*known: jsonl"):
        make_sender(LockerConfig(data_dir=str(tmp_path), notifier="sms"))
