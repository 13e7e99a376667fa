"""The locker facade: the one object the ROS node (and the benches) call.

It ties the state machine (:mod:`.machine`), codes and limits (:mod:`.codes`), the SQLite store
(:mod:`.store`), the hardware driver (:mod:`.hardware`) and the notification sender
(:mod:`.notify`) together, and owns the write-ahead protocol:

1. a transaction commits the new state *and* the intent (``unlock`` / ``lock``), audited;
2. the actuator is driven;
3. a second transaction confirms (or, when the sensors say it did not happen, rolls back).

:meth:`Locker.reconcile` (run at start-up) resolves intents left by a crash against the
sensors, sends codes whose notification may not have gone out, then runs :meth:`Locker.tick`.
:meth:`Locker.tick` polls the sensors: a door that was opened and closed again completes a
delivery / return / load, closed doors are locked (retrying the latch), faults are raised and
cleared. The robot counts as moving when ``/wheel/odom`` is faster than the thresholds or
older than ``odom_timeout`` (the safe side): no door opens then, and measured motion disarms
the stop.

Thread safety: every public method holds :attr:`Locker.lock` (re-entrant, and fair: granted
in arrival order, :mod:`.fair_lock`), so the node may serve ``submit_code`` on its own
thread while another thread runs :meth:`tick`. A tick holds the lock for one compartment's step
at a time (a step that settles a door lets waiting callers in between its two commits), so a
code waits at most for one short critical section, never for a whole tick; later steps
re-read their compartment when another caller committed meanwhile. An operator's scrypt
check (tens of ms) runs without the lock.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from xiaomanlv_locker.audit import AuditEvent
from xiaomanlv_locker.codes import (
    code_tag,
    is_code_shaped,
    load_or_create_secret,
    matches,
    new_code,
    verify_credential,
)
from xiaomanlv_locker.config import SIZES, LockerConfig
from xiaomanlv_locker.fair_lock import FairLock
from xiaomanlv_locker.hardware import LockerDriver, Reading, make_driver
from xiaomanlv_locker.machine import FREE, HOLDS_PARCEL, Event, State, next_state
from xiaomanlv_locker.notify import Notification, NotificationSender, make_sender
from xiaomanlv_locker.store import Compartment, Parcel, Store, Transaction

log = logging.getLogger(__name__)

MAX_FIELD = 128  # characters in an id, recipient or stop name
CHECKPOINT_COMMITS = 100  # commits between two WAL checkpoints run by the tick


class Clock(Protocol):
    def time(self) -> float:
        """[s] wall time (Unix epoch): expiries, lockouts, audit stamps."""

    def monotonic(self) -> float:
        """[s] monotonic: odometry age, driver timers."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class LoadResult:
    success: bool
    message: str
    compartment: int = 0
    expires: float = 0.0  # [s] wall time


@dataclass(frozen=True)
class SubmitResult:
    success: bool
    message: str
    compartment: int = 0
    retry_after: float = 0.0  # [s]; inf when permanently locked out


@dataclass(frozen=True)
class ArmResult:
    success: bool
    message: str
    compartments: tuple[int, ...] = ()


@dataclass(frozen=True)
class OperatorResult:
    success: bool
    message: str


@dataclass(frozen=True)
class CompartmentView:
    number: int
    size: str
    state: str
    parcel_id: str
    stop: str
    door_closed: bool
    locked: bool
    parcel_present: bool
    fault: str


