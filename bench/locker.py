"""Locker benchmarks: crash safety, code-to-actuator latency over DDS, brute-force bound.

    source tools/env.sh && python bench/locker.py [--quick] [--skip-latency] [--skip-crash]

crash: a worker process runs the real locker core (the same Locker facade, SQLite store,
  simulated driver and JSON-lines sender the node uses) through random load / arm / code /
  take / return sequences and is killed with SIGKILL at a random point: mostly it kills itself
  at the N-th crash point (before BEGIN, before COMMIT, after COMMIT, before/after every
  actuation, person action and notification; N random), sometimes the bench kills it after a
  random delay. The next worker restarts the locker on the same files (reconcile) and checks
  every invariant against an independent record: the ledger of acknowledged operations (fsync'ed
  by the worker only after a call returned) and the simulated physical world (which
  compartment physically holds which parcel, which parcels people took). A parcel lost
  (acknowledged but unknown, physically inside but not recorded there, taken but still
  "loaded" behind a closed door) or duplicated (in two places) counts in lost_or_duplicated.
latency: the real locker node over Fast DDS; this process publishes odometry and calls
  /locker/submit_code with right and wrong codes while the node publishes 50 statuses at
  10 Hz; for right codes, latency = CLOCK_MONOTONIC at the sim actuator's unlock (its
  actuation log) minus CLOCK_MONOTONIC just before the request was sent. Lockouts are set
  out of reach for this run (config printed) so every wrong code is compared, not refused.
  The 1-min load average (before/after) and the disk's fsync latency (a commit needs one
  before the door opens) are printed with it: on a shared machine they explain the tail.
bruteforce_p: ``stop_max_failures * armed_codes / 10**code_digits`` from the default config,
  with every compartment armed at one stop (the worst case); see docs/locker.md.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xiaomanlv_locker.codes import load_or_create_secret
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.hardware import SimDriver
from xiaomanlv_locker.locker import Locker
from xiaomanlv_locker.machine import FREE, State
from xiaomanlv_locker.notify import JsonLinesSender, Notification, read_notifications
from xiaomanlv_locker.operators import add_operator
from xiaomanlv_locker.store import Store, Transaction

OPERATOR = ("bench-op", "bench-credential")
STOPS = ("A", "B", "C")
SITE_STOPS = tuple(f"{name} {10.0 * k} 0" for k, name in enumerate(STOPS))  # name x y [m]
LAYOUT = ("small 4", "medium 3", "large 1")  # small locker: compartments fill and recycle


# ---------------------------------------------------------------- worker (the crashing process)
class Crash:
    """Counts crash points; SIGKILLs this process at the chosen one."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0

    def point(self) -> None:
        self.count += 1
        if self.count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


CRASH = Crash(0)


class CrashStore(Store):
    @contextmanager
    def transaction(self, stamp: float) -> Iterator[Transaction]:
        CRASH.point()
        with super().transaction(stamp) as tx:
            yield tx
            CRASH.point()  # before COMMIT
        CRASH.point()  # after COMMIT


class CrashDriver(SimDriver):
    def unlock(self, compartment: int) -> None:
        CRASH.point()
        super().unlock(compartment)
        CRASH.point()

    def lock(self, compartment: int) -> None:
        CRASH.point()
        super().lock(compartment)
        CRASH.point()

    def take_parcel(self, compartment: int) -> str:
        CRASH.point()
        return super().take_parcel(compartment)

    def place_parcel(self, compartment: int, tag: str) -> None:
        CRASH.point()
        super().place_parcel(compartment, tag)

    def close_door(self, compartment: int) -> None:
        CRASH.point()
        super().close_door(compartment)


class CrashSender(JsonLinesSender):
    def send(self, notification: Notification) -> None:
        CRASH.point()
        super().send(notification)
        CRASH.point()


