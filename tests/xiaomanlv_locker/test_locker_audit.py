"""Audit log: append-only triggers and the keyed hash chain."""

from __future__ import annotations

import sqlite3

import pytest

from xiaomanlv_locker import audit


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.executescript(audit.SCHEMA)
    return c


def test_sequence_is_gap_free_and_chain_verifies(conn: sqlite3.Connection) -> None:
    for k in range(5):
        audit.append(conn, b"s" * 32, 10.0 + k, "state", k, f"p{k}", "A", "x")
    events = audit.events_since(conn, 2)
    assert [e.seq for e in events] == [3, 4, 5]
    assert events[0].parcel_id == "p2"
    assert audit.verify_chain(conn, b"s" * 32) is None
    assert audit.verify_chain(conn, b"t" * 32) == 1  # another key cannot vouch for the chain


def test_update_and_delete_are_refused(conn: sqlite3.Connection) -> None:
    audit.append(conn, b"s" * 32, 1.0, "loaded")
    with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE"):
        conn.execute("UPDATE audit SET detail = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE"):
        conn.execute("DELETE FROM audit")


def test_tampering_behind_the_triggers_is_detected(conn: sqlite3.Connection) -> None:
    key = b"s" * 32
    for k in range(4):
        audit.append(conn, key, float(k), "code_rejected", detail=f"attempt {k}")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET detail = 'nothing happened' WHERE seq = 3")
    assert audit.verify_chain(conn, key) == 3
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq = 2")
    assert audit.verify_chain(conn, key) == 2
