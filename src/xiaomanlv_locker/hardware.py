"""Locker hardware abstraction: a Protocol, a plugin registry and the simulated driver.

A driver controls, per compartment, a lock actuator (:meth:`LockerDriver.unlock`,
:meth:`LockerDriver.lock`) and reads a door switch, the lock's engaged sensor and a
parcel-presence sensor (:meth:`LockerDriver.read`). Drivers are plugins keyed by the ``driver``
parameter (Conventions #5, rosbags' storage plugins): :data:`DRIVERS` maps the name to a
factory taking the :class:`~xiaomanlv_locker.config.LockerConfig`.

:class:`SimDriver` simulates the physics and the people:
- an unlocked door springs open; ``lock`` engages only on a closed door;
- faults with a time window, given as data (:class:`SimFault` records; a scenario's door
  jams become ``jammed`` records in ``xiaomanlv_bringup.scenario_faults``): ``jammed`` (the
  lock does not release), ``lock_fails`` (the lock does not engage), ``sensor_disagree``
  (the presence sensor reads the opposite), ``forced_open`` (the door is broken open at the
  window start);
- with ``auto_actor`` a person acts ``actor_delay`` seconds after a door opened: takes the
  parcel if there is one (a recipient, or an operator unloading), else puts one in (an operator
  loading), then closes the door. Without it, tests drive :meth:`SimDriver.take_parcel`,
  :meth:`SimDriver.place_parcel`, :meth:`SimDriver.close_door` (the node exposes them on
  ``/locker/sim/command``);
- its physical state can live in a JSON snapshot (``state_path``) plus an append-only journal
  (``<state_path>.journal``, one line per change, replayed and compacted at start) so it
  survives a locker crash, like real doors and parcels do, at the cost of one small append per
  change instead of a rewrite of the whole world; ``actuation_log`` records every actuation with its
  CLOCK_MONOTONIC time in ns (shared by all processes on Linux) for latency benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from xiaomanlv_core.config import ConfigError
from xiaomanlv_locker.codes import make_private_dir
from xiaomanlv_locker.config import LockerConfig, parse_fault

log = logging.getLogger(__name__)

JOURNAL_COMPACT = 4096  # journal lines before the sim driver rewrites its snapshot


@dataclass(frozen=True)
class Reading:
    door_closed: bool  # door switch
    locked: bool  # lock actuator reports engaged
    parcel_present: bool  # presence sensor


class LockerDriver(Protocol):
    """What the locker needs from the compartments' hardware (compartments 1..N)."""

    def unlock(self, compartment: int) -> None:
        """Command the lock to release; returns once the command is issued."""

    def lock(self, compartment: int) -> None:
        """Command the lock to engage."""

    def read(self, compartment: int) -> Reading:
        """The three sensors of one compartment now."""

    def poll(self, now: float) -> None:
        """Give the driver time to run (``now`` [s] on the monotonic clock)."""

    def close(self) -> None:
        """Release the hardware."""


@dataclass(frozen=True)
class SimFault:
    kind: str  # jammed | lock_fails | sensor_disagree | forced_open
    compartment: int
    start: float  # [s] after the driver started
    end: float | None = None  # [s], None: until the end

    def active(self, elapsed: float) -> bool:
        return self.start <= elapsed and (self.end is None or elapsed < self.end)


@dataclass
class _Physical:
    door_closed: bool = True
    locked: bool = True
    parcel: str = ""  # a tag for the object inside ("" = none); physics, not a sensor


@dataclass
class _World:
    compartments: list[_Physical]
    taken: list[str] = field(default_factory=list)  # parcels people took out, in order


