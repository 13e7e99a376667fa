"""Append-only, tamper-evident audit log in SQLite.

Two defences (the pattern of Schneier & Kelsey, "Secure audit logs to support computer
forensics", 1999, reduced to one key):
- SQLite triggers abort every UPDATE and DELETE on the ``audit`` table, so the locker's own
  code cannot rewrite history by mistake;
- each row carries ``mac = HMAC-SHA256(device_secret, prev_mac || row)``, a hash chain keyed
  with the device secret: whoever edits the file directly (dropping the triggers) cannot
  recompute the chain without the secret, and :func:`verify_chain` names the first bad row.
Rows never carry a code or a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from dataclasses import dataclass

GENESIS = b"\x00" * 32

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    stamp REAL NOT NULL,
    kind TEXT NOT NULL,
    compartment INTEGER NOT NULL,
    parcel_id TEXT NOT NULL,
    stop TEXT NOT NULL,
    detail TEXT NOT NULL,
    mac BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END;
"""


@dataclass(frozen=True)
class AuditEvent:
    seq: int  # gap-free from 1
    stamp: float  # [s] wall time
    kind: str
    compartment: int  # 0 when not about one compartment
    parcel_id: str
    stop: str
    detail: str


def _row_mac(secret: bytes, prev: bytes, event: AuditEvent) -> bytes:
    body = json.dumps(
        [
            event.seq,
            repr(event.stamp),
            event.kind,
            event.compartment,
            event.parcel_id,
            event.stop,
            event.detail,
        ],
        separators=(",", ":"),
    ).encode()
    return hmac.new(secret, prev + body, hashlib.sha256).digest()


def append(
    conn: sqlite3.Connection,
    secret: bytes,
    stamp: float,
    kind: str,
    compartment: int = 0,
    parcel_id: str = "",
    stop: str = "",
    detail: str = "",
) -> AuditEvent:
    """Append one row inside the caller's transaction; returns it with its sequence number."""
    last = conn.execute("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(last[0]) + 1, bytes(last[1])) if last else (1, GENESIS)
    event = AuditEvent(seq, stamp, kind, compartment, parcel_id, stop, detail)
    conn.execute(
        "INSERT INTO audit (seq, stamp, kind, compartment, parcel_id, stop, detail, mac) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, stamp, kind, compartment, parcel_id, stop, detail, _row_mac(secret, prev, event)),
    )
    return event


def events_since(conn: sqlite3.Connection, after: int, limit: int = -1) -> list[AuditEvent]:
    """Rows with ``seq > after`` in order (at most ``limit``; -1 = all)."""
    rows = conn.execute(
        "SELECT seq, stamp, kind, compartment, parcel_id, stop, detail FROM audit "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    return [
        AuditEvent(int(r[0]), float(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6]))
        for r in rows
    ]


def verify_chain(conn: sqlite3.Connection, secret: bytes) -> int | None:
    """Recompute the chain; None if intact, else the first ``seq`` that fails (or is missing)."""
    prev = GENESIS
    expected = 1
    for row in conn.execute(
        "SELECT seq, stamp, kind, compartment, parcel_id, stop, detail, mac FROM audit ORDER BY seq"
    ):
        event = AuditEvent(int(row[0]), float(row[1]), row[2], int(row[3]), row[4], row[5], row[6])
        if event.seq != expected:
            return expected
        mac = bytes(row[7])
        if not hmac.compare_digest(mac, _row_mac(secret, prev, event)):
            return event.seq
        prev = mac
        expected += 1
    return None
