"""The kiosk web layer through Flask's test client, around a small in-test LockerClient."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient

from xiaomanlv_locker.kiosk.app import create_app, stats_of
from xiaomanlv_locker.kiosk.client import (
    CodeResult,
    CompartmentView,
    LoadRequest,
    LoadResult,
    LockerStatus,
    LockerUnavailableError,
)
from xiaomanlv_locker.kiosk.config import KioskConfig

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
        if self.load_error:
            return LoadResult(False, self.load_error, 0)
        return LoadResult(True, "", 4, expires=1_700_000_000.0)

    def status(self) -> LockerStatus:
        door = CompartmentView(4, "medium", "loaded", door_closed=True)
        return LockerStatus(self.reachable, (door,) if self.reachable else ())


@pytest.fixture
def locker() -> Locker:
    return Locker()


@pytest.fixture
def web(locker: Locker) -> FlaskClient:
    return create_app(locker, KioskConfig(kiosk_id="gate-3")).test_client()


def test_the_right_code_opens_its_door_and_names_it(web: FlaskClient, locker: Locker) -> None:
    response = web.post("/api/code", json={"code": GOOD})
    assert response.status_code == 200
    assert response.json == {
        "ok": True,
        "compartment": 17,
        "message": "Door 17 is open - take your parcel and close the door.",
    }
    assert locker.calls == [("submit_code", ("gate-3", GOOD))]


def test_a_wrong_code_says_so_with_the_lockers_reason(web: FlaskClient) -> None:
    response = web.post("/api/code", json={"code": "00000000"})
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["ok"] is False and body["error"] == "rejected"
    assert "did not open a door" in body["message"]
    assert body["detail"] == "wrong code, 2 attempts left"
    assert body["retry_after"] == 0.0


def test_repeated_wrong_codes_lock_out_with_retry_after(web: FlaskClient) -> None:
    for _ in range(3):
        assert web.post("/api/code", json={"code": "11111111"}).status_code == 200
    response = web.post("/api/code", json={"code": GOOD})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    body = response.json
    assert body is not None
    assert body["error"] == "locked_out" and body["retry_after"] == 30.0
    assert "Too many wrong codes" in body["message"]


def test_a_lockout_only_an_operator_clears_is_valid_json(web: FlaskClient, locker: Locker) -> None:
    locker.wrong, locker.lockout = locker.max_wrong, float("inf")
    response = web.post("/api/code", json={"code": GOOD})
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert b"Infinity" not in response.data
    assert response.json is not None
    assert response.json["permanent"] is True and response.json["retry_after"] is None
    assert "contact the operator" in response.json["message"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("12a45678", "digits only"),
        ("1234567", "has 8 digits; you entered 7"),
        ("123456789", "has 8 digits; you entered 9"),
        ("", "Enter the 8-digit code"),
        (12345678, "Enter the 8-digit code"),
        ("１２３４５６７８", "digits only"),  # full-width digits are not ASCII digits
        (None, "Enter the 8-digit code"),
    ],
)
def test_malformed_codes_are_refused_before_any_locker_call(
    web: FlaskClient, locker: Locker, code: Any, expected: str
) -> None:
    response = web.post("/api/code", json={"code": code})
    assert response.status_code == 400
    body = response.json
    assert body is not None and body["error"] == "invalid_code"
    assert expected in body["message"]
    assert locker.calls == []


def test_code_length_comes_from_the_config(locker: Locker) -> None:
    web = create_app(locker, KioskConfig(code_length=6)).test_client()
    assert web.post("/api/code", json={"code": "123456"}).status_code == 200
    refused = web.post("/api/code", json={"code": GOOD})
    assert refused.status_code == 400
    assert refused.json is not None and "has 6 digits" in refused.json["message"]
    assert b'maxlength="6"' in web.get("/").data


def test_an_unanswering_locker_reads_unavailable_please_wait(
    web: FlaskClient, locker: Locker
) -> None:
    locker.reachable = False
    response = web.post("/api/code", json={"code": GOOD})
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["message"] == "Locker unavailable, please wait."
    load = web.post("/api/load", json=LOAD)
    assert load.status_code == 503
    status = web.get("/api/status").json
    assert status is not None and status["reachable"] is False
    assert status["message"] == "Locker unavailable, please wait."
    assert stats_of(web.application).unavailable == 2


def test_responses_never_echo_the_code(web: FlaskClient, locker: Locker) -> None:
    locker.codes = {}
    locker.submit_code = lambda kiosk_id, code: CodeResult(  # type: ignore[method-assign]
        False, 0, f"code {code} is not armed"
    )
    response = web.post("/api/code", json={"code": GOOD})
    assert GOOD.encode() not in response.data
    assert response.json is not None and response.json["detail"] == "code ******** is not armed"


def test_non_json_and_cross_site_posts_are_refused(web: FlaskClient, locker: Locker) -> None:
    form = web.post("/api/code", data={"code": GOOD})
    assert form.status_code == 415
    foreign = web.post("/api/code", json={"code": GOOD}, headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 403
    cross = web.post("/api/code", json={"code": GOOD}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert locker.calls == []
    same = web.post("/api/code", json={"code": GOOD}, headers={"Origin": "http://localhost"})
    assert same.status_code == 200


def test_recipient_page_has_a_labelled_keypad(web: FlaskClient) -> None:
    page = web.get("/")
    assert page.status_code == 200
    html = page.data.decode()
    assert '<label for="code"' in html and 'inputmode="numeric"' in html
    for digit in "0123456789":
        assert f'data-digit="{digit}" aria-label="Digit {digit}"' in html
    assert 'aria-live="polite"' in html
    assert "script-src" not in html  # no inline policy tricks: scripts are files
    assert "'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


def test_operator_load_returns_the_compartment(web: FlaskClient, locker: Locker) -> None:
    response = web.post("/api/load", json=LOAD)
    assert response.status_code == 200
    assert response.json == {
        "ok": True,
        "compartment": 4,
        "parcel_id": "P-100",
        "expires": "2023-11-14T22:13:20Z",
        "message": "Put parcel P-100 into compartment 4 and close the door.",
    }
    ((name, request),) = locker.calls
    assert name == "load_parcel"
    assert request == LoadRequest("P-100", "+86 555 0100", "library", "medium", "op-7", CREDENTIAL)
    assert CREDENTIAL not in repr(request)


@pytest.mark.parametrize(
    ("changes", "bad_field", "expected"),
    [
        ({"parcel_id": "  "}, "parcel_id", "Parcel id is required"),
        ({"recipient": None}, "recipient", "Recipient is required"),
        ({"size": "huge"}, "size", "Size must be one of small, medium, large, not 'huge'"),
        ({"stop": "x" * 129}, "stop", "Stop is too long (129 characters, at most 128)"),
        ({"operator_credential": ""}, "operator_credential", "Credential is required"),
    ],
)
def test_bad_load_fields_are_named_before_any_locker_call(
    web: FlaskClient, locker: Locker, changes: dict[str, Any], bad_field: str, expected: str
) -> None:
    response = web.post("/api/load", json={**LOAD, **changes})
    assert response.status_code == 400
    body = response.json
    assert body is not None and body["field"] == bad_field
    assert expected in body["message"]
    assert locker.calls == []


def test_a_refused_load_names_the_field_the_locker_names(web: FlaskClient, locker: Locker) -> None:
    locker.load_error = "stop 'moon' is not a stop of this site"
    response = web.post("/api/load", json=LOAD)
    assert response.status_code == 422
    assert response.json == {
        "ok": False,
        "message": "stop 'moon' is not a stop of this site",
        "error": "refused",
        "field": "stop",
    }


def test_status_lists_compartments_without_parcels_or_codes(web: FlaskClient) -> None:
    status = web.get("/api/status").json
    assert status == {
        "reachable": True,
        "message": "",
        "kiosk_id": "gate-3",
        "compartments": [
            {
                "compartment": 4,
                "size": "medium",
                "state": "loaded",
                "door_closed": True,
                "fault": "",
            }
        ],
    }


def test_nothing_logged_holds_a_code_or_credential(
    web: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    web.post("/api/code", json={"code": "99999999"})
    web.post("/api/code", json={"code": GOOD})
    web.post("/api/code", json={"code": "12x"})
    web.post("/api/load", json=LOAD)
    web.post("/api/load", json={**LOAD, "parcel_id": ""})
    assert caplog.records, "the kiosk logs what it did"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "door 17 opened" in text and "compartment 4" in text
    for secret in ("99999999", GOOD, "12x", CREDENTIAL):
        assert secret not in text


def test_stats_count_each_outcome(web: FlaskClient) -> None:
    web.post("/api/code", json={"code": "12"})
    web.post("/api/code", json={"code": "00000000"})
    web.post("/api/code", json={"code": GOOD})
    web.post("/api/load", json=LOAD)
    counts = stats_of(web.application).snapshot()
    assert counts["invalid_input"] == 1
    assert counts["codes_rejected"] == 1
    assert counts["codes_accepted"] == 1
    assert counts["loads"] == 1