class SimDriver:
    """Simulated compartments; see the module docstring."""

    def __init__(
        self,
        compartments: int,
        *,
        faults: Iterable[SimFault] = (),
        auto_actor: bool = False,
        actor_delay: float = 0.5,
        state_path: Path | None = None,
        actuation_log: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = compartments
        self.faults = list(faults)
        self.auto_actor = auto_actor
        self.actor_delay = actor_delay
        self._state_path = state_path
        self._log_path = actuation_log
        self._clock = clock
        self._start = clock()
        self._due: dict[int, float | None] = {}  # compartment -> when the person acts
        self._forced: set[SimFault] = set()
        self._journaled = 0  # journal lines since the last snapshot
        self.world = self._new_world()
        if state_path is not None:
            self.world = self._load()

    @classmethod
    def from_config(cls, config: LockerConfig) -> SimDriver:
        count = len(config.compartment_sizes())
        faults = [
            SimFault(*parse_fault(s, f"sim_faults[{i}]", count))
            for i, s in enumerate(config.sim_faults)
        ]
        return cls(
            count,
            faults=faults,
            auto_actor=config.sim_auto_actor,
            actor_delay=config.sim_actor_delay,
            state_path=config.path("sim_state"),
            actuation_log=Path(config.sim_actuation_log) if config.sim_actuation_log else None,
        )

    # -- persistence of the physical world
    @property
    def journal_path(self) -> Path | None:
        """The append-only journal next to the snapshot (``<state_path>.journal``), if any."""
        if self._state_path is None:
            return None
        return self._state_path.with_name(self._state_path.name + ".journal")

    def _new_world(self) -> _World:
        return _World([_Physical() for _ in range(self.count)])

    def _load(self) -> _World:
        """The snapshot (if any) with the journal replayed on top, then compacted."""
        assert self._state_path is not None
        world = self._new_world()
        if self._state_path.exists():
            data = json.loads(self._state_path.read_text())
            world = _World([_Physical(**c) for c in data["compartments"]], list(data["taken"]))
            if len(world.compartments) != self.count:
                raise ConfigError(
                    f"sim state {self._state_path} has {len(world.compartments)} compartments, "
                    f"the layout {self.count}"
                )
        journal = self.journal_path
        assert journal is not None
        if journal.exists():
            self._replay(world, journal.read_bytes(), journal)
        self.world = world
        self._snapshot()
        return world

    def _replay(self, world: _World, data: bytes, journal: Path) -> None:
        """Apply every complete journal line (absolute values: replaying twice is harmless).

        A last line without its newline is a write a kill cut short: that change never
        happened, like a snapshot rename that never happened.
        """
        lines = data.split(b"\n")[:-1]  # the part after the last newline is torn or empty
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                box = world.compartments[int(record["c"]) - 1]
                box.door_closed, box.locked, box.parcel = (
                    bool(record["d"]),
                    bool(record["l"]),
                    str(record["p"]),
                )
                if "t" in record:
                    index, tag = int(record["t"][0]), str(record["t"][1])
                    if index == len(world.taken):
                        world.taken.append(tag)
                    elif index < len(world.taken):
                        world.taken[index] = tag
                    else:
                        raise ValueError(f"taken index {index} after {len(world.taken)} entries")
            except (ValueError, KeyError, IndexError, TypeError) as err:
                raise ConfigError(f"sim journal {journal} line {number} unusable: {err}") from None

    def _snapshot(self) -> None:
        """Write the whole world atomically (temporary file + rename), then empty the journal.

        A kill between the two leaves journal lines the snapshot already holds; replaying
        them again changes nothing (they carry absolute values).
        """
        if self._state_path is None:
            return
        data = {
            "compartments": [
                {"door_closed": b.door_closed, "locked": b.locked, "parcel": b.parcel}
                for b in self.world.compartments
            ],
            "taken": list(self.world.taken),
        }
        tmp = self._state_path.with_suffix(".tmp")
        make_private_dir(tmp.parent)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._state_path)
        journal = self.journal_path
        assert journal is not None
        os.close(os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        self._journaled = 0

    def _save(self, compartment: int, taken: str | None = None) -> None:
        """Journal one compartment's new physical state (and a parcel taken from it).

        One ``write`` of one line to an ``O_APPEND`` file: once it returned, the change is in
        the kernel's page cache and survives a SIGKILL of this process; the line is the unit
        of atomicity (a take empties the compartment and records the taker in the same line).
        """
        if self._state_path is None:
            return
        box = self.world.compartments[compartment - 1]
        record: dict[str, object] = {
            "c": compartment,
            "d": box.door_closed,
            "l": box.locked,
            "p": box.parcel,
        }
        if taken is not None:
            record["t"] = [len(self.world.taken) - 1, taken]
        journal = self.journal_path
        assert journal is not None
        fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)
        self._journaled += 1
        if self._journaled >= JOURNAL_COMPACT:
            self._snapshot()

    def _record(self, compartment: int, action: str) -> None:
        if self._log_path is None:
            return
        line = json.dumps(
            {"t_ns": time.monotonic_ns(), "compartment": compartment, "action": action}
        )
        with self._log_path.open("a") as handle:
            handle.write(line + "\n")

    # -- faults
    def _elapsed(self) -> float:
        return self._clock() - self._start

    def _faulty(self, kind: str, compartment: int) -> bool:
        elapsed = self._elapsed()
        return any(
            f.kind == kind and f.compartment == compartment and f.active(elapsed)
            for f in self.faults
        )

    def inject(self, kind: str, compartment: int, duration: float | None = None) -> None:
        """Start fault ``kind`` on ``compartment`` now, for ``duration`` s (None: for good)."""
        parse_fault(f"{kind} {compartment} 0", "sim fault", self.count)
        now = self._elapsed()
        self.faults.append(
            SimFault(kind, compartment, now, None if duration is None else now + duration)
        )
        if kind == "forced_open":
            self.poll(self._clock())

    def clear_faults(self, compartment: int | None = None) -> None:
        self.faults = [f for f in self.faults if compartment not in (None, f.compartment)]

    # -- LockerDriver
    def _box(self, compartment: int) -> _Physical:
        if not 1 <= compartment <= self.count:
            raise ValueError(f"compartment {compartment} not in 1..{self.count}")
        return self.world.compartments[compartment - 1]

    def unlock(self, compartment: int) -> None:
        box = self._box(compartment)
        self._record(compartment, "unlock")
        if self._faulty("jammed", compartment):
            return
        box.locked = False
        box.door_closed = False  # spring-loaded door
        if self.auto_actor:
            self._due[compartment] = None
        self._save(compartment)

    def lock(self, compartment: int) -> None:
        box = self._box(compartment)
        self._record(compartment, "lock")
        if self._faulty("lock_fails", compartment) or not box.door_closed:
            return
        box.locked = True
        self._save(compartment)

    def read(self, compartment: int) -> Reading:
        box = self._box(compartment)
        present = bool(box.parcel)
        if self._faulty("sensor_disagree", compartment):
            present = not present
        return Reading(box.door_closed, box.locked, present)

    def poll(self, now: float) -> None:
        elapsed = now - self._start
        for fault in self.faults:
            if fault.kind == "forced_open" and fault.active(elapsed) and fault not in self._forced:
                self._forced.add(fault)
                box = self._box(fault.compartment)
                box.door_closed, box.locked = False, False
                self._save(fault.compartment)
        for compartment, due in list(self._due.items()):
            if due is None:
                self._due[compartment] = now + self.actor_delay
            elif now >= due:
                del self._due[compartment]
                if self._box(compartment).parcel:
                    self.take_parcel(compartment)
                else:
                    self.place_parcel(compartment, f"sim-{compartment}-{len(self.world.taken)}")
                self.close_door(compartment)

    def close(self) -> None:
        self._snapshot()

    # -- the people
    def take_parcel(self, compartment: int) -> str:
        """A person takes the parcel out of an open door; returns its tag.

        Raises:
            ValueError: the door is closed or the compartment is empty.
        """
        box = self._box(compartment)
        if box.door_closed or not box.parcel:
            raise ValueError(f"compartment {compartment}: nothing to take (door closed or empty)")
        tag, box.parcel = box.parcel, ""
        self.world.taken.append(tag)
        self._save(compartment, taken=tag)
        return tag

    def place_parcel(self, compartment: int, tag: str) -> None:
        """A person puts a parcel (``tag``) into an open, empty compartment."""
        box = self._box(compartment)
        if box.door_closed or box.parcel:
            raise ValueError(f"compartment {compartment}: cannot place (door closed or occupied)")
        box.parcel = tag
        self._save(compartment)

    def close_door(self, compartment: int) -> None:
        self._box(compartment).door_closed = True
        self._due.pop(compartment, None)
        self._save(compartment)

    def open_door(self, compartment: int) -> None:
        """A person opens an unlocked door (no effect on a locked one)."""
        box = self._box(compartment)
        if not box.locked:
            box.door_closed = False
            self._save(compartment)

    def parcel_tag(self, compartment: int) -> str:
        return self._box(compartment).parcel


DRIVERS: dict[str, Callable[[LockerConfig], LockerDriver]] = {"sim": SimDriver.from_config}


def make_driver(config: LockerConfig) -> LockerDriver:
    """The driver named by ``config.driver``.

    Raises:
        ConfigError: naming the parameter and the known drivers.
    """
    factory = DRIVERS.get(config.driver)
    if factory is None:
        raise ConfigError(
            f"parameter 'driver' = {config.driver!r} is not a known driver; "
            f"known: {', '.join(sorted(DRIVERS))}"
        )
    return factory(config)
