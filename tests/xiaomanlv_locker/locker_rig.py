"""Test rig for the locker core: a fake clock, a simulated driver and a locker on a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xiaomanlv_locker.codes import hash_credential
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.hardware import SimDriver
from xiaomanlv_locker.locker import Locker
from xiaomanlv_locker.notify import JsonLinesSender, latest_codes

OPERATOR = ("op1", "correct horse battery staple")
SITE_STOPS = ("A 0 0", "B 100 0", "C 0 100")  # the site's stops, as the map server would give


class FakeClock:
    """Wall and monotonic time that move only when a test says so."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Rig:
    """A locker with its fake clock, sim driver and notification file."""

    def __init__(
        self, tmp_path: Path, driver_cls: type[SimDriver] = SimDriver, **overrides: Any
    ) -> None:
        self.tmp_path = tmp_path
        self.driver_cls = driver_cls
        self.clock = FakeClock()
        values: dict[str, Any] = {
            "data_dir": str(tmp_path),
            "sim_auto_actor": False,
            "site_stops": SITE_STOPS,
        }
        values.update(overrides)
        self.config = LockerConfig(**values)
        self.driver = self.driver_cls(
            len(self.config.compartment_sizes()),
            state_path=self.config.path("sim_state"),
            clock=self.clock.monotonic,
        )
        self.locker = self.open()
        with self.locker.store.transaction(self.clock.time()) as tx:
            tx.set_operator(OPERATOR[0], hash_credential(OPERATOR[1], n=2**10))

    def open(self) -> Locker:
        return Locker.open(
            self.config,
            clock=self.clock,
            driver=self.driver,
            sender=JsonLinesSender(self.config.path("notify")),
        )

    def restart(self) -> Locker:
        """A new locker (and driver object) on the same files, as after a crash."""
        self.locker.store.close()
        self.driver = self.driver_cls(
            len(self.config.compartment_sizes()),
            faults=self.driver.faults,
            state_path=self.config.path("sim_state"),
            clock=self.clock.monotonic,
        )
        self.locker = self.open()
        return self.locker

    def parked(self) -> None:
        self.locker.observe_odom(0.0, 0.0)

    def drive(self) -> None:
        self.locker.observe_odom(1.2, 0.0)

    def code(self, parcel_id: str) -> str:
        return latest_codes(self.config.path("notify"))[parcel_id]

    def load(self, parcel_id: str, stop: str = "A", size: str = "small") -> int:
        """Load and confirm: the operator places the parcel and closes the door."""
        self.parked()
        result = self.locker.load_parcel(parcel_id, f"{parcel_id}@x", stop, size, *OPERATOR)
        assert result.success, result.message
        self.driver.place_parcel(result.compartment, parcel_id)
        self.driver.close_door(result.compartment)
        self.locker.tick()
        return result.compartment
