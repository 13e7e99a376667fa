"""Recipient notifications: a sender Protocol, a plugin registry, and the JSON-lines sender.

The notification is the only place a plaintext pickup code exists: the locker generates the
code, stores only its keyed tag, hands the code to the sender and forgets it. The default
sender (``jsonl``) appends one JSON object per line to ``notify_path`` (mode 0600, fsync'ed)
and stands for the recipient's phone: the demo and the tests read their codes there. A
deployment registers an SMS or push sender under another name in :data:`SENDERS`.

Delivery is at-least-once: the locker commits "code issued, not yet notified", sends, then
commits "notified". A crash between the two sends a *new* code on restart (``generation`` + 1,
``reason`` "reissued"); only the newest generation opens the door.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from xiaomanlv_core.config import ConfigError
from xiaomanlv_locker.codes import make_private_dir
from xiaomanlv_locker.config import LockerConfig


@dataclass(frozen=True)
class Notification:
    recipient: str
    parcel_id: str
    stop: str
    code: str
    expires: float  # [s] wall time (Unix epoch)
    generation: int  # 1 for the first code; a higher one replaces it
    reason: str  # "loaded" | "reissued"


class NotificationSender(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver (or durably queue) the notification; raise on failure."""


class JsonLinesSender:
    """Appends each notification as a JSON line to a file (0600) and fsyncs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        make_private_dir(path.parent)

    def send(self, notification: Notification) -> None:
        line = (json.dumps(asdict(notification), sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_notifications(path: Path) -> list[Notification]:
    """Every notification in a JSON-lines file (a torn last line is skipped)."""
    if not path.exists():
        return []
    out: list[Notification] = []
    for line in path.read_text().splitlines():
        try:
            out.append(Notification(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return out


def latest_codes(path: Path) -> dict[str, str]:
    """parcel id -> the code of its newest notification (what a recipient would type)."""
    best: dict[str, Notification] = {}
    for n in read_notifications(path):
        if n.parcel_id not in best or n.generation >= best[n.parcel_id].generation:
            best[n.parcel_id] = n
    return {pid: n.code for pid, n in best.items()}


SENDERS: dict[str, Callable[[LockerConfig], NotificationSender]] = {
    "jsonl": lambda config: JsonLinesSender(config.path("notify")),
}


def make_sender(config: LockerConfig) -> NotificationSender:
    """The sender named by ``config.notifier``.

    Raises:
        ConfigError: naming the parameter and the known senders.
    """
    factory = SENDERS.get(config.notifier)
    if factory is None:
        raise ConfigError(
            f"parameter 'notifier' = {config.notifier!r} is not a known sender; "
            f"known: {', '.join(sorted(SENDERS))}"
        )
    return factory(config)
