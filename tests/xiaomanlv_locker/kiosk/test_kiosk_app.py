"""The kiosk web layer through Flask's test client, around a small in-test LockerClient."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from kiosk_rig import BASE, CREDENTIAL, GOOD, LOAD, Locker, client_of

from xiaomanlv_locker.kiosk.app import create_app, stats_of
from xiaomanlv_locker.kiosk.client import CodeResult, LoadRequest, LoadResult
from xiaomanlv_locker.kiosk.config import KioskConfig


@pytest.fixture
def locker() -> Locker:
    return Locker()


@pytest.fixture
def web(locker: Locker) -> FlaskClient:
    return client_of(create_app(locker, KioskConfig(kiosk_id="gate-3")))


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
    web = client_of(create_app(locker, KioskConfig(code_length=6)))
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
    same = web.post("/api/code", json={"code": GOOD}, headers={"Origin": BASE})
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


# Same site: the kiosk's own host names, not whatever the request says ---------------------


def test_a_rebound_dns_name_is_refused_not_trusted(web: FlaskClient, locker: Locker) -> None:
    """DNS rebinding: evil.test resolves to the robot, so the attacker's page is same-origin
    with itself (Origin equals Host); the Host is not one of the kiosk's names."""
    evil = "http://evil.test:8080"
    posted = web.post("/api/code", json={"code": GOOD}, base_url=evil, headers={"Origin": evil})
    assert posted.status_code == 400
    assert posted.json is not None and posted.json["error"] == "bad_host"
    assert "'evil.test:8080'" in posted.json["message"]
    assert "allowed_hosts" in posted.json["message"]
    page = web.get("/api/status", base_url=evil)
    assert page.status_code == 400 and page.is_json
    assert locker.calls == []
    assert stats_of(web.application).refused_requests == 2


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8080", 200),
        ("localhost:8080", 200),
        ("LOCALHOST:8080", 200),
        ("[::1]:8080", 200),
        ("robot.campus:8080", 200),
        ("robot.campus.:8080", 200),
        ("localhost", 400),  # port 80: another origin
        ("127.0.0.1:9090", 400),
        ("robot.campus:8080@evil.test", 400),
        ("evil.test@127.0.0.1:8080", 400),
        ("127.0.0.1:8080/x", 400),
        ("127.0.0.1:99999", 400),
        ("", 400),
    ],
)
def test_only_the_kiosks_host_names_and_port_are_served(
    locker: Locker, host: str, status: int
) -> None:
    web = client_of(create_app(locker, KioskConfig(allowed_hosts=("Robot.Campus",))))
    response = web.get("/api/status", headers={"Host": host})
    assert response.status_code == status
    assert response.is_json


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://localhost:8080", 200),  # another of the kiosk's own names
        ("http://127.0.0.1:8080", 200),
        ("http://localhost", 403),
        ("https://127.0.0.1:8080", 403),
        ("http://evil.test:8080", 403),
        ("null", 403),
        ("http://127.0.0.1:8080/path", 403),
    ],
)
def test_the_origin_must_be_one_of_the_kiosks_names(
    web: FlaskClient, origin: str, status: int
) -> None:
    response = web.post("/api/code", json={"code": GOOD}, headers={"Origin": origin})
    assert response.status_code == status


# Attempt limits per client address and operator id ----------------------------------------


@dataclass
class FakeClock:
    now: float = 0.0  # [s]

    def __call__(self) -> float:
        return self.now


def limited(locker: Locker, **config: Any) -> tuple[FlaskClient, FakeClock]:
    clock = FakeClock()
    app = create_app(locker, KioskConfig(kiosk_id="gate-3", **config), clock=clock)
    return client_of(app), clock


def load_from(web: FlaskClient, address: str, **changes: str) -> Any:
    return web.post("/api/load", json={**LOAD, **changes}, environ_base={"REMOTE_ADDR": address})


def test_one_client_gets_at_most_ten_credential_guesses_a_minute(locker: Locker) -> None:
    """A guesser that retries the moment the kiosk lets it, for ten (simulated) minutes."""
    web, clock = limited(locker)
    guesses: list[float] = []  # [s] when a guess reached the locker
    answers = 0
    while clock.now < 600.0:
        before = len(locker.calls)
        response = load_from(web, "10.0.0.66", operator_credential=f"guess-{answers}")
        answers += 1
        if len(locker.calls) > before:
            guesses.append(clock.now)
            assert response.status_code == 422
            continue
        assert response.status_code == 429
        body = response.json
        assert body is not None
        assert body["error"] == "locked_out" and body["field"] == "operator_credential"
        assert body["scope"] == "client" and body["retry_after"] > 0.0
        assert int(response.headers["Retry-After"]) >= 1
        clock.now += body["retry_after"]
    per_minute = max(sum(1 for t in guesses if s <= t < s + 60.0) for s in guesses)
    assert per_minute <= 10
    assert len(guesses) < 40  # backoff, not just the ceiling: ~7 in the first minute, then fewer
    assert stats_of(web.application).throttled == answers - len(guesses)
    assert stats_of(web.application).credential_failures == len(guesses)


def test_an_operator_id_is_limited_across_client_addresses(locker: Locker) -> None:
    web, _clock = limited(locker)
    for number in range(3):
        assert load_from(web, f"10.0.1.{number}", operator_credential="nope").status_code == 422
    refused = load_from(web, "10.0.1.99")  # the right credential, but op-7 is locked for now
    assert refused.status_code == 429
    assert refused.json is not None and refused.json["scope"] == "operator"
    other = load_from(web, "10.0.1.99", operator_id="op-8")
    assert other.status_code == 200
    assert len(locker.calls) == 4


