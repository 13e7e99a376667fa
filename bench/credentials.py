"""Credential guessing and audit flooding against the real locker node (issue 11).

operator_guesses_per_min: one client sends wrong operator credentials to
  /locker/load_parcel over Fast DDS as fast as the locker answers, alternating a fixed operator
  id (the registered one) and a fresh random id per attempt. A guess counts when the locker
  evaluated the credential ("rejected"); answers "locked out" are refusals without a check.
  Counted over the first ``--seconds`` of the flood, not scaled: the free attempts come first
  and the backoff only lengthens, so scaling a short window up would over-state the rate and
  the 60 s window of the full run is the measurement. ``--quick`` counts 22 s (a lower bound;
  ``operator_next_guess_s`` says when the locker would take the next guess). Target <= 10.
audit_rows_per_min_flood: rows the audit log grew by (counted in the database) while the same
  client also floods /locker/submit_code with wrong codes from rotating kiosk ids at an armed
  stop with a loaded parcel, during the window (again not scaled; the refusal summaries are
  written once per ``refusal_summary_window`` = 60 s, so only the full run sees them). Target
  <= 100.
http_operator_guesses_per_min: the same operator guessing through the kiosk's /api/load (the
  kiosk node started as a process, as the kiosk tests do) against a fresh locker; guesses the
  locker evaluated in the window. Answers 429 are the kiosk's own per-client limit.

    python bench/credentials.py [--quick] [--seconds S]

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.notify import latest_codes
from xiaomanlv_locker.operators import add_operator

REPO = Path(__file__).resolve().parents[1]
OPERATOR = ("op1", "station-secret-1")
WRONG = "not-the-credential"
SITE_STOPS = ("A 0 0",)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def audit_rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


def specs(folder: Path, kiosk_port: int | None) -> list[Any]:
    """The locker (and the kiosk) of the sim profile, on ``folder`` and a free port."""
    from xiaomanlv_bringup.graph import load_profile, read_executables
    from xiaomanlv_core.paths import executables_file, graph_file

    profile = load_profile(graph_file(), "sim", executables=read_executables(executables_file()))
    overrides: dict[str, dict[str, Any]] = {
        "locker": {
            "data_dir": str(folder),
            "site_stops": list(SITE_STOPS),
            "sim_actor_delay": 0.1,
            "status_rate": 2.0,
        },
        "kiosk": {"port": kiosk_port or 0, "service_timeout": 10.0},
    }
    chosen = []
    for spec in profile.nodes:
        if spec.name == "locker" or (spec.name == "kiosk" and kiosk_port):
            path = folder / f"{spec.name}.params.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides[spec.name]}}))
            chosen.append(dataclasses.replace(spec, parameters=(*spec.parameters, path)))
    return chosen


def dds_flood(seconds: float) -> dict[str, Any]:
    """Operator guesses and wrong codes over DDS against one locker node for ``seconds``."""
    from nav_msgs.msg import Odometry
    from xiaomanlv.srv import ArmStop, LoadParcel, SubmitCode

    from xiaomanlv_bringup.ros.session import GraphSession, reserved_domain_id

    folder = Path(tempfile.mkdtemp(prefix="locker-credentials-"))
    add_operator(LockerConfig(data_dir=str(folder)), *OPERATOR, n=2**12)
    db = folder / "locker.db"
    with reserved_domain_id() as domain, GraphSession(specs(folder, None), domain, grace=3.0) as s:
        s.wait_for_topics(["/locker/events"], timeout=30)
        odom = s.client.create_publisher(Odometry, "/wheel/odom", 10)
        s.client.create_timer(0.02, lambda: odom.publish(Odometry()))
        time.sleep(1.0)
        request = LoadParcel.Request(
            parcel_id="bench-1",
            recipient="r@example.org",
            stop="A",
            size="small",
            operator_id=OPERATOR[0],
            operator_credential=OPERATOR[1],
        )
        loaded = s.call(LoadParcel, "/locker/load_parcel", request, timeout=30.0)
        assert loaded.success, loaded.message
        time.sleep(1.0)  # the simulated operator places the parcel and closes the door
        armed = s.call(ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True))
        assert armed.success, armed.message
        code = latest_codes(folder / "notifications.jsonl")["bench-1"]
        wrong_code = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
        before = audit_rows(db)
        answers: Counter[str] = Counter()
        next_guess = 0.0  # [s] the locker's last "locked out for another N s"
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            operator = OPERATOR[0] if k % 2 == 0 else f"guess-{secrets.token_hex(4)}"
            guess = LoadParcel.Request(
                parcel_id=f"g-{k}",
                recipient="r@example.org",
                stop="A",
                size="small",
                operator_id=operator,
                operator_credential=WRONG,
            )
            got = s.call(LoadParcel, "/locker/load_parcel", guess, timeout=30.0)
            found = re.search(r"locked out for another (\d+) s", got.message)
            answers["locked_out" if found else "evaluated"] += 1
            next_guess = float(found.group(1)) if found else 0.0
            code_request = SubmitCode.Request(kiosk_id=f"kiosk-{k % 97}", code=wrong_code)
            s.call(SubmitCode, "/locker/submit_code", code_request, timeout=30.0)
            answers["codes"] += 1
            k += 1
        elapsed = time.monotonic() - start
        time.sleep(0.5)
        rows = audit_rows(db) - before
    say(f"  DDS: {dict(answers)} in {elapsed:.1f} s; audit +{rows} rows")
    return {
        "operator_guesses_per_min": answers["evaluated"],
        "operator_attempts": answers["evaluated"] + answers["locked_out"],
        "operator_next_guess_s": next_guess,
        "wrong_codes_sent": answers["codes"],
        "audit_rows_per_min_flood": rows,
        "flood_seconds": round(elapsed, 1),
    }


def http_flood(seconds: float) -> dict[str, Any]:
    """Operator guesses through the kiosk's /api/load against a fresh locker."""
    from nav_msgs.msg import Odometry

    from xiaomanlv_bringup.ros.session import GraphSession, reserved_domain_id

    folder = Path(tempfile.mkdtemp(prefix="locker-credentials-http-"))
    add_operator(LockerConfig(data_dir=str(folder)), *OPERATOR, n=2**12)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/load"
    statuses: Counter[str] = Counter()
    with reserved_domain_id() as domain, GraphSession(specs(folder, port), domain, grace=3.0) as s:
        s.wait_for_topics(["/locker/events"], timeout=30)
        odom = s.client.create_publisher(Odometry, "/wheel/odom", 10)
        s.client.create_timer(0.02, lambda: odom.publish(Odometry()))
        deadline = time.monotonic() + 30.0
        while True:  # the kiosk's web server is up and reaches the locker
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    return {"http_operator_guesses_per_min": None, "http_error": "no kiosk"}
                time.sleep(0.2)
        time.sleep(1.0)
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            body = {
                "parcel_id": f"h-{k}",
                "recipient": "r@example.org",
                "stop": "A",
                "size": "small",
                "operator_id": OPERATOR[0] if k % 2 == 0 else f"guess-{secrets.token_hex(4)}",
                "operator_credential": WRONG,
            }
            request = urllib.request.Request(
                url,
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Host": f"127.0.0.1:{port}"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    answer = json.load(response)
                    status = response.status
            except urllib.error.HTTPError as err:
                status = err.code
                try:
                    answer = json.load(err)
                except ValueError:
                    answer = {}
            message = str(answer.get("message", ""))
            if status == 429:
                statuses["kiosk_throttled"] += 1
            elif "locked out" in message:
                statuses["locker_locked_out"] += 1
            elif answer.get("field") == "operator_credential":
                statuses["evaluated"] += 1
            else:
                statuses[f"other_{status}"] += 1
            k += 1
        elapsed = time.monotonic() - start
    say(f"  HTTP: {dict(statuses)} in {elapsed:.1f} s")
    return {
        "http_operator_guesses_per_min": statuses["evaluated"],
        "http_answers": dict(statuses),
        "http_seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="credential guessing and audit flood bench")
    parser.add_argument("--quick", action="store_true", help="22 s windows, under a minute")
    parser.add_argument("--seconds", type=float, default=None, help="flood window [s]")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    seconds = args.seconds or (22.0 if args.quick else 60.0)
    result: dict[str, Any] = {"bench": "credentials", "quick": args.quick}
    load_before = os.getloadavg()[0]
    say(f"credentials bench: {seconds:g} s floods against the real locker node")
    result.update(dds_flood(seconds))
    if not args.skip_http:
        result.update(http_flood(seconds))
    result["targets"] = {"operator_guesses_per_min": 10, "audit_rows_per_min_flood": 100}
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
