"""SQLite persistence of the locker: compartments, parcels, attempt counters, operators, audit.

WAL journal with ``synchronous=FULL``: a transaction that returned from COMMIT survives a
process kill and a power cut (SQLite's documented guarantee for WAL+FULL). The facade commits
every state change, and the intent of every actuation, *before* the hardware acts
(write-ahead intent), so a restart finds either the old state, or the intent to reconcile
against the sensors. Integrity is also enforced by the schema: a parcel id is a primary key,
and a partial unique index allows at most one loaded parcel per compartment.

Every change of a compartment's state writes an audit row in the same transaction, so the
audit log replays to the stored state (tests check this).

Checkpoints (copying committed WAL pages into the database file, then an fsync of it) run by
default inside the commit that pushes the WAL past 1000 pages, so an unlucky commit pays two
more fsyncs. The locker turns that off (:meth:`Store.manual_checkpoints`) and checkpoints from
its tick on a second connection (:meth:`Store.checkpoint`, PASSIVE: it never waits for the
writer), outside its lock, as the SQLite WAL documentation suggests for latency-sensitive
writers. Durability is unchanged: every commit still fsyncs the WAL.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from xiaomanlv_locker import audit
from xiaomanlv_locker.audit import AuditEvent
from xiaomanlv_locker.codes import Attempts, CredentialHash, make_private_dir
from xiaomanlv_locker.machine import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS compartments (
    number INTEGER PRIMARY KEY,
    size TEXT NOT NULL CHECK (size IN ('small', 'medium', 'large')),
    state TEXT NOT NULL,
    parcel_id TEXT NOT NULL DEFAULT '',
    intent TEXT NOT NULL DEFAULT '' CHECK (intent IN ('', 'unlock', 'lock')),
    prev_state TEXT NOT NULL DEFAULT '',
    opened_by TEXT NOT NULL DEFAULT '',
    fault TEXT NOT NULL DEFAULT '',
    door_open_since REAL,
    retries INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS parcels (
    parcel_id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    stop TEXT NOT NULL,
    size TEXT NOT NULL,
    compartment INTEGER NOT NULL REFERENCES compartments(number),
    status TEXT NOT NULL CHECK (status IN ('loaded', 'delivered', 'returned')),
    code_tag BLOB NOT NULL,
    generation INTEGER NOT NULL,
    expires REAL NOT NULL,
    code_used INTEGER NOT NULL DEFAULT 0,
    notified INTEGER NOT NULL DEFAULT 0,
    loading INTEGER NOT NULL DEFAULT 1,
    loaded_at REAL NOT NULL,
    finished_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_loaded_parcel_per_compartment
    ON parcels(compartment) WHERE status = 'loaded';
CREATE TABLE IF NOT EXISTS attempts (
    scope TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    consecutive INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    permanent INTEGER NOT NULL,
    last_failure REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS operators (
    operator_id TEXT PRIMARY KEY,
    salt BLOB NOT NULL, digest BLOB NOT NULL,
    n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL
);
"""


log = logging.getLogger(__name__)

FILE_MODE = 0o600  # the database and its -wal / -shm files: recipients, hashes, audit log
SIDE_FILES = ("-wal", "-shm")  # SQLite creates them with the database file's mode


class StoreError(RuntimeError):
    """The database does not match the configuration, or an integrity rule was broken."""


@dataclass(frozen=True)
class Compartment:
    number: int
    size: str
    state: State
    parcel_id: str = ""
    intent: str = ""  # '' | 'unlock' | 'lock': committed before the actuator is driven
    prev_state: str = ""  # state before OPEN, for a rollback when the unlock failed
    opened_by: str = ""  # '' | 'recipient' | 'operator' | 'loading'
    fault: str = ""
    door_open_since: float | None = None  # [s] wall time the door was first seen open
    retries: int = 0  # actuation attempts of the current intent


@dataclass(frozen=True)
class Parcel:
    parcel_id: str
    recipient: str
    stop: str
    size: str
    compartment: int
    status: str  # loaded | delivered | returned
    code_tag: bytes
    generation: int  # 1 for the first code, +1 per reissue
    expires: float  # [s] wall time
    code_used: bool = False
    notified: bool = False
    loading: bool = True  # until the door closed on it and the lock engaged
    loaded_at: float = 0.0  # [s]
    finished_at: float | None = None  # [s]


_COMPARTMENT_FIELDS = [f.name for f in fields(Compartment)]
_PARCEL_FIELDS = [f.name for f in fields(Parcel)]


def _compartment(row: Sequence[Any]) -> Compartment:
    values = dict(zip(_COMPARTMENT_FIELDS, row, strict=True))
    values["state"] = State(values["state"])
    return Compartment(**values)


def _parcel(row: Sequence[Any]) -> Parcel:
    values = dict(zip(_PARCEL_FIELDS, row, strict=True))
    for key in ("code_used", "notified", "loading"):
        values[key] = bool(values[key])
    values["code_tag"] = bytes(values["code_tag"])
    return Parcel(**values)


