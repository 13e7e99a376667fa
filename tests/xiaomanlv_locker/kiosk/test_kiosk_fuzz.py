"""Property: whatever a client sends, the kiosk answers JSON with a 2xx or 4xx status.

Hypothesis draws JSON documents of every shape (scalars, arrays, objects of any depth, huge and
non-finite numbers, strings with control characters, NUL and lone surrogates, the right keys
with wrong types), raw byte strings, and headers, and throws them at the endpoints through
Flask's test client; no answer may be HTML, a 5xx, or reach the locker with unusable input.
"""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiosk_rig import LOAD, Locker, client_of

from xiaomanlv_locker.kiosk.app import LOAD_FIELDS, create_app
from xiaomanlv_locker.kiosk.client import LoadRequest
from xiaomanlv_locker.kiosk.config import KioskConfig

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
PATHS = ("/api/code", "/api/load", "/api/status", "/", "/operator", "/nowhere")

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["", " ", "\x00", "12345678\x00", "\ud800", "\u202e", "x" * 200, "48291375"]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(texts, st.sampled_from(LOAD_FIELDS)), inner, max_size=6),
    ),
    max_leaves=20,
)
# The right keys, each with any value: the shape the endpoints look at.
forms = st.fixed_dictionaries(
    {name: st.one_of(st.just(LOAD[name]), scalars, documents) for name in LOAD_FIELDS},
    optional={"code": st.one_of(st.just("48291375"), scalars, documents)},
)
bodies = st.one_of(
    documents.map(lambda doc: json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")),
    forms.map(lambda doc: json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    st.integers(min_value=0, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=0, max_value=3000).map(lambda n: b'{"code":' * n + b"1" + b"}" * n),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.sampled_from(["http://127.0.0.1:8080", "http://evil.test", "null", ""]),
        "Sec-Fetch-Site": st.sampled_from(["same-origin", "cross-site", "none", "x"]),
        "Host": st.sampled_from(["127.0.0.1:8080", "evil.test:8080", "a@b", "[::1]:8080", ""]),
    },
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=latin-1", "text/plain", "application/x+json"]
)


def usable(value: Any) -> bool:
    return isinstance(value, str) and value.isprintable() and 0 < len(value) <= 128


class CheckingLocker(Locker):
    """The in-test locker, asserting that only usable input reaches it."""

    def submit_code(self, kiosk_id: str, code: str) -> Any:
        assert code.isascii() and code.isdigit() and len(code) == 8, repr(code)
        return super().submit_code(kiosk_id, code)

    def load_parcel(self, request: LoadRequest) -> Any:
        for name in LOAD_FIELDS:
            assert usable(getattr(request, name)), (name, getattr(request, name))
        return super().load_parcel(request)


def check_answer(response: Any) -> None:
    assert response.is_json, (response.status_code, response.data[:120])
    assert response.status_code < 500, response.json
    if response.mimetype == "application/json":
        body = response.get_json()
        assert isinstance(body, dict)
        # Standard JSON only: no NaN/Infinity a browser's JSON.parse would reject.
        json.loads(response.data, parse_constant=not_json)


def not_json(name: str) -> Any:
    raise AssertionError(f"the answer holds {name}, which is not JSON")


def web() -> FlaskClient:
    return client_of(create_app(CheckingLocker(max_wrong=10**9), KioskConfig()))


@SETTINGS
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    head=headers,
    content_type=content_types,
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
)
def test_every_request_gets_json_below_500(
    path: str, body: bytes, head: dict[str, str], content_type: str, method: str
) -> None:
    client = web()
    response = client.open(
        path, method=method, data=body, headers={**head, "Content-Type": content_type}
    )
    if path in ("/", "/operator") and method == "GET" and response.status_code == 200:
        assert response.mimetype == "text/html"  # the two pages
        return
    check_answer(response)


@SETTINGS
@given(form=forms)
def test_any_load_form_is_a_2xx_or_4xx_json_answer(form: dict[str, Any]) -> None:
    client = web()
    try:
        raw = json.dumps(form, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):  # pragma: no cover - every drawn form is dumpable
        return
    check_answer(client.post("/api/load", data=raw, content_type="application/json"))
    check_answer(client.post("/api/code", data=raw, content_type="application/json"))