def bench_config(folder: Path) -> LockerConfig:
    return LockerConfig(
        data_dir=str(folder),
        layout=LAYOUT,
        sim_auto_actor=False,
        stop_free_attempts=10**6,
        kiosk_free_attempts=10**3,
        site_stops=SITE_STOPS,
    )


def open_locker(folder: Path) -> Locker:
    config = bench_config(folder)
    secret = load_or_create_secret(config.path("secret"))
    store = CrashStore(config.path("db"), secret)
    driver = CrashDriver(len(config.compartment_sizes()), state_path=config.path("sim_state"))
    locker = Locker(config, store, driver, CrashSender(config.path("notify")), secret)
    locker.observe_odom(0.0, 0.0)
    locker.reconcile()
    return locker


class Ledger:
    """The independent record: what the worker was told succeeded (fsync'ed after each ack)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # torn by the kill
        return out

    def write(self, **entry: Any) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def check(locker: Locker, ledger: Ledger) -> dict[str, list[str]]:
    """Invariants after a restart: parcel-level (lost/duplicated) and the rest."""
    lost: list[str] = []
    other: list[str] = []
    reader = locker.store.read()
    driver = locker.driver
    assert isinstance(driver, SimDriver)
    world = driver.world
    parcels = {p.parcel_id: p for p in reader.parcels()}
    compartments = {c.number: c for c in reader.compartments()}
    for entry in ledger.entries():
        if entry["op"] == "load" and entry["parcel"] not in parcels:
            lost.append(f"acknowledged load of {entry['parcel']} unknown to the locker")
        if entry["op"] in ("delivered", "returned"):
            p = parcels.get(entry["parcel"])
            if p is None or p.status != entry["op"]:
                lost.append(f"{entry['parcel']} acknowledged {entry['op']} but is {p and p.status}")
    seen: dict[str, str] = {}
    for number, box in enumerate(world.compartments, start=1):
        if not box.parcel:
            continue
        if box.parcel in seen:
            lost.append(f"{box.parcel} physically in two places")
        seen[box.parcel] = f"compartment {number}"
        p = parcels.get(box.parcel)
        if p is None or p.status != "loaded" or p.compartment != number:
            lost.append(
                f"{box.parcel} is inside {number} but the locker says "
                f"{p and (p.status, p.compartment)}"
            )
    for tag in world.taken:
        if tag in seen:
            lost.append(f"{tag} both taken and in {seen[tag]}")
        seen[tag] = "taken"
        p = parcels.get(tag)
        c = compartments.get(p.compartment) if p else None
        if p is None or not (
            p.status in ("delivered", "returned")
            or p.loading
            or (c is not None and c.state is State.OPEN)
        ):
            lost.append(f"{tag} was taken but the locker says {p and p.status}")
    holders = [c.parcel_id for c in compartments.values() if c.parcel_id and c.state not in FREE]
    if len(holders) != len(set(holders)):
        lost.append(f"a parcel held by two compartments: {holders}")
    for p in parcels.values():
        if p.status == "loaded" and compartments[p.compartment].parcel_id != p.parcel_id:
            lost.append(f"{p.parcel_id} loaded in {p.compartment} which holds another")
    notes = read_notifications(locker.config.path("notify"))
    for p in parcels.values():
        if p.status != "loaded":
            continue
        gens = [n.generation for n in notes if n.parcel_id == p.parcel_id]
        if not p.notified or max(gens, default=0) != p.generation:
            other.append(f"{p.parcel_id}: newest code generation {p.generation} not sent")
    if locker.store.verify_audit() is not None:
        other.append("audit chain broken")
    replay = {n: "empty" for n in compartments}
    for e in locker.store.events_since(0):
        if e.kind == "state":
            replay[e.compartment] = e.detail.split(" (")[0].split(" -> ")[1]
    if replay != {n: c.state.value for n, c in compartments.items()}:
        other.append("audit does not replay to the stored states")
    return {"lost_or_duplicated": lost, "other": other}


def settle(locker: Locker) -> None:
    """People finish what they started: close every open door (taking nothing)."""
    driver = locker.driver
    assert isinstance(driver, SimDriver)
    for number in range(1, driver.count + 1):
        if not driver.read(number).door_closed:
            driver.close_door(number)
    locker.observe_odom(0.0, 0.0)
    locker.tick()


def load(locker: Locker, ledger: Ledger, pid: str, stop: str, size: str) -> None:
    """Request a load; once acknowledged, place the parcel and close the door."""
    driver = locker.driver
    assert isinstance(driver, SimDriver)
    locker.observe_odom(0.0, 0.0)
    r = locker.load_parcel(pid, f"{pid}@x", stop, size, *OPERATOR)
    if not r.success:
        return
    ledger.write(op="load", parcel=pid, compartment=r.compartment)
    if not driver.read(r.compartment).door_closed and not driver.parcel_tag(r.compartment):
        driver.place_parcel(r.compartment, pid)
        driver.close_door(r.compartment)
    locker.tick()


def worker(folder: Path, seed: int, crash_at: int, ops: int) -> int:
    global CRASH
    CRASH = Crash(0)  # no crash while checking
    ledger = Ledger(folder / "ledger.jsonl")
    locker = open_locker(folder)
    result = check(locker, ledger)
    print(json.dumps(result), flush=True)
    CRASH = Crash(crash_at)
    rng = random.Random(seed)
    driver = locker.driver
    assert isinstance(driver, SimDriver)
    settle(locker)
    entries = ledger.entries()
    acked = {e["parcel"] for e in entries if e["op"] == "load"}
    for entry in entries:  # the operator repeats every load that was never acknowledged
        if entry["op"] == "load_requested" and entry["parcel"] not in acked:
            load(locker, ledger, entry["parcel"], entry["stop"], entry["size"])
            acked.add(entry["parcel"])
    for k in range(ops):
        locker.observe_odom(0.0, 0.0)
        choice = rng.random()
        if choice < 0.35:
            pid, stop, size = f"s{seed}-{k}", rng.choice(STOPS), rng.choice(("small", "medium"))
            ledger.write(op="load_requested", parcel=pid, stop=stop, size=size)
            load(locker, ledger, pid, stop, size)
        elif choice < 0.5:
            locker.arm_stop(rng.choice(STOPS), True)
        elif choice < 0.85:
            stop = locker.armed_stop()
            reader = locker.store.read()
            here = [p for p in reader.parcels(stop=stop, status="loaded") if not p.loading]
            if not here:
                continue
            parcel = rng.choice(here)
            codes = {
                n.parcel_id: n
                for n in read_notifications(locker.config.path("notify"))
                if n.generation == parcel.generation
            }
            note = codes.get(parcel.parcel_id)
            if note is None:
                continue
            r = locker.submit_code("bench-kiosk", note.code)
            if r.success:
                driver.take_parcel(r.compartment)
                driver.close_door(r.compartment)
                locker.tick()
                p = locker.store.read().parcel(parcel.parcel_id)
                if p is not None and p.status == "delivered":
                    ledger.write(op="delivered", parcel=parcel.parcel_id)
        else:
            reader = locker.store.read()
            loaded = [p for p in reader.parcels(status="loaded") if not p.loading]
            if not loaded:
                continue
            parcel = rng.choice(loaded)
            locker.arm_stop(locker.armed_stop() or "A", False)
            r2 = locker.operator_open(parcel.compartment, *OPERATOR, "no-show")
            if r2.success:
                if driver.parcel_tag(parcel.compartment):
                    driver.take_parcel(parcel.compartment)
                driver.close_door(parcel.compartment)
                locker.tick()
                p = locker.store.read().parcel(parcel.parcel_id)
                if p is not None and p.status == "returned":
                    ledger.write(op="returned", parcel=parcel.parcel_id)
    locker.close()
    return 0


# ---------------------------------------------------------------- crash bench (the parent)
def crash_bench(trials: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="locker-crash-"))
    add_operator(bench_config(folder), *OPERATOR, n=2**12)
    crashes = 0
    clean_exits = 0
    lost: list[str] = []
    other: list[str] = []
    points: list[int] = []
    started = time.monotonic()
    runs = 0

    def run(crash_at: int, kill_after: float | None) -> int:
        nonlocal lost, other
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(folder),
                "--seed",
                str(rng.randrange(10**9)),
                "--crash-at",
                str(crash_at),
                "--ops",
                "12",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        first = out.splitlines()[0] if out else ""
        if not first:
            if proc.returncode == -signal.SIGKILL:
                return proc.returncode  # killed while restarting: the next run checks
            raise RuntimeError(f"worker printed no check result: {err[-2000:]}")
        found = json.loads(first)
        lost += found["lost_or_duplicated"]
        other += found["other"]
        return proc.returncode

    while crashes < trials:
        runs += 1
        timed = rng.random() < 0.2
        crash_at = 0 if timed else rng.randint(1, 120)
        code = run(crash_at, rng.uniform(0.15, 0.6) if timed else None)
        if code == -signal.SIGKILL:
            crashes += 1
            points.append(crash_at)
        elif code == 0:
            clean_exits += 1
        else:
            raise RuntimeError(f"worker failed with exit code {code}")
        if code == -signal.SIGKILL and crashes % 100 == 0:
            print(
                f"crash trials {crashes}/{trials}, lost_or_duplicated {len(lost)}, "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
    run(0, None)  # a last restart checks the final crash too
    ledger = Ledger(folder / "ledger.jsonl").entries()
    return {
        "crash_trials": crashes,
        "clean_runs": clean_exits,
        "lost_or_duplicated": len(lost),
        "other_invariant_violations": len(other),
        "examples": (lost + other)[:5],
        "acknowledged_loads": sum(e["op"] == "load" for e in ledger),
        "acknowledged_deliveries": sum(e["op"] == "delivered" for e in ledger),
        "acknowledged_returns": sum(e["op"] == "returned" for e in ledger),
        "crash_seconds": round(time.monotonic() - started, 1),
        "data_dir": str(folder),
    }


# ---------------------------------------------------------------- latency over DDS
def fsync_probe(folder: Path, count: int = 200) -> dict[str, float]:
    """fsync latency of a small append on the locker's disk now [ms]: every code pays one."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 128)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        os.close(fd)
        path.unlink()
    return {
        "fsync_ms_p50": round(statistics.median(times), 2),
        "fsync_ms_p99": round(statistics.quantiles(times, n=100)[98], 2),
    }