class Transaction:
    """Reads and writes inside one ``BEGIN IMMEDIATE`` ... ``COMMIT``."""

    def __init__(self, conn: sqlite3.Connection, secret: bytes, stamp: float) -> None:
        self._conn = conn
        self._secret = secret
        self.stamp = stamp
        self.events: list[AuditEvent] = []

    # -- reads
    def compartment(self, number: int) -> Compartment:
        row = self._conn.execute(
            f"SELECT {', '.join(_COMPARTMENT_FIELDS)} FROM compartments WHERE number = ?",
            (number,),
        ).fetchone()
        if row is None:
            raise StoreError(f"compartment {number} does not exist")
        return _compartment(row)

    def compartments(self) -> list[Compartment]:
        rows = self._conn.execute(
            f"SELECT {', '.join(_COMPARTMENT_FIELDS)} FROM compartments ORDER BY number"
        ).fetchall()
        return [_compartment(r) for r in rows]

    def parcel(self, parcel_id: str) -> Parcel | None:
        row = self._conn.execute(
            f"SELECT {', '.join(_PARCEL_FIELDS)} FROM parcels WHERE parcel_id = ?", (parcel_id,)
        ).fetchone()
        return None if row is None else _parcel(row)

    def parcels(self, stop: str | None = None, status: str | None = None) -> list[Parcel]:
        sql = f"SELECT {', '.join(_PARCEL_FIELDS)} FROM parcels WHERE 1"
        args: list[Any] = []
        if stop is not None:
            sql += " AND stop = ?"
            args.append(stop)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        rows = self._conn.execute(sql + " ORDER BY compartment, parcel_id", args).fetchall()
        return [_parcel(r) for r in rows]

    def meta(self, key: str, default: str = "") -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def attempts(self, scope: str) -> Attempts:
        row = self._conn.execute(
            "SELECT failures, consecutive, locked_until, permanent, last_failure FROM attempts "
            "WHERE scope = ?",
            (scope,),
        ).fetchone()
        if row is None:
            return Attempts()
        return Attempts(int(row[0]), int(row[1]), float(row[2]), bool(row[3]), float(row[4]))

    def attempts_with_prefix(self, prefix: str) -> dict[str, Attempts]:
        """Every scope whose name starts with ``prefix``, by scope."""
        rows = self._conn.execute(
            "SELECT scope, failures, consecutive, locked_until, permanent, last_failure "
            "FROM attempts WHERE substr(scope, 1, ?) = ?",
            (len(prefix), prefix),
        ).fetchall()
        return {
            str(r[0]): Attempts(int(r[1]), int(r[2]), float(r[3]), bool(r[4]), float(r[5]))
            for r in rows
        }

    def operator(self, operator_id: str) -> CredentialHash | None:
        row = self._conn.execute(
            "SELECT salt, digest, n, r, p FROM operators WHERE operator_id = ?", (operator_id,)
        ).fetchone()
        if row is None:
            return None
        return CredentialHash(bytes(row[0]), bytes(row[1]), int(row[2]), int(row[3]), int(row[4]))

    # -- writes
    def audit(
        self, kind: str, compartment: int = 0, parcel_id: str = "", stop: str = "", detail: str = ""
    ) -> AuditEvent:
        event = audit.append(
            self._conn, self._secret, self.stamp, kind, compartment, parcel_id, stop, detail
        )
        self.events.append(event)
        return event

    def update_compartment(self, number: int, why: str = "", **changes: Any) -> Compartment:
        """Change columns of one compartment; a state change is audited here, always."""
        before = self.compartment(number)
        after = replace(before, **changes)
        values = [getattr(after, name) for name in _COMPARTMENT_FIELDS[1:]]
        values[1] = after.state.value
        self._conn.execute(
            f"UPDATE compartments SET {', '.join(f'{n} = ?' for n in _COMPARTMENT_FIELDS[1:])} "
            "WHERE number = ?",
            (*values, number),
        )
        if after.state != before.state:
            parcel = self.parcel(after.parcel_id or before.parcel_id)
            self.audit(
                "state",
                number,
                after.parcel_id or before.parcel_id,
                parcel.stop if parcel else "",
                f"{before.state.value} -> {after.state.value}" + (f" ({why})" if why else ""),
            )
        return after

    def insert_parcel(self, parcel: Parcel) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO parcels ({', '.join(_PARCEL_FIELDS)}) "
                f"VALUES ({', '.join('?' for _ in _PARCEL_FIELDS)})",
                [getattr(parcel, n) for n in _PARCEL_FIELDS],
            )
        except sqlite3.IntegrityError as err:
            raise StoreError(
                f"parcel {parcel.parcel_id!r} refused by the database: {err}"
            ) from None

    def update_parcel(self, parcel_id: str, **changes: Any) -> Parcel:
        before = self.parcel(parcel_id)
        if before is None:
            raise StoreError(f"parcel {parcel_id!r} does not exist")
        after = replace(before, **changes)
        self._conn.execute(
            f"UPDATE parcels SET {', '.join(f'{n} = ?' for n in _PARCEL_FIELDS[1:])} "
            "WHERE parcel_id = ?",
            (*[getattr(after, n) for n in _PARCEL_FIELDS[1:]], parcel_id),
        )
        return after

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_attempts(self, scope: str, attempts: Attempts) -> None:
        self._conn.execute(
            "INSERT INTO attempts (scope, failures, consecutive, locked_until, permanent,"
            " last_failure) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET"
            " failures = excluded.failures, consecutive = excluded.consecutive,"
            " locked_until = excluded.locked_until, permanent = excluded.permanent,"
            " last_failure = excluded.last_failure",
            (
                scope,
                attempts.failures,
                attempts.consecutive,
                attempts.locked_until,
                int(attempts.permanent),
                attempts.last_failure,
            ),
        )

    def clear_attempts(self, scope: str) -> None:
        self._conn.execute("DELETE FROM attempts WHERE scope = ?", (scope,))

    def set_operator(self, operator_id: str, credential: CredentialHash) -> None:
        self._conn.execute(
            "INSERT INTO operators (operator_id, salt, digest, n, r, p) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(operator_id) DO UPDATE SET salt = excluded.salt,"
            " digest = excluded.digest, n = excluded.n, r = excluded.r, p = excluded.p",
            (
                operator_id,
                credential.salt,
                credential.digest,
                credential.n,
                credential.r,
                credential.p,
            ),
        )


