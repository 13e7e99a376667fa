"""Locker messages to the kiosk's dataclasses, with hand-built messages."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from builtin_interfaces.msg import Time
from xiaomanlv.msg import CompartmentStatus
from xiaomanlv.srv import LoadParcel, SubmitCode

from xiaomanlv_locker.kiosk.client import CodeResult, CompartmentView, LoadResult
from xiaomanlv_locker.kiosk.ros.client import status_topic
from xiaomanlv_locker.kiosk.ros.conversions import (
    code_result,
    compartment_view,
    load_result,
    shown_text,
    stamp_seconds,
)


def test_status_keeps_door_state_and_drops_parcel_and_stop() -> None:
    msg = CompartmentStatus(
        compartment=17,
        size="large",
        state="open",
        parcel_id="P-1",
        stop="library",
        door_closed=False,
        fault="",
    )
    assert compartment_view(msg) == CompartmentView(17, "large", "open", door_closed=False)


@pytest.mark.parametrize("number", [0, 51])
def test_status_of_a_compartment_outside_1_to_50_is_refused(number: int) -> None:
    with pytest.raises(ValueError, match=f"compartment {number} is outside 1..50"):
        compartment_view(CompartmentStatus(compartment=number))


def test_submit_code_response() -> None:
    response = SubmitCode.Response(success=False, compartment=0, message="wait", retry_after=30.0)
    assert code_result(response) == CodeResult(False, 0, "wait", 30.0)


def test_load_response_expiry_in_seconds_and_none_when_refused() -> None:
    ok = LoadParcel.Response(
        success=True, compartment=3, expires=Time(sec=100, nanosec=500_000_000)
    )
    assert load_result(ok) == LoadResult(True, "", 3, expires=100.5)
    refused = LoadParcel.Response(success=False, message="size 'xl' unknown")
    assert load_result(refused) == LoadResult(False, "size 'xl' unknown", 0, None)
    assert stamp_seconds(Time()) is None


def test_status_topics_are_numbered_with_two_digits() -> None:
    assert status_topic(7) == "/locker/compartment_07/status"
    assert status_topic(50) == "/locker/compartment_50/status"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"size": "huge"}, "field 'size' = 'huge'"),
        ({"size": ""}, "field 'size' = ''"),
        ({"state": "exploded"}, "field 'state' = 'exploded'"),
        ({"state": "open\x00"}, "field 'state'"),
        ({"fault": "<script>"}, "field 'fault' = '<script>'"),
        ({"fault": "x" * 65}, "field 'fault'"),
    ],
)
def test_a_status_the_locker_never_sends_is_refused_naming_the_field(
    fields: dict[str, str], expected: str
) -> None:
    msg = CompartmentStatus(compartment=3, size="small", state="loaded")
    for name, value in fields.items():
        setattr(msg, name, value)
    with pytest.raises(ValueError, match=re.escape(expected)):
        compartment_view(msg)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (SubmitCode.Response(success=False, retry_after=math.nan), "'retry_after' = nan"),
        (SubmitCode.Response(success=False, retry_after=-1.0), "'retry_after' = -1.0"),
        (SubmitCode.Response(success=True, compartment=0), "'compartment' = 0"),
        (SubmitCode.Response(success=True, compartment=200), "'compartment' = 200"),
    ],
)
def test_a_code_answer_the_locker_never_sends_is_refused(response: Any, expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        code_result(response)


def test_an_infinite_retry_after_is_an_operator_lockout_not_an_error() -> None:
    result = code_result(SubmitCode.Response(success=False, retry_after=math.inf))
    assert math.isinf(result.retry_after)


def test_a_load_success_without_a_compartment_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'compartment' = 0 is outside 1\.\.50"):
        load_result(LoadParcel.Response(success=True, compartment=0))


def test_locker_messages_are_shown_printable_and_capped() -> None:
    result = load_result(LoadParcel.Response(success=False, message="bad\x1b[31m\n" + "y" * 900))
    assert result.message.startswith("bad\ufffd[31m\ufffdyyy")
    assert len(result.message) == 500 and result.message.endswith("\u2026")
    assert shown_text("ok") == "ok"