def latency_bench(submissions: int) -> dict[str, Any]:
    from nav_msgs.msg import Odometry
    from xiaomanlv.srv import ArmStop, LoadParcel, SubmitCode

    from xiaomanlv_bringup.graph import NodeSpec
    from xiaomanlv_bringup.ros.session import GraphSession, reserved_domain_id

    folder = Path(tempfile.mkdtemp(prefix="locker-latency-"))
    load_before = os.getloadavg()[0]
    disk = fsync_probe(folder)
    log = folder / "actuations.jsonl"
    params = {
        "data_dir": str(folder),
        "sim_actuation_log": str(log),
        "sim_actor_delay": 0.05,
        "status_rate": 10.0,
        "stop_free_attempts": 1_000_000,
        "stop_max_failures": 10_000_000,
        "kiosk_free_attempts": 1000,
        "site_stops": list(SITE_STOPS),
    }
    add_operator(LockerConfig(data_dir=str(folder)), *OPERATOR, n=2**12)
    path = folder / "params.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    spec = NodeSpec("locker", "locker", "", (path,), (), "shutdown", 0, False)
    right_ms: list[float] = []
    response_ms: list[float] = []
    with reserved_domain_id() as domain, GraphSession([spec], domain, grace=3.0) as session:
        session.wait_for_topics(["/locker/events"], timeout=30)
        odom = session.client.create_publisher(Odometry, "/wheel/odom", 10)
        session.client.create_timer(0.02, lambda: odom.publish(Odometry()))
        load = session.client.create_client(LoadParcel, "/locker/load_parcel")
        submit = session.client.create_client(SubmitCode, "/locker/submit_code")
        arm = session.client.create_client(ArmStop, "/locker/arm_stop")
        for c in (load, submit, arm):
            c.wait_for_service(timeout_sec=30)
        time.sleep(0.5)

        def call(client: Any, request: Any) -> Any:
            from xiaomanlv_bringup.ros.session import _wait_future

            return _wait_future(client.call_async(request), 30.0, "service")

        sent = 0
        batch = 0
        while sent < submissions:
            batch += 1
            pids = []
            for k in range(40):
                pid = f"b{batch}-{k}"
                r = call(
                    load,
                    LoadParcel.Request(
                        parcel_id=pid,
                        recipient="r",
                        stop="A",
                        size="small",
                        operator_id=OPERATOR[0],
                        operator_credential=OPERATOR[1],
                    ),
                )
                if r.success:
                    pids.append(pid)
            time.sleep(0.5)  # the simulated operator places and closes; the locker locks
            call(arm, ArmStop.Request(stop="A", arm=True))
            codes = {
                n.parcel_id: n.code for n in read_notifications(folder / "notifications.jsonl")
            }
            for pid in pids:
                if sent >= submissions:
                    break
                for right in (False, True):
                    code = codes[pid] if right else f"{random.randrange(10**8):08d}"
                    if not right and code == codes[pid]:
                        continue
                    lines_before = log.read_text().count("\n") if log.exists() else 0
                    t0 = time.monotonic_ns()
                    r = call(submit, SubmitCode.Request(kiosk_id="bench", code=code))
                    t1 = time.monotonic_ns()
                    sent += 1
                    response_ms.append((t1 - t0) / 1e6)
                    if right:
                        if not r.success:
                            raise RuntimeError(f"right code refused: {r.message}")
                        unlocks = [
                            json.loads(x) for x in log.read_text().splitlines()[lines_before:]
                        ]
                        t_act = next(u["t_ns"] for u in unlocks if u["action"] == "unlock")
                        right_ms.append((t_act - t0) / 1e6)
            call(arm, ArmStop.Request(stop="A", arm=False))
            time.sleep(0.5)  # recipients take their parcels; doors close and lock
    q = statistics.quantiles
    return {
        "submissions": len(response_ms),
        "right_codes": len(right_ms),
        "submit_ms_p50": round(statistics.median(right_ms), 2),
        "submit_ms_p99": round(q(right_ms, n=100)[98], 2),
        "response_ms_p50": round(statistics.median(response_ms), 2),
        "response_ms_p99": round(q(response_ms, n=100)[98], 2),
        # the machine while it ran: 1-min load average before/after, the disk's fsync before
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **disk,
        "latency_config": {k: v for k, v in params.items() if k not in ("data_dir",)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="locker benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer trials, under a minute")
    parser.add_argument("--skip-crash", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--crash-at", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ops", type=int, default=12, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.seed, args.crash_at, args.ops)
    result: dict[str, Any] = {"bench": "locker", "quick": args.quick}
    config = LockerConfig()
    result["bruteforce_p"] = config.bruteforce_probability()
    result["bruteforce_formula"] = (
        f"stop_max_failures {config.stop_max_failures} * armed codes "
        f"{len(config.compartment_sizes())} / 10^{config.code_digits}"
    )
    if not args.skip_crash:
        trials = args.trials or (60 if args.quick else 1000)
        result.update(crash_bench(trials, args.seed))
    if not args.skip_latency:
        result.update(latency_bench(100 if args.quick else 1000))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