def _bad_text(name: str, value: str) -> str | None:
    if not value or not value.strip():
        return f"field '{name}' is empty"
    if len(value) > MAX_FIELD:
        return f"field '{name}' is {len(value)} characters long, at most {MAX_FIELD}"
    if not value.isprintable():
        return f"field '{name}' = {value!r} contains control characters"
    return None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _exclusive(
    method: Callable[Concatenate[Locker, _P], _R],
) -> Callable[Concatenate[Locker, _P], _R]:
    """Run a :class:`Locker` method holding its lock (one caller in the state machine)."""

    @functools.wraps(method)
    def guarded(self: Locker, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    return guarded


class Locker:
    def __init__(
        self,
        config: LockerConfig,
        store: Store,
        driver: LockerDriver,
        sender: NotificationSender,
        secret: bytes,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.driver = driver
        self.sender = sender
        self._secret = secret
        self.clock: Clock = clock or SystemClock()
        self.sizes = config.compartment_sizes()
        self.malformed = 0  # requests with a malformed field
        self._events: list[AuditEvent] = []
        self._odom_at: float | None = None  # [s] monotonic
        self._speed = 0.0  # [m/s]
        self._yaw_rate = 0.0  # [rad/s]
        self._readings: dict[int, Reading] = {}
        self._moving_alarmed: set[int] = set()
        self._changed = True
        self._commits = 0  # transactions committed (a tick step re-reads after others' commits)
        self._handovers = 0  # times a tick step let a waiting caller in (see _door_session)
        self._checkpointed = 0  # self._commits at the last checkpoint
        self.lock = FairLock()  # held by every public method; see the module docstring
        store.manual_checkpoints()  # the tick checkpoints, outside the lock
        store.init_layout(self.sizes, self.clock.time())

    @classmethod
    def open(
        cls,
        config: LockerConfig,
        clock: Clock | None = None,
        driver: LockerDriver | None = None,
        sender: NotificationSender | None = None,
    ) -> Locker:
        """Build from config (secret file, database, plugins) and reconcile with the sensors.

        Raises:
            ConfigError: an unknown driver or sender.
            SecretFileError: the device secret is unusable.
            StoreError: the database was made for another layout.
        """
        secret = load_or_create_secret(config.path("secret"))
        store = Store(config.path("db"), secret)
        locker = cls(
            config,
            store,
            driver or make_driver(config),
            sender or make_sender(config),
            secret,
            clock,
        )
        locker.reconcile()
        return locker

    @_exclusive
    def close(self) -> None:
        self.driver.close()
        self.store.close()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Transaction]:
        with self.store.transaction(self.clock.time()) as tx:
            yield tx
        self._commits += 1
        self._events.extend(tx.events)

    @_exclusive
    def drain_events(self) -> list[AuditEvent]:
        """Audit events committed since the last call (to publish on /locker/events)."""
        out, self._events = self._events, []
        return out

    def _malformed(self, message: str) -> str:
        self.malformed += 1
        return message

    def _credential_ok(self, operator_id: str, credential: str) -> bool:
        """The scrypt check (tens of ms), without the lock: codes are served meanwhile."""
        with self.lock:
            stored = self.store.read().operator(operator_id)
        return stored is not None and verify_credential(credential, stored)

    def _operator_ok(self, tx: Transaction, ok: bool, operator_id: str, what: str) -> bool:
        if not ok:
            tx.audit("operator_rejected", detail=f"{what}: operator {operator_id!r} rejected")
        return ok

    # ------------------------------------------------------------------ motion
    @_exclusive
    def observe_odom(self, speed: float, yaw_rate: float = 0.0) -> None:
        """Record one /wheel/odom twist: ``speed`` [m/s] linear, ``yaw_rate`` [rad/s]."""
        if not (math.isfinite(speed) and math.isfinite(yaw_rate)):
            self.malformed += 1
            return
        self._odom_at = self.clock.monotonic()
        self._speed, self._yaw_rate = abs(speed), abs(yaw_rate)

    def _measured_moving(self) -> bool:
        return (
            self._odom_at is not None
            and self.clock.monotonic() - self._odom_at <= self.config.odom_timeout
            and (
                self._speed > self.config.moving_speed
                or self._yaw_rate > self.config.moving_yaw_rate
            )
        )

    @_exclusive
    def is_moving(self) -> bool:
        """True when moving, or when odometry is missing/stale (unknown = moving)."""
        if self._odom_at is None:
            return True
        if self.clock.monotonic() - self._odom_at > self.config.odom_timeout:
            return True
        return (
            self._speed > self.config.moving_speed or self._yaw_rate > self.config.moving_yaw_rate
        )

    @_exclusive
    def armed_stop(self) -> str:
        return self.store.read().meta("armed_stop")

    # ------------------------------------------------------------------ actuation
    def _drive(self, number: int, unlock: bool) -> bool:
        """Drive the lock up to ``actuation_retries`` times; True when the sensor agrees."""
        for _ in range(self.config.actuation_retries):
            if unlock:
                self.driver.unlock(number)
            else:
                self.driver.lock(number)
            reading = self.driver.read(number)
            self._readings[number] = reading
            if reading.locked != unlock:
                return True
        return False

    def _open(self, number: int) -> bool:
        """Step 2 and 3 of an unlock whose intent is committed: actuate, confirm or roll back."""
        if self._drive(number, unlock=True):
            with self._tx() as tx:
                c = tx.compartment(number)
                opened_at = None if self._readings[number].door_closed else tx.stamp
                fault = "" if c.fault == "jammed" else c.fault
                tx.update_compartment(
                    number, intent="", retries=0, door_open_since=opened_at, fault=fault
                )
                tx.audit("opened", number, c.parcel_id, self._stop_of(tx, c), f"by {c.opened_by}")
            return True
        with self._tx() as tx:
            self._roll_back_unlock(tx, tx.compartment(number), "jammed")
        return False

    def _roll_back_unlock(self, tx: Transaction, c: Compartment, fault: str) -> None:
        parcel = tx.parcel(c.parcel_id) if c.parcel_id else None
        stop = parcel.stop if parcel else ""
        if c.opened_by == "loading":
            tx.update_compartment(c.number, intent="", opened_by="", fault=fault, retries=0)
        else:
            previous = State(c.prev_state) if c.prev_state else State.LOADED
            target = next_state(c.state, Event.UNLOCK_FAILED, previous)
            tx.update_compartment(
                c.number,
                "unlock failed",
                state=target,
                intent="",
                opened_by="",
                prev_state="",
                fault=fault,
                retries=0,
            )
            if parcel is not None and c.opened_by == "recipient":
                tx.update_parcel(parcel.parcel_id, code_used=False)  # the door never opened
        tx.audit("fault", c.number, c.parcel_id, stop, f"{fault}: the lock did not release")

    def _stop_of(self, tx: Transaction, c: Compartment) -> str:
        parcel = tx.parcel(c.parcel_id) if c.parcel_id else None
        return parcel.stop if parcel else ""

    # ------------------------------------------------------------------ codes
    def _unique_code(self, tx: Transaction, parcel_id: str, stop: str) -> tuple[str, bytes]:
        """A fresh code no other loaded parcel at ``stop`` has (a recipient types only it)."""
        others = [p for p in tx.parcels(stop=stop, status="loaded") if p.parcel_id != parcel_id]
        for _ in range(1000):
            code = new_code(self.config.code_digits)
            if not any(
                matches(self._secret, p.parcel_id, p.stop, code, p.code_tag) for p in others
            ):
                return code, code_tag(self._secret, parcel_id, stop, code)
        raise RuntimeError(f"no unique code for stop {stop!r} after 1000 draws")  # pragma: no cover

    def _notify_pending(self) -> None:
        """Issue and send a new code for every loaded parcel not (surely) notified."""
        for parcel in self.store.read().parcels(status="loaded"):
            if parcel.notified:
                continue
            with self._tx() as tx:
                code, tag = self._unique_code(tx, parcel.parcel_id, parcel.stop)
                current = tx.update_parcel(
                    parcel.parcel_id,
                    code_tag=tag,
                    generation=parcel.generation + 1,
                    code_used=False,
                )
                tx.audit(
                    "code_issued",
                    parcel.compartment,
                    parcel.parcel_id,
                    parcel.stop,
                    f"generation {current.generation} (reissued)",
                )
            self._send(current, code, "reissued")

    def _send(self, parcel: Parcel, code: str, reason: str) -> None:
        note = Notification(
            parcel.recipient,
            parcel.parcel_id,
            parcel.stop,
            code,
            parcel.expires,
            parcel.generation,
            reason,
        )
        try:
            self.sender.send(note)
        except Exception as err:  # a sender plugin failed: retried with a new code on tick
            log.warning("notification for parcel %s failed: %s", parcel.parcel_id, err)
            return
        with self._tx() as tx:
            tx.update_parcel(parcel.parcel_id, notified=True)
            tx.audit(
                "notified",
                parcel.compartment,
                parcel.parcel_id,
                parcel.stop,
                f"generation {parcel.generation} sent ({reason})",
            )

    # ------------------------------------------------------------------ services
    def load_parcel(
        self,
        parcel_id: str,
        recipient: str,
        stop: str,
        size: str,
        operator_id: str,
        credential: str,
    ) -> LoadResult:
        """Assign the smallest free compartment of at least ``size``, open it, send the code.

        Idempotent: loading a parcel id that is loaded for the same recipient and stop returns
        its compartment again (and re-opens it while loading is unconfirmed), so an operator
        whose request was lost in a crash can simply repeat it.
        """
        ok = self._credential_ok(operator_id, credential)
        with self.lock:
            return self._load_parcel(parcel_id, recipient, stop, size, operator_id, ok)

    def _load_parcel(
        self,
        parcel_id: str,
        recipient: str,
        stop: str,
        size: str,
        operator_id: str,
        credential_ok: bool,
    ) -> LoadResult:
        for name, value in (
            ("parcel_id", parcel_id),
            ("recipient", recipient),
            ("stop", stop),
            ("operator_id", operator_id),
        ):
            bad = _bad_text(name, value)
            if bad:
                return LoadResult(False, self._malformed(bad))
        if size not in SIZES:
            return LoadResult(
                False, self._malformed(f"field 'size' = {size!r} must be one of {', '.join(SIZES)}")
            )
        if self.is_moving():
            return LoadResult(False, "the robot is moving (or odometry is stale): no door opens")
        now = self.clock.time()
        with self._tx() as tx:
            if not self._operator_ok(tx, credential_ok, operator_id, f"load {parcel_id}"):
                return LoadResult(False, "field 'operator_credential' rejected")
            existing = tx.parcel(parcel_id)
            if existing is not None:
                same = (
                    existing.status == "loaded"
                    and existing.recipient == recipient
                    and existing.stop == stop
                )
                if not same:
                    return LoadResult(
                        False,
                        f"field 'parcel_id' = {parcel_id!r} is already "
                        f"{existing.status} (compartment {existing.compartment})",
                    )
                c = tx.compartment(existing.compartment)
                reopen = existing.loading and c.intent == "" and c.opened_by == ""
                if reopen:
                    tx.update_compartment(c.number, intent="unlock", opened_by="loading")
                    tx.audit("unlocking", c.number, parcel_id, stop, "re-opened for loading")
                number = c.number
                result = LoadResult(True, "already loaded", number, existing.expires)
            else:
                rank = SIZES.index(size)
                free = [
                    c
                    for c in tx.compartments()
                    if c.state in FREE
                    and not c.fault
                    and not c.intent
                    and not c.opened_by
                    and SIZES.index(c.size) >= rank
                ]
                if not free:
                    return LoadResult(False, f"no free compartment of size {size} or larger")
                chosen = min(free, key=lambda c: (SIZES.index(c.size), c.number))
                number = chosen.number
                code, tag = self._unique_code(tx, parcel_id, stop)
                parcel = Parcel(
                    parcel_id,
                    recipient,
                    stop,
                    size,
                    number,
                    "loaded",
                    tag,
                    1,
                    now + self.config.code_ttl,
                    loaded_at=now,
                )
                tx.insert_parcel(parcel)
                tx.update_compartment(
                    number,
                    "loading",
                    state=next_state(chosen.state, Event.LOAD),
                    parcel_id=parcel_id,
                    intent="unlock",
                    opened_by="loading",
                    fault="",
                    retries=0,
                    door_open_since=None,
                )
                tx.audit("loaded", number, parcel_id, stop, f"size {size} in {chosen.size}")
                reopen = True
                result = LoadResult(True, "loaded", number, parcel.expires)
        if reopen and not self._open(number):
            return LoadResult(False, f"compartment {number} is jammed; repeat the request")
        if existing is None:
            self._send(parcel, code, "loaded")
        return result

    @_exclusive
    def arm_stop(self, stop: str, arm: bool) -> ArmResult:
        """Arm ``stop`` (robot parked there) or disarm it; arming fails while moving."""
        bad = _bad_text("stop", stop)
        if bad:
            return ArmResult(False, self._malformed(bad))
        if arm and self.is_moving():
            return ArmResult(False, "the robot is moving (or odometry is stale): cannot arm")
        with self._tx() as tx:
            current = tx.meta("armed_stop")
            if current and current != stop and arm:
                self._disarm(tx, current, "disarmed")
            if not arm and current == stop:
                self._disarm(tx, current, "disarmed")
            if arm:
                tx.set_meta("armed_stop", stop)
                if current != stop:
                    tx.audit("armed", stop=stop)
                self._make_available(tx, stop)
            elif current != stop:
                message = f"stop {stop!r} was not armed ({current or 'none'} was)"
                return ArmResult(True, message)
        return ArmResult(True, "armed" if arm else "disarmed", self.available(stop) if arm else ())

    def _make_available(self, tx: Transaction, stop: str) -> None:
        parcels = tx.parcels(stop=stop, status="loaded")
        if not parcels:
            return
        rows = {c.number: c for c in tx.compartments()}
        for parcel in parcels:
            c = rows[parcel.compartment]
            if c.state is State.LOADED and not parcel.loading and not c.intent and not c.opened_by:
                tx.update_compartment(c.number, "stop armed", state=next_state(c.state, Event.ARM))

    def _disarm(self, tx: Transaction, stop: str, kind: str) -> None:
        for c in tx.compartments():
            if c.state is State.AVAILABLE:
                tx.update_compartment(c.number, kind, state=next_state(c.state, Event.DISARM))
        tx.set_meta("armed_stop", "")
        tx.audit(kind, stop=stop)

    @_exclusive
    def available(self, stop: str) -> tuple[int, ...]:
        reader = self.store.read()
        return tuple(
            p.compartment
            for p in reader.parcels(stop=stop, status="loaded")
            if reader.compartment(p.compartment).state is State.AVAILABLE
        )

    @_exclusive
    def submit_code(self, kiosk_id: str, code: str) -> SubmitResult:
        """Check a typed code against every armed parcel of the armed stop; open on a match.

        Wrong codes count per kiosk and per stop (backoff, then a permanent stop lockout).
        A code that was accepted is consumed; it opens nothing again.
        """
        bad = _bad_text("kiosk_id", kiosk_id)
        if bad:
            return SubmitResult(False, self._malformed(bad))
        now = self.clock.time()
        stop = self.armed_stop()
        if not stop:
            return SubmitResult(False, "the robot is not parked at a stop")
        if self.is_moving():
            return SubmitResult(False, "the robot is moving: please wait until it stops")
        cfg = self.config
        with self._tx() as tx:
            kiosk_scope, stop_scope = f"kiosk:{kiosk_id}", f"stop:{stop}"
            kiosk, at_stop = tx.attempts(kiosk_scope), tx.attempts(stop_scope)
            wait = max(kiosk.retry_after(now), at_stop.retry_after(now))
            if wait > 0.0:
                tx.audit("code_refused", stop=stop, detail=f"kiosk {kiosk_id}: locked out")
                return SubmitResult(False, "too many wrong codes: please wait", retry_after=wait)
            match: Parcel | None = None
            shaped = is_code_shaped(code, cfg.code_digits)
            if not shaped:
                self.malformed += 1
            for parcel in tx.parcels(stop=stop, status="loaded"):
                # every candidate is compared (constant time each), whatever matched before
                hit = matches(self._secret, parcel.parcel_id, stop, code, parcel.code_tag)
                if hit and match is None and shaped:
                    match = parcel
            usable = False
            if match is not None:
                c = tx.compartment(match.compartment)
                usable = (
                    c.state is State.AVAILABLE
                    and not match.code_used
                    and not match.loading
                    and not c.intent
                )
                if usable and match.expires <= now:
                    tx.audit("code_expired", c.number, match.parcel_id, stop, f"kiosk {kiosk_id}")
                    return SubmitResult(
                        False, "this code has expired; the parcel goes back to the station"
                    )
            if match is None or not usable:
                kiosk = kiosk.failed(
                    now, cfg.kiosk_free_attempts, cfg.backoff_base, cfg.backoff_max
                )
                at_stop = at_stop.failed(
                    now,
                    cfg.stop_free_attempts,
                    cfg.backoff_base,
                    cfg.backoff_max,
                    cfg.stop_max_failures,
                )
                tx.set_attempts(kiosk_scope, kiosk)
                tx.set_attempts(stop_scope, at_stop)
                why = "malformed" if not shaped else "no match"
                tx.audit(
                    "code_rejected",
                    stop=stop,
                    detail=f"kiosk {kiosk_id}: {why}; stop failures {at_stop.failures}",
                )
                wait = max(kiosk.retry_after(now), at_stop.retry_after(now))
                if wait > 0.0:
                    kind = "permanent" if at_stop.permanent else f"{wait:.0f} s"
                    tx.audit("lockout", stop=stop, detail=f"kiosk {kiosk_id}: {kind}")
                message = "wrong code" if shaped else f"a code has {cfg.code_digits} digits"
                return SubmitResult(False, message, retry_after=wait)
            tx.set_attempts(kiosk_scope, kiosk.succeeded())
            tx.set_attempts(stop_scope, at_stop.succeeded())
            number = match.compartment
            c = tx.compartment(number)
            tx.update_parcel(match.parcel_id, code_used=True)
            tx.update_compartment(
                number,
                "code accepted",
                state=next_state(c.state, Event.CODE_ACCEPTED),
                intent="unlock",
                prev_state=c.state.value,
                opened_by="recipient",
                retries=0,
                door_open_since=None,
            )
            tx.audit("code_accepted", number, match.parcel_id, stop, f"kiosk {kiosk_id}")
        if not self._open(number):
            return SubmitResult(False, "the door is jammed; staff have been alerted")
        return SubmitResult(True, f"compartment {number} is open", number)

    def operator_open(
        self, compartment: int, operator_id: str, credential: str, reason: str
    ) -> OperatorResult:
        """Open one compartment with an operator credential (never while moving)."""
        ok = self._credential_ok(operator_id, credential)
        with self.lock:
            return self._operator_open(compartment, operator_id, ok, reason)

    def _operator_open(
        self, compartment: int, operator_id: str, credential_ok: bool, reason: str
    ) -> OperatorResult:
        if not 1 <= compartment <= len(self.sizes):
            return OperatorResult(
                False,
                self._malformed(f"field 'compartment' = {compartment} not in 1..{len(self.sizes)}"),
            )
        bad = _bad_text("operator_id", operator_id)
        if bad:
            return OperatorResult(False, self._malformed(bad))
        if self.is_moving():
            return OperatorResult(False, "the robot is moving (or odometry is stale)")
        with self._tx() as tx:
            if not self._operator_ok(tx, credential_ok, operator_id, f"open {compartment}"):
                return OperatorResult(False, "field 'operator_credential' rejected")
            c = tx.compartment(compartment)
            if c.state is State.OPEN or c.intent or c.opened_by:
                return OperatorResult(False, f"compartment {compartment} is already open")
            tx.update_compartment(
                compartment,
                f"operator {operator_id}",
                state=next_state(c.state, Event.OPERATOR_OPEN),
                intent="unlock",
                prev_state=c.state.value,
                opened_by="operator",
                fault="",
                retries=0,
                door_open_since=None,
            )
            tx.audit(
                "operator_open",
                compartment,
                c.parcel_id,
                self._stop_of(tx, c),
                f"operator {operator_id}: {reason[:200]}",
            )
        if not self._open(compartment):
            return OperatorResult(False, f"compartment {compartment} is jammed")
        return OperatorResult(True, f"compartment {compartment} is open")

    # ------------------------------------------------------------------ start-up and tick
    @_exclusive
    def reconcile(self) -> None:
        """Resolve what a crash left half done, against the sensors; then :meth:`tick`."""
        self.driver.poll(self.clock.monotonic())
        for c in self.store.read().compartments():
            if c.intent != "unlock":
                continue
            reading = self.driver.read(c.number)
            with self._tx() as tx:
                if not reading.locked:
                    opened_at = None if reading.door_closed else tx.stamp
                    tx.update_compartment(c.number, intent="", retries=0, door_open_since=opened_at)
                    tx.audit(
                        "opened",
                        c.number,
                        c.parcel_id,
                        self._stop_of(tx, c),
                        f"by {c.opened_by} (confirmed at start-up)",
                    )
                else:
                    self._roll_back_unlock(tx, c, "")
                    tx.audit(
                        "reconciled",
                        c.number,
                        c.parcel_id,
                        self._stop_of(tx, c),
                        "unlock had not happened before the restart",
                    )
        self._notify_pending()
        self.tick()

    def tick(self) -> None:
        """Poll the sensors and advance every compartment (call at ``tick_rate``).

        The lock is taken for the poll, then once per compartment, then for the notifications;
        every :data:`CHECKPOINT_COMMITS` commits it checkpoints the WAL without the lock.
        a service call on another thread runs in between (or, in a step that settles a door,
        between its two transactions: :meth:`_door_session`). Once such a call has committed,
        every later step of this tick re-reads its compartment. Without
        one, the steps use the rows read at the tick's start, as a single-threaded tick always
        did: the only other compartments a step writes are loaded ones made available when a
        lock engages at the armed stop, which no later step of the same tick tells apart.
        """
        with self.lock:
            self.driver.poll(self.clock.monotonic())
            stop = self.armed_stop()
            if stop and self._measured_moving():
                with self._tx() as tx:
                    self._disarm(tx, stop, "disarmed_moving")
            moving = self.is_moving()
            reader = self.store.read()
            loading = {p.compartment for p in reader.parcels(status="loaded") if p.loading}
            compartments = reader.compartments()
            expected = self._commits  # commits so far, all of them this tick's
            stale = False
        for c in compartments:
            with self.lock:
                is_loading = c.number in loading
                stale = stale or self._commits != expected  # another caller committed
                handovers = self._handovers
                if stale:
                    c = reader.compartment(c.number)
                    parcel = reader.parcel(c.parcel_id) if c.parcel_id else None
                    is_loading = parcel is not None and parcel.status == "loaded" and parcel.loading
                reading = self.driver.read(c.number)
                if self._readings.get(c.number) != reading:
                    self._readings[c.number] = reading
                    self._changed = True
                self._step(c, reading, moving, is_loading)
                stale = stale or self._handovers != handovers  # it let a caller in
                expected = self._commits
        with self.lock:
            if any(not p.notified for p in reader.parcels(status="loaded")):
                self._notify_pending()
            due = self._commits - self._checkpointed >= CHECKPOINT_COMMITS
            if due:
                self._checkpointed = self._commits
        if due:  # on the store's second connection: codes commit meanwhile
            self.store.checkpoint()

    @_exclusive
    def changed(self) -> bool:
        """True once after anything a status shows may have changed (events or sensors)."""
        out = self._changed or bool(self._events)
        self._changed = False
        return out

    def _step(self, c: Compartment, r: Reading, moving: bool, loading: bool) -> None:
        now = self.clock.time()
        if moving and not (r.door_closed and r.locked) and c.number not in self._moving_alarmed:
            self._moving_alarmed.add(c.number)
            with self._tx() as tx:
                tx.audit(
                    "alarm",
                    c.number,
                    c.parcel_id,
                    self._stop_of(tx, c),
                    "door open or unlocked while moving",
                )
        elif r.door_closed and r.locked:
            self._moving_alarmed.discard(c.number)
        if c.intent == "unlock":
            return  # only reconcile() meets this (a crash between intent and confirm)
        if c.opened_by:
            self._door_session(c, r, now)
        elif c.intent == "lock" or (r.door_closed and not r.locked):
            self._latch(c, r)
        elif not r.door_closed:
            self._set_fault(c, "forced_open", "alarm", "door open while locked: forced")
        elif not loading:
            self._check_sensors(c, r)

    def _door_session(self, c: Compartment, r: Reading, now: float) -> None:
        """A door released for someone: wait for it to open and close, then settle."""
        if not r.door_closed:
            if c.door_open_since is None:
                with self._tx() as tx:
                    tx.update_compartment(c.number, door_open_since=now)
            elif now - c.door_open_since > self.config.door_open_timeout:
                self._set_fault(
                    c,
                    "door_left_open",
                    "fault",
                    f"open for more than {self.config.door_open_timeout:g} s",
                )
            return
        if c.door_open_since is None:
            return  # released, not yet pulled open (a sim door springs open at once)
        with self._tx() as tx:
            parcel = tx.parcel(c.parcel_id) if c.parcel_id else None
            live = parcel is not None and parcel.status == "loaded"
            fault = "" if c.fault == "door_left_open" else c.fault
            common: dict[str, Any] = {
                "intent": "lock",
                "opened_by": "",
                "prev_state": "",
                "retries": 0,
                "door_open_since": None,
                "fault": fault,
            }
            if c.opened_by == "loading":
                assert parcel is not None
                if r.parcel_present:
                    tx.update_parcel(parcel.parcel_id, loading=False)
                    tx.audit("load_confirmed", c.number, parcel.parcel_id, parcel.stop)
                else:
                    tx.audit(
                        "load_not_placed",
                        c.number,
                        parcel.parcel_id,
                        parcel.stop,
                        "door closed without a parcel; repeat the load request",
                    )
                tx.update_compartment(c.number, **common)
            elif r.parcel_present and live:
                assert parcel is not None
                armed = tx.meta("armed_stop") == parcel.stop
                event = Event.CLOSED_KEPT if armed else Event.CLOSED_KEPT_AWAY
                tx.update_compartment(
                    c.number, "closed, parcel inside", state=next_state(c.state, event), **common
                )
                if c.opened_by == "recipient":
                    tx.update_parcel(parcel.parcel_id, notified=False)  # a new code follows
            elif live:
                assert parcel is not None
                by_recipient = c.opened_by == "recipient"
                event = Event.CLOSED_TAKEN if by_recipient else Event.CLOSED_REMOVED
                status = "delivered" if by_recipient else "returned"
                tx.update_parcel(parcel.parcel_id, status=status, finished_at=now)
                tx.update_compartment(c.number, status, state=next_state(c.state, event), **common)
                tx.audit(status, c.number, parcel.parcel_id, parcel.stop)
                if not tx.parcels(stop=parcel.stop, status="loaded"):
                    tx.clear_attempts(f"stop:{parcel.stop}")
            else:
                if r.parcel_present:
                    common["fault"] = "sensor_disagree"
                    tx.audit("fault", c.number, detail="sensor_disagree: parcel in an empty one")
                tx.update_compartment(
                    c.number, "closed", state=next_state(c.state, Event.CLOSED_EMPTY), **common
                )
        # Settled and committed with a lock intent: a caller waiting for the lock (a code on
        # the node's other thread) goes first, so it waits for one commit, not two. It cannot
        # touch this compartment (no usable parcel, an intent pending) and the latch re-reads.
        if self.lock.handover():
            self._handovers += 1
        self._latch(self.store.read().compartment(c.number), r)

    def _latch(self, c: Compartment, r: Reading) -> None:
        """Engage the lock of a closed door (write-ahead intent; retried every tick)."""
        if not r.door_closed:
            return
        if c.intent != "lock":
            with self._tx() as tx:
                tx.update_compartment(c.number, intent="lock", retries=0)
        if self._drive(c.number, unlock=False):
            with self._tx() as tx:
                fault = "" if c.fault == "lock_failed" else c.fault
                tx.update_compartment(c.number, intent="", retries=0, fault=fault)
                tx.audit("locked", c.number, c.parcel_id, self._stop_of(tx, c))
                armed = tx.meta("armed_stop")
                if armed:
                    self._make_available(tx, armed)
            return
        retries = c.retries + self.config.actuation_retries
        with self._tx() as tx:
            tx.update_compartment(c.number, retries=retries)
        self._set_fault(
            self.store.read().compartment(c.number),
            "lock_failed",
            "fault",
            f"lock did not engage after {retries} attempts",
        )

    def _check_sensors(self, c: Compartment, r: Reading) -> None:
        """Closed and locked, nobody inside: the presence sensor must agree with the state.

        Not called for a compartment whose load was never confirmed (nothing to expect yet).
        """
        expected = c.state in HOLDS_PARCEL
        if r.parcel_present != expected:
            self._set_fault(
                c,
                "sensor_disagree",
                "fault",
                f"presence sensor reads {r.parcel_present} in state {c.state.value}",
            )
        elif c.fault in ("sensor_disagree", "forced_open", "lock_failed", "door_left_open"):
            with self._tx() as tx:
                tx.update_compartment(c.number, fault="")
                tx.audit("fault_cleared", c.number, c.parcel_id, self._stop_of(tx, c), c.fault)

    def _set_fault(self, c: Compartment, fault: str, kind: str, detail: str) -> None:
        if c.fault == fault:
            return
        with self._tx() as tx:
            tx.update_compartment(c.number, fault=fault)
            tx.audit(kind, c.number, c.parcel_id, self._stop_of(tx, c), f"{fault}: {detail}")

    # ------------------------------------------------------------------ views
    @_exclusive
    def statuses(self) -> list[CompartmentView]:
        """Every compartment with its last sensor reading (one query)."""
        out = []
        for number, size, state, parcel_id, fault, stop in self.store.status_rows():
            r = self._readings.get(number) or self.driver.read(number)
            holding = bool(stop) and State(state) not in FREE
            out.append(
                CompartmentView(
                    number,
                    size,
                    state,
                    parcel_id if holding else "",
                    stop if holding else "",
                    r.door_closed,
                    r.locked,
                    r.parcel_present,
                    fault,
                )
            )
        return out

    @_exclusive
    def counts(self) -> dict[str, int]:
        """Numbers for /diagnostics."""
        reader = self.store.read()
        states = [c.state.value for c in reader.compartments()]
        faults = [c.fault for c in reader.compartments() if c.fault]
        out = {f"state_{s.value}": states.count(s.value) for s in State}
        out["faults"] = len(faults)
        out["malformed_requests"] = self.malformed
        return out