class Store:
    """The locker database. One connection, used from one thread."""

    def __init__(self, path: Path, secret: bytes) -> None:
        make_private_dir(path.parent)
        self.path = path
        self._secret = secret
        self.tightened = self._private_files()  # what was readable by others, now 0600
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA + audit.SCHEMA)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(attempts)")}
        if "last_failure" not in columns:  # a database from before operator limits
            self._conn.execute(
                "ALTER TABLE attempts ADD COLUMN last_failure REAL NOT NULL DEFAULT 0"
            )
        mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: journal_mode is {mode!r}, WAL required")
        self._checkpointer: sqlite3.Connection | None = None

    def _private_files(self) -> list[str]:
        """Create the database file 0600 before SQLite does (its -wal and -shm copy that
        mode); tighten an existing one, or its side files, that others could read."""
        tightened = []
        with suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        for name in (self.path, *(self.path.with_name(self.path.name + s) for s in SIDE_FILES)):
            try:
                mode = stat.S_IMODE(name.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
                tightened.append(f"{name} had mode {mode:04o}, now {mode & 0o700:04o}")
                log.warning("locker database file %s was readable by others: now 0600", name)
        return tightened

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conn.close()

    def manual_checkpoints(self) -> None:
        """No checkpoint inside a commit any more: the owner calls :meth:`checkpoint`."""
        self._conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL pages into the database file (PASSIVE) on a second connection.

        Safe from another thread while the main connection commits. Returns (WAL pages,
        pages copied so far); SQLite restarts the WAL once a checkpoint has copied them all.
        """
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
        row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]), int(row[2])

    @contextmanager
    def transaction(self, stamp: float) -> Iterator[Transaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if the block raises)."""
        self._conn.execute("BEGIN IMMEDIATE")
        tx = Transaction(self._conn, self._secret, stamp)
        try:
            yield tx
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def init_layout(self, sizes: Sequence[str], stamp: float) -> None:
        """Create the compartments on first start; refuse a database of another layout.

        Raises:
            StoreError: the stored layout differs from ``sizes`` (naming the first difference).
        """
        with self.transaction(stamp) as tx:
            stored = tx.compartments()
            if not stored:
                for number, size in enumerate(sizes, start=1):
                    self._conn.execute(
                        "INSERT INTO compartments (number, size, state) VALUES (?, ?, ?)",
                        (number, size, State.EMPTY.value),
                    )
                tx.audit("layout", detail=f"{len(sizes)} compartments created")
                return
            if tuple(c.size for c in stored) != tuple(sizes):
                raise StoreError(
                    f"{self.path}: stored layout has {len(stored)} compartments "
                    f"({', '.join(c.size for c in stored[:3])}, ...) but parameter 'layout' asks "
                    f"for {len(sizes)}; use another db_path or the old layout"
                )

    def read(self) -> Transaction:
        """A reader for autocommit reads outside a transaction (no writes through it)."""
        return Transaction(self._conn, self._secret, 0.0)

    def status_rows(self) -> list[tuple[int, str, str, str, str, str]]:
        """(number, size, state, parcel_id, fault, stop of its parcel or '') per compartment."""
        rows = self._conn.execute(
            "SELECT c.number, c.size, c.state, c.parcel_id, c.fault, COALESCE(p.stop, '') "
            "FROM compartments c LEFT JOIN parcels p ON p.parcel_id = c.parcel_id "
            "ORDER BY c.number"
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows]

    def events_since(self, seq: int, limit: int = -1) -> list[AuditEvent]:
        return audit.events_since(self._conn, seq, limit)

    def verify_audit(self) -> int | None:
        return audit.verify_chain(self._conn, self._secret)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn
