"""What the kiosk needs from the locker: a Protocol with plain dataclass results.

The web app (:mod:`xiaomanlv_locker.kiosk.app`) only talks to a :class:`LockerClient`; the ROS
adapter (:mod:`xiaomanlv_locker.kiosk.ros.client`) implements it with the locker's services
(/locker/submit_code, /locker/load_parcel) and compartment status topics, and unit tests
implement it in a few lines. Results carry no code and no credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class LockerUnavailableError(RuntimeError):
    """The locker did not answer (service missing or no reply within the timeout)."""


@dataclass(frozen=True)
class CodeResult:
    """The locker's answer to a pickup code (SubmitCode)."""

    success: bool
    compartment: int  # 1..50 on success, else 0
    message: str  # shown to the recipient
    retry_after: float = 0.0  # [s] > 0 while attempts are locked out


@dataclass(frozen=True)
class LoadRequest:
    """An operator loading a parcel at the station (LoadParcel request)."""

    parcel_id: str
    recipient: str
    stop: str
    size: str  # "small" | "medium" | "large"
    operator_id: str
    operator_credential: str = field(repr=False)  # never printed or logged


@dataclass(frozen=True)
class LoadResult:
    """The locker's answer to a load (LoadParcel)."""

    success: bool
    message: str  # why it failed, naming the bad field
    compartment: int  # 1..50 on success, else 0
    expires: float | None = None  # [s] since the Unix epoch; None when unknown or failed


@dataclass(frozen=True)
class CompartmentView:
    """What the kiosk shows of one compartment (no recipient, no code)."""

    compartment: int  # 1..50
    size: str
    state: str  # "empty" | "loaded" | "available" | "open" | "delivered" | "returned" | "fault"
    door_closed: bool
    fault: str = ""
    age: float = 0.0  # [s] since the status arrived


@dataclass(frozen=True)
class LockerStatus:
    """The locker as the kiosk last saw it."""

    reachable: bool  # the locker's services are there
    compartments: tuple[CompartmentView, ...] = ()  # fresh statuses only, by number


class LockerClient(Protocol):
    """The locker's services as the kiosk uses them.

    ``submit_code`` and ``load_parcel`` raise :class:`LockerUnavailableError` when the locker does
    not answer; ``status`` never blocks on the locker and never raises for it.
    """

    def submit_code(self, kiosk_id: str, code: str) -> CodeResult: ...

    def load_parcel(self, request: LoadRequest) -> LoadResult: ...

    def status(self) -> LockerStatus: ...