def test_a_mistyped_credential_then_the_right_one_loads(locker: Locker) -> None:
    web, _clock = limited(locker)
    assert load_from(web, "127.0.0.1", operator_credential="s3cret-pas").status_code == 422
    assert load_from(web, "127.0.0.1").status_code == 200


def test_refusals_naming_other_fields_and_silence_are_not_guesses(locker: Locker) -> None:
    web, _clock = limited(locker, operator_free_attempts=1)
    locker.load_error = "field 'stop' = 'moon' is not a stop of this site"
    for _ in range(3):
        assert load_from(web, "10.0.0.5").status_code == 422
    locker.reachable = False
    for _ in range(3):
        assert load_from(web, "10.0.0.5").status_code == 503
    assert stats_of(web.application).throttled == 0


def test_refused_codes_are_limited_per_client_address(locker: Locker) -> None:
    locker.max_wrong = 1000  # the locker's own lockout out of the way
    web, clock = limited(locker)
    flood = {"REMOTE_ADDR": "10.0.0.66"}
    for _ in range(5):
        assert (
            web.post("/api/code", json={"code": "00000000"}, environ_base=flood).status_code == 200
        )
    throttled = web.post("/api/code", json={"code": "00000000"}, environ_base=flood)
    assert throttled.status_code == 429
    body = throttled.json
    assert body is not None and body["error"] == "locked_out" and body["permanent"] is False
    assert body["retry_after"] == 2.0 and throttled.headers["Retry-After"] == "2"
    assert len(locker.calls) == 5
    screen = web.post("/api/code", json={"code": GOOD})  # the robot's own screen is not blocked
    assert screen.status_code == 200 and screen.json is not None and screen.json["ok"] is True
    clock.now += 2.0
    assert web.post("/api/code", json={"code": "00000000"}, environ_base=flood).status_code == 200


# Total input: every body gets a JSON answer naming the problem -------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "expected"),
    [
        ("/api/code", b"[" * 5000 + b"]" * 5000, "nested deeper than 4 levels"),
        ("/api/load", b"[" * 5000 + b"]" * 5000, "nested deeper than 4 levels"),
        ("/api/code", b'["12345678"]', "not an array"),
        ("/api/code", b'{"code": NaN}', "NaN is not a JSON number"),
        ("/api/load", b'{"size": 1e400}', "overflows"),
        ("/api/code", b'{"code": ' + b"1" * 4400 + b"}", "4400 digits is too long"),
        ("/api/code", b'{"code": "4829\xc0\xaf1375"}', "not UTF-8"),
        ("/api/code", b'{"code": "1", "code": "2"}', "appears twice"),
        ("/api/code", b"", "the body is empty"),
        ("/api/load", b"{'a': 1}", "not valid JSON"),
    ],
)
def test_malformed_bodies_get_a_json_400_naming_the_problem(
    web: FlaskClient, locker: Locker, path: str, raw: bytes, expected: str
) -> None:
    response = web.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400, response.data[:200]
    assert response.is_json and response.json is not None
    assert expected in response.json["message"]
    assert locker.calls == []


@pytest.mark.parametrize(
    ("changes", "bad_field", "code_point"),
    [
        ({"parcel_id": "P-100\x00"}, "parcel_id", "U+0000"),
        ({"recipient": "a@b.test\r\nBcc: x"}, "recipient", "U+000D"),
        ({"stop": "library\u202e"}, "stop", "U+202E"),
        ({"operator_id": "op\ud800"}, "operator_id", "U+D800"),
        ({"operator_credential": "pass\x7f"}, "operator_credential", "U+007F"),
    ],
)
def test_control_characters_in_load_fields_are_named(
    web: FlaskClient, locker: Locker, changes: dict[str, str], bad_field: str, code_point: str
) -> None:
    response = web.post("/api/load", json={**LOAD, **changes})
    assert response.status_code == 400
    assert response.json is not None and response.json["field"] == bad_field
    assert code_point in response.json["message"]
    assert locker.calls == []


def test_a_code_with_a_nul_is_refused_before_the_locker(web: FlaskClient, locker: Locker) -> None:
    response = web.post("/api/code", json={"code": "4829137\x00"})
    assert response.status_code == 400 and locker.calls == []


def test_http_errors_and_oversized_bodies_are_json(web: FlaskClient) -> None:
    missing = web.get("/nowhere")
    assert missing.status_code == 404 and missing.is_json
    assert missing.json is not None and missing.json["error"] == "not_found"
    wrong_method = web.put("/api/code", json={"code": GOOD})
    assert wrong_method.status_code == 405 and wrong_method.is_json
    huge = web.post("/api/load", json={**LOAD, "recipient": "x" * 20_000})
    assert huge.status_code == 413 and huge.is_json
    assert huge.json is not None and huge.json["error"] == "too_large"
    assert "larger than 16384 bytes" in huge.json["message"]


def test_an_unexpected_failure_is_a_counted_json_500_that_logs_no_secret(
    web: FlaskClient, locker: Locker, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: LoadRequest) -> LoadResult:
        raise RuntimeError(f"serialiser choked on {request.operator_credential}")

    locker.load_parcel = broken  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG)
    response = web.post("/api/load", json=LOAD)
    assert response.status_code == 500
    assert response.is_json and response.json is not None
    assert response.json["error"] == "internal"
    assert stats_of(web.application).internal_errors == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "internal error (RuntimeError)" in logged and "broken" in logged
    assert CREDENTIAL not in logged
    # The limiter released the attempt: the next load is admitted.
    locker.load_parcel = Locker().load_parcel  # type: ignore[method-assign]
    assert web.post("/api/load", json=LOAD).status_code == 200
