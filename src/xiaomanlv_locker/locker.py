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

Hostile input (docs/locker.md, "Security"): every field is checked (:mod:`.fields`) and a
bad one is a counted rejection (:attr:`Locker.rejected`, per kind); stops must be the site's
(:meth:`Locker.set_stops`, fed by the node from ``/map/stops``); operator credentials have
attempt limits per operator id and locker-wide, and a locked-out attempt is answered from
memory before any scrypt or lock; attempts refused during a lockout are audited as one
summarising row per ``refusal_summary_window`` (:meth:`Locker.flush_refusals`), not one each.
Parked is judged from every motion source: each fresh ``/wheel/odom`` sample when more than
one node publishes it, the IMU's yaw rate, and a fresh localised pose near the stop to arm.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from xiaomanlv_locker.audit import AuditEvent
from xiaomanlv_locker.codes import (
    CredentialHash,
    code_tag,
    hash_credential,
    is_code_shaped,
    load_or_create_secret,
    matches,
    new_code,
    verify_credential,
)
from xiaomanlv_locker.config import SIZES, LockerConfig
from xiaomanlv_locker.fair_lock import FairLock
from xiaomanlv_locker.fields import text_problem
from xiaomanlv_locker.hardware import LockerDriver, Reading, make_driver
from xiaomanlv_locker.machine import FREE, HOLDS_PARCEL, Event, State, next_state
from xiaomanlv_locker.notify import Notification, NotificationSender, make_sender
from xiaomanlv_locker.store import Compartment, Parcel, Store, Transaction

log = logging.getLogger(__name__)

CHECKPOINT_COMMITS = 100  # commits between two WAL checkpoints run by the tick
MAX_REASON = 200  # [characters] an operator's reason
IMU_WINDOW = 0.2  # [s] the IMU's yaw rate is averaged over this long (noise)
TALLY_SOURCES = 20  # distinct kiosks/operators named in one refusal summary row
OPERATORS_SCOPE = "operators"  # the locker-wide scope of wrong operator credentials


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


_bad_text = text_problem  # a field's problem, naming it; None when usable


def _operator_scope(operator_id: str) -> str:
    return f"operator:{operator_id}"


