"""The locker kiosk: a Flask app for the robot's touchscreen.

Two pages and three JSON endpoints, served on the robot only (default 127.0.0.1):

- ``/``: the recipient keypad. A pickup code goes to ``POST /api/code``; the page shows which
  door opened, why a code was refused, or the lockout countdown (``retry_after``).
- ``/operator``: loading at the station. Operator id and credential, parcel id, recipient,
  stop and size go to ``POST /api/load``; the page shows the compartment or the error naming
  the field.
- ``GET /api/status``: whether the locker answers, and its compartments (no recipient, no code,
  no parcel id), which the pages poll.

Input is checked here before any locker call (a code of the wrong length or with non-digits,
an empty or oversized field, an unknown size). The locker itself decides everything else:
whether a code is right, lockouts, which compartment a parcel gets.

Cross-site requests: the endpoints accept only ``application/json`` bodies (a cross-origin
page cannot send those without a CORS preflight, which this app never grants) and refuse a
request whose ``Origin`` or ``Sec-Fetch-Site`` says it came from another site. There are no
cookies or sessions to steal. Nothing logged here contains a code or a credential; Werkzeug's
access log shows only method, path and status.

Flask application factory pattern: https://flask.palletsprojects.com/en/stable/patterns/appfactories/
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider

from xiaomanlv_locker.kiosk.client import (
    CodeResult,
    LoadRequest,
    LockerClient,
    LockerUnavailableError,
)
from xiaomanlv_locker.kiosk.config import KioskConfig

log = logging.getLogger(__name__)

SIZES = ("small", "medium", "large")
MAX_FIELD = 128  # [characters] longest accepted text field
UNAVAILABLE = "Locker unavailable, please wait."
LOAD_FIELDS = ("operator_id", "operator_credential", "parcel_id", "recipient", "stop", "size")
FIELD_LABELS = {
    "operator_id": "Operator id",
    "operator_credential": "Credential",
    "parcel_id": "Parcel id",
    "recipient": "Recipient",
    "stop": "Stop",
    "size": "Size",
}
STATS_KEY = "xiaomanlv_kiosk_stats"


@dataclasses.dataclass
class KioskStats:
    """Counts of what the kiosk saw, for its /diagnostics. Thread-safe."""

    codes_accepted: int = 0
    codes_rejected: int = 0
    lockouts: int = 0
    invalid_input: int = 0  # refused here, before any locker call
    loads: int = 0
    loads_refused: int = 0
    unavailable: int = 0  # the locker did not answer
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                f.name: getattr(self, f.name)
                for f in dataclasses.fields(self)
                if not f.name.startswith("_")
            }


def stats_of(app: Flask) -> KioskStats:
    """The :class:`KioskStats` of an app made by :func:`create_app`."""
    stats = app.extensions[STATS_KEY]
    assert isinstance(stats, KioskStats)
    return stats


def check_code(code: Any, length: int) -> str | None:
    """Why ``code`` cannot be a pickup code of ``length`` digits, or None if it can."""
    if not isinstance(code, str) or not code:
        return f"Enter the {length}-digit code from your message."
    if not code.isascii() or not code.isdigit():
        return f"The code has digits only. Enter the {length}-digit code from your message."
    if len(code) != length:
        return f"The code has {length} digits; you entered {len(code)}."
    return None


def check_load(body: dict[str, Any]) -> tuple[str, str] | None:
    """The first bad field of a load request and why, or None if every field is usable."""
    for name in LOAD_FIELDS:
        value = body.get(name)
        label = FIELD_LABELS[name]
        if not isinstance(value, str) or not value.strip():
            return name, f"{label} is required."
        if len(value) > MAX_FIELD:
            return name, f"{label} is too long ({len(value)} characters, at most {MAX_FIELD})."
        if name == "size" and value not in SIZES:
            return name, f"Size must be one of {', '.join(SIZES)}, not {value!r}."
    return None


def field_named_in(message: str) -> str:
    """The load field a locker error message names (``""`` if none)."""
    lowered = message.lower()
    for name in LOAD_FIELDS:
        if name in lowered:
            return name
    return ""


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _same_site(req: Any) -> bool:
    """False if the browser says the request came from another origin or site."""
    fetch_site = req.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = req.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc == req.host and parts.scheme == req.scheme)


def _json_error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(ok=False, message=message, **extra), status


def create_app(client: LockerClient, config: KioskConfig) -> Flask:
    """Build the kiosk web app around ``client``.

    Args:
        client: the locker, e.g. :class:`xiaomanlv_locker.kiosk.ros.client.RosLockerClient`.
        config: kiosk id (sent with every code) and code length.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024  # [bytes] a code or a load request is tiny
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False
    stats = KioskStats()
    app.extensions[STATS_KEY] = stats

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def _guard() -> tuple[Response, int] | None:
        if request.method != "POST":
            return None
        if not _same_site(request):
            log.warning("refused a cross-site %s %s", request.method, request.path)
            return _json_error(403, "Cross-site requests are not accepted.", error="cross_site")
        if not request.is_json:
            return _json_error(415, "Send JSON (application/json).", error="not_json")
        return None

    @app.get("/")
    def recipient_page() -> str:
        return render_template(
            "recipient.html", code_length=config.code_length, kiosk_id=config.kiosk_id
        )

    @app.get("/operator")
    def operator_page() -> str:
        return render_template("operator.html", sizes=SIZES, kiosk_id=config.kiosk_id)

    @app.post("/api/code")
    def submit_code() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        code = body.get("code") if isinstance(body, dict) else None
        problem = check_code(code, config.code_length)
        if problem is not None:
            stats.add("invalid_input")
            log.info("code refused before the locker: malformed input")
            return _json_error(400, problem, error="invalid_code")
        assert isinstance(code, str)
        try:
            result = client.submit_code(config.kiosk_id, code)
        except LockerUnavailableError as err:
            stats.add("unavailable")
            log.warning("submit_code: locker unavailable: %s", err)
            return _json_error(503, UNAVAILABLE, error="unavailable")
        return _code_response(result, code)

    def _code_response(result: CodeResult, code: str) -> tuple[Response, int]:
        locker_says = result.message.replace(code, "*" * len(code)) if code else result.message
        if result.success:
            stats.add("codes_accepted")
            log.info("code accepted: door %d opened", result.compartment)
            door = result.compartment
            return jsonify(
                ok=True,
                compartment=door,
                message=f"Door {door} is open - take your parcel and close the door.",
            ), 200
        if math.isinf(result.retry_after):
            stats.add("lockouts")
            log.info("code refused: locked out until an operator clears the lock")
            return jsonify(
                ok=False,
                error="locked_out",
                permanent=True,
                retry_after=None,
                message="Too many wrong codes here. Please contact the operator.",
                detail=locker_says,
            ), 429
        if result.retry_after > 0.0:
            stats.add("lockouts")
            log.info("code refused: locked out for %.1f s", result.retry_after)
            response = jsonify(
                ok=False,
                error="locked_out",
                permanent=False,
                retry_after=result.retry_after,
                message="Too many wrong codes. Please wait before trying again.",
                detail=locker_says,
            )
            response.headers["Retry-After"] = str(max(1, round(result.retry_after)))
            return response, 429
        stats.add("codes_rejected")
        log.info("code refused by the locker")
        return jsonify(
            ok=False,
            error="rejected",
            retry_after=0.0,
            message="That code did not open a door. Check it and try again.",
            detail=locker_says,
        ), 200

    @app.post("/api/load")
    def load_parcel() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            stats.add("invalid_input")
            return _json_error(400, "Send the load form as a JSON object.", error="invalid")
        problem = check_load(body)
        if problem is not None:
            stats.add("invalid_input")
            name, why = problem
            log.info("load refused before the locker: field %s", name)
            return _json_error(400, why, error="invalid", field=name)
        load = LoadRequest(
            parcel_id=body["parcel_id"].strip(),
            recipient=body["recipient"].strip(),
            stop=body["stop"].strip(),
            size=body["size"],
            operator_id=body["operator_id"].strip(),
            operator_credential=body["operator_credential"],
        )
        try:
            result = client.load_parcel(load)
        except LockerUnavailableError as err:
            stats.add("unavailable")
            log.warning("load_parcel: locker unavailable: %s", err)
            return _json_error(503, UNAVAILABLE, error="unavailable")
        message = result.message.replace(load.operator_credential, "***")
        if not result.success:
            stats.add("loads_refused")
            field = field_named_in(message)
            log.info("load of parcel %s refused by the locker: %s", load.parcel_id, message)
            return _json_error(
                422, message or "The locker refused the parcel.", error="refused", field=field
            )
        stats.add("loads")
        log.info("parcel %s loaded into compartment %d", load.parcel_id, result.compartment)
        return jsonify(
            ok=True,
            compartment=result.compartment,
            parcel_id=load.parcel_id,
            expires=_iso(result.expires),
            message=(
                f"Put parcel {load.parcel_id} into compartment {result.compartment} "
                "and close the door."
            ),
        ), 200

    @app.get("/api/status")
    def status() -> Response:
        now = client.status()
        return jsonify(
            reachable=now.reachable,
            message="" if now.reachable else UNAVAILABLE,
            kiosk_id=config.kiosk_id,
            compartments=[
                {
                    "compartment": c.compartment,
                    "size": c.size,
                    "state": c.state,
                    "door_closed": c.door_closed,
                    "fault": c.fault,
                }
                for c in now.compartments
            ],
        )

    return app
