"""The locker kiosk: a Flask app for the robot's touchscreen.

Two pages and three JSON endpoints, served on the robot only (default 127.0.0.1):

- ``/``: the recipient keypad. A pickup code goes to ``POST /api/code``; the page shows which
  door opened, why a code was refused, or the lockout countdown (``retry_after``).
- ``/operator``: loading at the station. Operator id and credential, parcel id, recipient,
  stop and size go to ``POST /api/load``; the page shows the compartment or the error naming
  the field.
- ``GET /api/status``: whether the locker answers, and its compartments (no recipient, no code,
  no parcel id), which the pages poll.

Every request gets a JSON answer, whatever it carries: a body that is not UTF-8, not JSON,
not an object, nested too deep, with NaN or huge numbers, wrong types or control characters
gets 400 naming the problem (:mod:`xiaomanlv_locker.kiosk.body`); 404, 405 and 413 are JSON
too; an unexpected exception is logged (its traceback, never its message, which could hold
input), counted in ``internal_errors`` and answered with a JSON 500.

Input is checked here before any locker call (a code of the wrong length or with non-digits,
an empty, oversized or unprintable field, an unknown size). Then the kiosk's own attempt
limits (:class:`xiaomanlv_locker.kiosk.limiter.AttemptLimiter`): refused codes per client
address, wrong operator credentials per client address and per operator id, each with backoff,
lockout and a per-minute ceiling, answered with 429 and ``retry_after`` before the locker is
asked. The locker itself decides everything else: whether a code or credential is right, its
own lockouts, which compartment a parcel gets.

Same site: a request must name one of the kiosk's own host names in ``Host`` (the bound
address, localhost, 127.0.0.1, [::1] and ``allowed_hosts``, with ``port``), so a page that
rebinds its DNS name to the robot's address is refused (400 ``bad_host``) instead of reaching
the API as its own origin. The ``POST`` endpoints accept only ``application/json`` bodies (a
cross-origin page cannot send those without a CORS preflight, which this app never grants) and
refuse a request whose ``Origin`` is not one of those names or whose ``Sec-Fetch-Site`` says
it came from another site. There are no cookies or sessions to steal. Nothing logged here
contains a code or a credential.

Flask application factory pattern: https://flask.palletsprojects.com/en/stable/patterns/appfactories/
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from xiaomanlv_locker.kiosk.body import BodyError, parse_object, text_problem
from xiaomanlv_locker.kiosk.client import (
    CodeResult,
    LoadRequest,
    LockerClient,
    LockerUnavailableError,
)
from xiaomanlv_locker.kiosk.config import KioskConfig, normal_host
from xiaomanlv_locker.kiosk.limiter import Admission, AttemptLimiter

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
MAX_BODY = 16 * 1024  # [bytes] a code or a load request is tiny
CREDENTIAL_FIELDS = ("operator_credential", "operator_id")  # a refusal naming one is a guess
_HOST_CHARS = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,260}$")  # no userinfo, path or spaces
HTTP_ERRORS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


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
    throttled: int = 0  # refused by the kiosk's own attempt limits (429)
    credential_failures: int = 0  # loads the locker refused for the operator's credential
    refused_requests: int = 0  # wrong Host, cross-site, not JSON, or an HTTP error (4xx)
    internal_errors: int = 0  # unexpected exceptions answered with 500
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
        problem = text_problem(value, MAX_FIELD)
        if problem is not None:
            return name, f"{label} {problem}."
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


def host_allowed(host: str, names: frozenset[str], port: int) -> bool:
    """``host`` (a ``Host`` header or an origin's ``host[:port]``) is one of ``names`` on
    ``port`` (80 when it names none). Userinfo, paths and other decorations are refused."""
    if not _HOST_CHARS.match(host):
        return False
    try:
        parts = urlsplit(f"//{host}")
        name, named_port = parts.hostname, parts.port
        bare = normal_host(name or "")
    except ValueError:
        return False
    return bare in names and (80 if named_port is None else named_port) == port


def _same_site(req: Any, names: frozenset[str], port: int) -> bool:
    """False if the browser says the request came from another origin or site: a
    ``Sec-Fetch-Site`` other than same-origin/none, or an ``Origin`` that is not one of the
    kiosk's own host names over plain HTTP."""
    fetch_site = req.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = req.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme != req.scheme or parts.path or parts.query or parts.fragment:
        return False
    return host_allowed(parts.netloc, names, port)


def _json_error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(ok=False, message=message, **extra), status


def _locked_out(message: str, retry_after: float, **extra: Any) -> tuple[Response, int]:
    """429 with ``retry_after`` [s] in the body and whole seconds in ``Retry-After``."""
    wait = max(0.1, math.ceil(retry_after * 10.0) / 10.0)
    response = jsonify(ok=False, error="locked_out", retry_after=wait, message=message, **extra)
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response, 429


def _limiter(config: KioskConfig, kind: str, clock: Callable[[], float]) -> AttemptLimiter:
    free, per_minute = {
        "operator": (config.operator_free_attempts, config.operator_attempts_per_minute),
        "code": (config.code_free_attempts, config.code_attempts_per_minute),
    }[kind]
    return AttemptLimiter(
        free_attempts=free,
        per_minute=per_minute,
        backoff_base=config.backoff_base,
        backoff_max=config.backoff_max,
        forget_after=config.forget_after,
        clock=clock,
    )


def create_app(
    client: LockerClient, config: KioskConfig, clock: Callable[[], float] = time.monotonic
) -> Flask:
    """Build the kiosk web app around ``client``.

    Args:
        client: the locker, e.g. :class:`xiaomanlv_locker.kiosk.ros.client.RosLockerClient`.
        config: kiosk id (sent with every code), code length, host names and attempt limits.
        clock: [s] monotonic time of the attempt limits (injectable for tests).
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False
    stats = KioskStats()
    app.extensions[STATS_KEY] = stats
    host_names = config.host_names()
    code_limits = _limiter(config, "code", clock)
    operator_limits = _limiter(config, "operator", clock)

    def client_key() -> str:
        return f"client:{request.remote_addr or 'unknown'}"

    def json_body() -> dict[str, Any]:
        """The request's JSON object. Raises BodyError naming what is wrong."""
        return parse_object(request.get_data(cache=False))

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        status = err.code or 500
        stats.add("refused_requests" if status < 500 else "internal_errors")
        if status == 413:
            message = f"The body is larger than {MAX_BODY} bytes."
        else:
            message = f"{err.name}: {err.description}" if err.description else err.name
        return _json_error(status, message, error=HTTP_ERRORS.get(status, f"http_{status}"))

    @app.errorhandler(Exception)
    def _internal_error(err: Exception) -> tuple[Response, int]:
        if isinstance(err, HTTPException):
            return _http_error(err)
        stats.add("internal_errors")
        # The traceback's frames, never the exception's message: that could hold input.
        log.error(
            "internal error (%s) answering %s %s:\n%s",
            type(err).__name__,
            request.method,
            request.path,
            "".join(traceback.format_tb(err.__traceback__)).rstrip(),
        )
        return _json_error(500, "The kiosk failed; please try again.", error="internal")

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
        host = request.headers.get("Host", "")
        if not host_allowed(host, host_names, config.port):
            stats.add("refused_requests")
            log.warning("refused a request for host %r (parameter 'allowed_hosts')", host[:80])
            return _json_error(
                400,
                f"Host {host[:80]!r} is not a name of this kiosk (parameter 'allowed_hosts').",
                error="bad_host",
            )
        if request.method != "POST":
            return None
        if not _same_site(request, host_names, config.port):
            stats.add("refused_requests")
            log.warning("refused a cross-site %s %s", request.method, request.path)
            return _json_error(403, "Cross-site requests are not accepted.", error="cross_site")
        if not request.is_json:
            stats.add("refused_requests")
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
        try:
            code = json_body().get("code")
        except BodyError as err:
            stats.add("invalid_input")
            log.info("code refused before the locker: %s", err)
            return _json_error(400, f"Send the code as a JSON object: {err}.", error="invalid")
        problem = check_code(code, config.code_length)
        if problem is not None:
            stats.add("invalid_input")
            log.info("code refused before the locker: malformed input")
            return _json_error(400, problem, error="invalid_code")
        assert isinstance(code, str)
        admission = code_limits.begin([client_key()])
        if not admission.admitted:
            return _throttled(admission, "code")
        failed: bool | None = None
        try:
            result = client.submit_code(config.kiosk_id, code)
            failed = not result.success
        except LockerUnavailableError as err:
            stats.add("unavailable")
            log.warning("submit_code: locker unavailable: %s", err)
            return _json_error(503, UNAVAILABLE, error="unavailable")
        finally:
            code_limits.finish(admission, failed=failed)
        return _code_response(result, code)

    def _throttled(admission: Admission, kind: str) -> tuple[Response, int]:
        stats.add("throttled")
        scope = admission.key.split(":", 1)[0]
        log.info(
            "%s refused by the kiosk's %s limit for %.1f s", kind, scope, admission.retry_after
        )
        if kind == "code":
            return _locked_out(
                "Too many wrong codes. Please wait before trying again.",
                admission.retry_after,
                permanent=False,
                scope=scope,
            )
        return _locked_out(
            f"Too many wrong credentials. Try again in {math.ceil(admission.retry_after)} s.",
            admission.retry_after,
            field="operator_credential",
            scope=scope,
        )

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
        try:
            body = json_body()
        except BodyError as err:
            stats.add("invalid_input")
            log.info("load refused before the locker: %s", err)
            return _json_error(400, f"Send the load form as a JSON object: {err}.", error="invalid")
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
        admission = operator_limits.begin([client_key(), f"operator:{load.operator_id}"])
        if not admission.admitted:
            return _throttled(admission, "load")
        failed: bool | None = None
        try:
            result = client.load_parcel(load)
            message = result.message.replace(load.operator_credential, "***")
            field = "" if result.success else field_named_in(message)
            if result.success:
                failed = False
            elif field in CREDENTIAL_FIELDS:
                failed = True
                stats.add("credential_failures")
        except LockerUnavailableError as err:
            stats.add("unavailable")
            log.warning("load_parcel: locker unavailable: %s", err)
            return _json_error(503, UNAVAILABLE, error="unavailable")
        finally:
            operator_limits.finish(admission, failed=failed)
        if not result.success:
            stats.add("loads_refused")
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
