"""The kiosk's test rig: a small in-test LockerClient and a test client addressing the kiosk
as its screen does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from xiaomanlv_locker.kiosk.client import (
    CodeResult,
    CompartmentView,
    LoadRequest,
    LoadResult,
    LockerStatus,
    LockerUnavailableError,
)

BASE = "http://127.0.0.1:8080"  # the kiosk's default address: Host "127.0.0.1:8080"
GOOD = "48291375"
CREDENTIAL = "s3cret-pass"
LOAD = {
    "operator_id": "op-7",
    "operator_credential": CREDENTIAL,
    "parcel_id": "P-100",
    "recipient": "+86 555 0100",
    "stop": "library",
    "size": "medium",
}


@dataclass
class Locker:
    """A LockerClient with one armed code; locks out after ``max_wrong`` wrong codes."""

    codes: dict[str, int] = field(default_factory=lambda: {GOOD: 17})
    max_wrong: int = 3
    lockout: float = 30.0  # [s]
    reachable: bool = True
    load_error: str = ""
    credential: str = CREDENTIAL
    calls: list[tuple[str, Any]] = field(default_factory=list)
    wrong: int = 0

    def submit_code(self, kiosk_id: str, code: str) -> CodeResult:
        self.calls.append(("submit_code", (kiosk_id, code)))
        if not self.reachable:
            raise LockerUnavailableError("/locker/submit_code did not answer within 3 s")
        if self.wrong >= self.max_wrong:
            return CodeResult(False, 0, "locked out", retry_after=self.lockout)
        if code in self.codes:
            return CodeResult(True, self.codes.pop(code), "opened")
        self.wrong += 1
        return CodeResult(False, 0, f"wrong code, {self.max_wrong - self.wrong} attempts left")

    def load_parcel(self, request: LoadRequest) -> LoadResult:
        self.calls.append(("load_parcel", request))
        if not self.reachable:
            raise LockerUnavailableError("/locker/load_parcel did not answer within 3 s")
        if request.operator_credential != self.credential:
            return LoadResult(False, "field 'operator_credential' rejected", 0)
        if self.load_error:
            return LoadResult(False, self.load_error, 0)
        return LoadResult(True, "", 4, expires=1_700_000_000.0)

    def status(self) -> LockerStatus:
        door = CompartmentView(4, "medium", "loaded", door_closed=True)
        return LockerStatus(self.reachable, (door,) if self.reachable else ())


class KioskTestClient(FlaskClient):
    """Flask's test client addressing the kiosk as its screen does (Host 127.0.0.1:8080)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", BASE)
        return super().open(*args, **kwargs)


def client_of(app: Flask) -> FlaskClient:
    app.test_client_class = KioskTestClient
    return app.test_client()