@dataclass
class _Tally:
    """Attempts refused during a lockout since ``first`` [s wall], not yet audited."""

    first: float
    count: int = 0
    sources: Counter[str] = dataclasses.field(default_factory=Counter)
    others: int = 0  # refusals from sources beyond the first TALLY_SOURCES

    def add(self, source: str) -> None:
        self.count += 1
        if source in self.sources or len(self.sources) < TALLY_SOURCES:
            self.sources[source] += 1
        else:
            self.others += 1

    def detail(self, window: float, until: float) -> str:
        named = ", ".join(f"{k} x{n}" for k, n in self.sources.most_common())
        more = f", {self.others} from others" if self.others else ""
        return (
            f"{self.count} attempt(s) refused during a lockout in {until - self.first:.0f} s "
            f"(one row per {window:g} s): {named}{more}"
        )


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
        self.rejected: Counter[str] = Counter()  # rejected inputs per kind (service, topic)
        self._events: list[AuditEvent] = []
        self._odom_at: float | None = None  # [s] monotonic
        self._speed = 0.0  # [m/s]
        self._yaw_rate = 0.0  # [rad/s]
        self._odom_sources = 1  # publishers of /wheel/odom (the node counts them)
        self._odom_recent: deque[tuple[float, bool]] = deque(maxlen=1024)  # (monotonic, moving)
        self._imu: deque[tuple[float, float]] = deque(maxlen=256)  # (monotonic [s], yaw [rad/s])
        self._pose: tuple[float, float, float] | None = None  # (monotonic [s], x, y [m] in map)
        self._stops: Mapping[str, tuple[float, float]] | None = config.stop_positions()
        self._unreachable: dict[str, str] = {}  # stop -> why (set_stops)
        self._counting = threading.Lock()  # rejection counts and refusal tallies, any thread
        self._tallies: dict[tuple[str, str], _Tally] = {}  # (kind, stop) -> refused in lockout
        self._dummy_hash: CredentialHash | None = None  # scrypt for unknown operator ids
        self._readings: dict[int, Reading] = {}
        self._moving_alarmed: set[int] = set()
        self._changed = True
        self._commits = 0  # transactions committed (a tick step re-reads after others' commits)
        self._handovers = 0  # times a tick step let a waiting caller in (see _door_session)
        self._checkpointed = 0  # self._commits at the last checkpoint
        self.lock = FairLock()  # held by every public method; see the module docstring
        store.manual_checkpoints()  # the tick checkpoints, outside the lock
        store.init_layout(self.sizes, self.clock.time())
        # [s wall] lockouts of operator scopes, mirrored from the attempts table so a locked-out
        # attempt is answered without the store, its lock or scrypt
        self._operator_locked = {
            scope: a.locked_until
            for scope, a in store.read().attempts_with_prefix("operator").items()
        }

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
        """Audit the refusals still tallied, then close the driver and the database."""
        self.flush_refusals(force=True)
        self.driver.close()
        self.store.close()

    @property
    def malformed(self) -> int:
        """Rejected requests and messages, all kinds together."""
        return sum(self.rejected.values())

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

    def reject(self, kind: str, message: str = "") -> str:
        """Count one rejected input of ``kind`` (a service or topic); returns ``message``."""
        with self._counting:
            self.rejected[kind] += 1
        return message

    # ------------------------------------------------------------------ operators
    def _credential_ok(self, operator_id: str, credential: str) -> bool:
        """The scrypt check (tens of ms), without the lock: codes are served meanwhile.

        An unknown operator id costs the same scrypt (against a fixed dummy hash), so the
        time of an answer does not tell which ids exist.
        """
        with self.lock:
            stored = self.store.read().operator(operator_id)
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = hash_credential("no such operator")
            verify_credential(credential, self._dummy_hash)
            return False
        return verify_credential(credential, stored)

    def operator_retry_after(self, operator_id: str) -> float:
        """[s] until ``operator_id`` may try a credential again (0 = now); no lock, no store."""
        now = self.clock.time()
        until = max(
            self._operator_locked.get(_operator_scope(operator_id), 0.0),
            self._operator_locked.get(OPERATORS_SCOPE, 0.0),
        )
        return max(0.0, until - now)

    def _operator_refused(self, operator_id: str) -> str | None:
        """The answer to a credential attempt during a lockout (tallied, not audited each)."""
        wait = self.operator_retry_after(operator_id)
        if wait <= 0.0:
            return None
        self._tally("operator_refused", "", f"operator {operator_id}")
        return (
            "field 'operator_credential': too many wrong operator credentials, "
            f"locked out for another {math.ceil(wait)} s"
        )

    def _operator_ok(self, tx: Transaction, ok: bool, operator_id: str, what: str) -> bool:
        """Count the attempt (per id and locker-wide), audit a rejection and any lockout."""
        cfg = self.config
        scope = _operator_scope(operator_id)
        if ok:
            attempts = tx.attempts(scope).succeeded()
            tx.set_attempts(scope, attempts)
            self._operator_locked[scope] = attempts.locked_until
            return True
        now = tx.stamp
        tx.audit("operator_rejected", detail=f"{what}: operator {operator_id!r} rejected")
        for name, free in (
            (scope, cfg.operator_free_attempts),
            (OPERATORS_SCOPE, cfg.operator_global_free_attempts),
        ):
            attempts = (
                tx.attempts(name)
                .forgotten(now, cfg.operator_forget_after)
                .failed(now, free, cfg.operator_backoff_base, cfg.operator_backoff_max)
            )
            tx.set_attempts(name, attempts)
            self._operator_locked[name] = attempts.locked_until
            wait = attempts.retry_after(now)
            if wait > 0.0:
                who = "all operators" if name == OPERATORS_SCOPE else f"operator {operator_id!r}"
                tx.audit(
                    "operator_lockout",
                    detail=f"{who}: {wait:.0f} s after {attempts.consecutive} wrong credentials",
                )
        return False

    # ------------------------------------------------------------------ refusal summaries
    def _tally(self, kind: str, stop: str, source: str) -> None:
        """Count an attempt refused during a lockout; :meth:`flush_refusals` audits them."""
        with self._counting:
            tally = self._tallies.get((kind, stop))
            if tally is None:
                tally = self._tallies[(kind, stop)] = _Tally(self.clock.time())
            tally.add(source)

    @_exclusive
    def flush_refusals(self, force: bool = False) -> int:
        """Audit each tally whose window is over (every one with ``force``); rows written.

        One row per kind and stop and window: a flood of refused attempts during a lockout
        adds one row a minute (by default), with the counts per kiosk or operator id.
        """
        now = self.clock.time()
        window = self.config.refusal_summary_window
        with self._counting:
            due = {
                key: tally
                for key, tally in self._tallies.items()
                if force or now - tally.first >= window
            }
            for key in due:
                del self._tallies[key]
        if not due:
            return 0
        with self._tx() as tx:
            for (kind, stop), tally in sorted(due.items()):
                tx.audit(kind, stop=stop, detail=tally.detail(window, now))
        return len(due)

    # ------------------------------------------------------------------ stops
    def set_stops(
        self,
        stops: Mapping[str, tuple[float, float]] | None,
        unreachable: Mapping[str, str] | None = None,
    ) -> None:
        """The site's stops: name -> (x, y) [m] in map (from ``/map/stops``); None = unknown.
        ``unreachable``: stop -> why, for the stops the map build marked unreachable (its
        routes do not reach them): no parcel is loaded for them, none is armed.

        ``site_stops`` in the config, when given, is the initial value.
        """
        self._stops = dict(stops) if stops is not None else None
        self._unreachable = dict(unreachable or {})

    def stops(self) -> Mapping[str, tuple[float, float]] | None:
        return self._stops

    def _stop_problem(self, stop: str, kind: str) -> str | None:
        """Why ``stop`` cannot be loaded for or armed: not known yet, or not the site's."""
        stops = self._stops
        if stops is None:
            return (
                "the site's stops are not known yet (no /map/stops from the map server): "
                "try again once the map server runs"
            )
        if stop not in stops:
            return self.reject(
                kind,
                f"field 'stop' = {stop!r} is not a stop of this site ({len(stops)} stops; "
                "see them with: ros2 topic echo --once /map/stops, or maps/<site>/stops.yaml)",
            )
        why = self._unreachable.get(stop)
        if why is not None:
            return self.reject(
                kind,
                f"field 'stop' = {stop!r}: the map marks it unreachable ({why}); the robot "
                "cannot deliver there until the map is rebuilt or its routes are fixed "
                "(docs/mapping.md, unreachable stops)",
            )
        return None

    # ------------------------------------------------------------------ motion
    @_exclusive
    def observe_odom(self, speed: float, yaw_rate: float = 0.0) -> bool:
        """Record one /wheel/odom twist: ``speed`` [m/s] linear, ``yaw_rate`` [rad/s].

        Returns False (and counts an ``odom`` rejection) for a non-finite twist.
        """
        if not (math.isfinite(speed) and math.isfinite(yaw_rate)):
            self.reject("odom")
            return False
        now = self.clock.monotonic()
        self._odom_at = now
        self._speed, self._yaw_rate = abs(speed), abs(yaw_rate)
        self._odom_recent.append((now, self._twist_moving(self._speed, self._yaw_rate)))
        return True

    def set_odom_sources(self, publishers: int) -> None:
        """How many nodes publish /wheel/odom; with more than one, every fresh sample counts."""
        self._odom_sources = publishers

    @_exclusive
    def observe_imu(self, yaw_rate: float) -> bool:
        """Record one /imu/data yaw rate [rad/s]; False (counted) when not finite."""
        if not math.isfinite(yaw_rate):
            self.reject("imu")
            return False
        self._imu.append((self.clock.monotonic(), yaw_rate))
        return True

    @_exclusive
    def observe_pose(self, x: float, y: float) -> bool:
        """Record the localised position (x, y) [m] in map; False (counted) when not finite."""
        if not (math.isfinite(x) and math.isfinite(y)):
            self.reject("pose")
            return False
        self._pose = (self.clock.monotonic(), x, y)
        return True

    def _twist_moving(self, speed: float, yaw_rate: float) -> bool:
        return speed > self.config.moving_speed or yaw_rate > self.config.moving_yaw_rate

    def _imu_rotating(self, now: float) -> bool:
        """The IMU's mean yaw rate over :data:`IMU_WINDOW` is above ``moving_yaw_rate``."""
        if not self._imu or now - self._imu[-1][0] > self.config.odom_timeout:
            return False
        recent = [rate for t, rate in self._imu if now - t <= IMU_WINDOW]
        return bool(recent) and abs(sum(recent) / len(recent)) > self.config.moving_yaw_rate

    def _sources_disagree(self, now: float) -> bool:
        """More than one /wheel/odom publisher, and a fresh sample of them reports motion."""
        timeout = self.config.odom_timeout
        return self._odom_sources > 1 and any(
            moving for t, moving in self._odom_recent if now - t <= timeout
        )

    def _measured_moving(self) -> bool:
        """Some fresh source measures motion (odometry, any of its publishers, the IMU)."""
        now = self.clock.monotonic()
        fresh = self._odom_at is not None and now - self._odom_at <= self.config.odom_timeout
        if fresh and self._twist_moving(self._speed, self._yaw_rate):
            return True
        return self._sources_disagree(now) or self._imu_rotating(now)

    @_exclusive
    def motion_problem(self) -> str:
        """Why the robot does not count as parked ('' when it does); unknown counts as moving.

        Parked: the newest /wheel/odom is at most ``odom_timeout`` old and below
        ``moving_speed`` and ``moving_yaw_rate``; with several /wheel/odom publishers none of
        their fresh samples reports motion; a fresh IMU does not measure rotation.
        """
        now = self.clock.monotonic()
        if self._odom_at is None:
            return "no odometry yet"
        if now - self._odom_at > self.config.odom_timeout:
            return "odometry is stale"
        if self._twist_moving(self._speed, self._yaw_rate):
            return "odometry reports motion"
        if self._sources_disagree(now):
            return f"the {self._odom_sources} publishers of /wheel/odom disagree"
        if self._imu_rotating(now):
            return "the IMU measures rotation while odometry stands still"
        return ""

    @_exclusive
    def is_moving(self) -> bool:
        """True when moving, or when motion is unknown or contradicted (see motion_problem)."""
        return bool(self.motion_problem())

    def _moving_message(self, what: str) -> str:
        return f"the robot is moving, or its motion is unknown ({self.motion_problem()}): {what}"

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

        Checked in this order, cheapest first: the fields (``stop`` must be the site's), an
        operator lockout (answered at once), then the credential (scrypt, without the lock).
        """
        for name, value in (
            ("parcel_id", parcel_id),
            ("recipient", recipient),
            ("stop", stop),
            ("operator_id", operator_id),
        ):
            bad = _bad_text(name, value)
            if bad:
                return LoadResult(False, self.reject("load_parcel", bad))
        if size not in SIZES:
            return LoadResult(
                False,
                self.reject(
                    "load_parcel",
                    f"field 'size' = {size!r} must be one of {', '.join(SIZES)}",
                ),
            )
        bad = _bad_text("operator_credential", credential, max_chars=1024)
        if bad:
            return LoadResult(False, self.reject("load_parcel", bad))
        bad = self._stop_problem(stop, "load_parcel")
        if bad:
            return LoadResult(False, bad)
        refused = self._operator_refused(operator_id)
        if refused:
            return LoadResult(False, refused)
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
        if self.is_moving():
            return LoadResult(False, self._moving_message("no door opens"))
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
        """Arm ``stop`` (robot parked there) or disarm it.

        Arming needs a stop of the site, the robot parked (:meth:`motion_problem`) and, when a
        localised pose is at most ``pose_timeout`` old, that pose within ``stop_radius`` of
        the stop. Disarming takes any well-formed name.
        """
        bad = _bad_text("stop", stop)
        if bad:
            return ArmResult(False, self.reject("arm_stop", bad))
        if arm:
            bad = self._stop_problem(stop, "arm_stop") or self._away_from(stop)
            if bad:
                return ArmResult(False, bad)
            if self.is_moving():
                return ArmResult(False, self._moving_message("cannot arm"))
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

    def _away_from(self, stop: str) -> str | None:
        """Why a fresh localised pose puts the robot away from ``stop``; None: at it, or no pose."""
        if self._pose is None or self._stops is None:
            return None
        at, x, y = self._pose
        if self.clock.monotonic() - at > self.config.pose_timeout:
            return None  # no fresh localisation: odometry's standstill alone decides
        sx, sy = self._stops[stop]
        distance = math.hypot(x - sx, y - sy)
        if distance <= self.config.stop_radius:
            return None
        return (
            f"the localised pose is {distance:.1f} m from stop {stop!r} "
            f"(at most stop_radius = {self.config.stop_radius:g} m): cannot arm"
        )

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
            return SubmitResult(False, self.reject("submit_code", bad))
        now = self.clock.time()
        stop = self.armed_stop()
        if not stop:
            return SubmitResult(False, "the robot is not parked at a stop")
        if self.is_moving():
            return SubmitResult(False, "the robot is moving: please wait until it stops")
        cfg = self.config
        kiosk_scope, stop_scope = f"kiosk:{kiosk_id}", f"stop:{stop}"
        reader = self.store.read()
        wait = max(
            reader.attempts(kiosk_scope).retry_after(now),
            reader.attempts(stop_scope).retry_after(now),
        )
        if wait > 0.0:  # tallied: one audit row per window, not a synced row per attempt
            self._tally("code_refused", stop, f"kiosk {kiosk_id}")
            return SubmitResult(False, "too many wrong codes: please wait", retry_after=wait)
        with self._tx() as tx:
            kiosk, at_stop = tx.attempts(kiosk_scope), tx.attempts(stop_scope)
            match: Parcel | None = None
            shaped = is_code_shaped(code, cfg.code_digits)
            if not shaped:
                self.reject("submit_code")
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
        """Open one compartment with an operator credential (never while moving).

        Fields first, then an operator lockout (answered at once), then scrypt without the lock.
        """
        if not 1 <= compartment <= len(self.sizes):
            return OperatorResult(
                False,
                self.reject(
                    "operator_open",
                    f"field 'compartment' = {compartment} not in 1..{len(self.sizes)}",
                ),
            )
        bad = (
            _bad_text("operator_id", operator_id)
            or _bad_text("operator_credential", credential, max_chars=1024)
            or _bad_text("reason", reason, max_chars=MAX_REASON, allow_empty=True)
        )
        if bad:
            return OperatorResult(False, self.reject("operator_open", bad))
        refused = self._operator_refused(operator_id)
        if refused:
            return OperatorResult(False, refused)
        ok = self._credential_ok(operator_id, credential)
        with self.lock:
            return self._operator_open(compartment, operator_id, ok, reason)

    def _operator_open(
        self, compartment: int, operator_id: str, credential_ok: bool, reason: str
    ) -> OperatorResult:
        if self.is_moving():
            return OperatorResult(False, self._moving_message("no door opens"))
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
                f"operator {operator_id}: {reason}",
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
            if self._tallies:
                self.flush_refusals()
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

    def rejections(self) -> dict[str, int]:
        """Rejected inputs per kind (``load_parcel``, ``odom``, ...), for /diagnostics."""
        with self._counting:
            return dict(self.rejected)
