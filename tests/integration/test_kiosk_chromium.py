"""The kiosk end to end: real locker and kiosk nodes over Fast DDS, real headless Chromium.

An operator loads a parcel on /operator, the test reads the pickup code where the recipient
would (the locker's JSON-lines notification file) and arms the stop over /locker/arm_stop
while publishing a standing-still /wheel/odom; then on / a wrong code shows the message,
repeated wrong codes show the lockout countdown, and the right code opens the right door of
the simulated hardware (of two parcels for that stop, only its own). Screenshots of every
step go to build/test-artifacts/kiosk/<test>/.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from xiaomanlv.msg import CompartmentStatus
from xiaomanlv.srv import ArmStop

from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.operators import add_operator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "kiosk"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=800,1280",  # a portrait kiosk screen
)
OPERATOR = {"operator_id": "op-e2e", "operator_credential": "station-pass-e2e"}
STOP = "library"
LOCKOUT = 4.0  # [s] the locker's first lockout in this test (backoff_base)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[WebDriver, str], Path]:
    """``shots(driver, "01-name")`` saves a screenshot under build/test-artifacts/kiosk/."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    print(f"kiosk screenshots: {folder}")

    def save(driver: WebDriver, name: str) -> Path:
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"could not save {path}"
        return path

    return save


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_http(url: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> Any:
    """Poll ``url`` (JSON) until ``ready(answer)``; the last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(url, timeout=2.0) as response:
                last = json.load(response)
            if ready(last):
                return last
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout} s; last answer: {last}")


@contextlib.contextmanager
def standing_still(session: Any, rate: float = 20.0) -> Iterator[None]:
    """Publish a zero-velocity /wheel/odom: the locker arms stops only while parked. Yields
    once the locker's /diagnostics say it is parked (without odometry it counts as moving)."""

    def parked(array: DiagnosticArray) -> bool:
        return any(
            status.name.startswith("locker")
            and {kv.key: kv.value for kv in status.values}.get("moving") == "false"
            for status in array.status
        )

    with session.publishing("/wheel/odom", Odometry(), rate):
        session.wait_for_subscribers("/wheel/odom")
        session.wait_for_message(DiagnosticArray, "/diagnostics", 15.0, predicate=parked)
        yield


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_text(driver: WebDriver, element_id: str, text: str, timeout: float = 15.0) -> str:
    try:
        WebDriverWait(driver, timeout).until(
            ec.text_to_be_present_in_element((By.ID, element_id), text)
        )
    except WebDriverException:
        raise AssertionError(
            f"#{element_id} never showed {text!r}; it shows {text_of(driver, element_id)!r}"
        ) from None
    return text_of(driver, element_id)


def type_on_keypad(driver: WebDriver, code: str) -> None:
    """Touch the on-screen digits, then "Open my door"."""
    for digit in code:
        driver.find_element(By.CSS_SELECTOR, f'button[data-digit="{digit}"]').click()
    driver.find_element(By.ID, "open").click()


def type_on_keyboard(driver: WebDriver, code: str) -> None:
    """A physical keyboard: digits into the field, then Enter."""
    field = driver.find_element(By.ID, "code")
    field.send_keys(code + Keys.ENTER)


def notified_code(notify_path: Path, parcel_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The newest notification for ``parcel_id`` from the locker's JSON-lines sender."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if notify_path.exists():
            lines = [json.loads(x) for x in notify_path.read_text().splitlines() if x.strip()]
            mine = [n for n in lines if n.get("parcel_id") == parcel_id]
            if mine:
                return mine[-1]
        time.sleep(0.1)
    raise AssertionError(f"no notification for {parcel_id} in {notify_path} within {timeout} s")


def wrong_code_for(code: str) -> str:
    """A code of the same length that is surely not ``code``."""
    return "".join(str((int(c) + 1) % 10) for c in code)


def compartment_status(session: Any, number: int, predicate: Callable[[Any], bool]) -> Any:
    """The first /locker/compartment_NN/status of ``number`` that satisfies ``predicate``."""
    topic = f"/locker/compartment_{number:02d}/status"
    return session.wait_for_message(CompartmentStatus, topic, 15.0, predicate=predicate)


def start_graph(
    ros_graph: Any, tmp_path: Path, port: int, *, locker: bool = True, timeout: float = 5.0
) -> Any:
    data_dir = tmp_path / "locker"
    parameters: dict[str, dict[str, Any]] = {
        "kiosk": {"port": port, "kiosk_id": "e2e-kiosk", "service_timeout": timeout},
    }
    if locker:
        add_operator(
            LockerConfig(data_dir=str(data_dir)),
            OPERATOR["operator_id"],
            OPERATOR["operator_credential"],
        )
        parameters["locker"] = {
            "data_dir": str(data_dir),
            "sim_actor_delay": 3.0,  # [s] long enough to see the open door on the page
            "kiosk_free_attempts": 3,
            "backoff_base": LOCKOUT,
            # The site's one stop where the test's odometry stands (no map server here).
            "site_stops": [f"{STOP} 0.0 0.0"],
        }
    return ros_graph(
        nodes=["locker", "kiosk"] if locker else ["kiosk"],
        parameters=parameters,
        topics=["/diagnostics"],
    )


def test_load_wrong_code_lockout_and_right_code_in_chromium(
    ros_graph: Any,
    tmp_path: Path,
    browser: WebDriver,
    shots: Callable[[WebDriver, str], Path],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    session = start_graph(ros_graph, tmp_path, port)
    wait_http(f"{base}/api/status", lambda s: bool(s["reachable"]))

    # The locker opens doors only while the robot stands still: odometry says so throughout.
    with standing_still(session):
        # Operator: a wrong credential is refused, naming the field; then the parcel loads.
        browser.get(f"{base}/operator")
        fields = {
            **OPERATOR,
            "parcel_id": "P-E2E-1",
            "recipient": "alice@campus.test",
            "stop": STOP,
        }
        for name, value in {**fields, "operator_credential": "not-the-pass"}.items():
            browser.find_element(By.ID, name).send_keys(value)
        browser.find_element(By.CSS_SELECTOR, '#size option[value="small"]').click()
        browser.find_element(By.ID, "load").click()
        WebDriverWait(browser, 15).until(
            lambda d: d.find_element(By.ID, "result").get_attribute("class") == "result error"
        )
        assert "operator_credential" in text_of(browser, "message")
        assert browser.find_element(By.ID, "operator_credential").get_attribute("aria-invalid")
        shots(browser, "01-operator-wrong-credential")
        credential = browser.find_element(By.ID, "operator_credential")
        credential.clear()
        credential.send_keys(OPERATOR["operator_credential"])
        browser.find_element(By.ID, "load").click()
        loaded = wait_text(browser, "message", "Compartment ")
        other = int(loaded.split()[-1])
        assert "P-E2E-1" in text_of(browser, "detail")
        shots(browser, "02-operator-loaded-first")
        # A second parcel for the same stop: the code must open its door, not the other one.
        for name, value in {"parcel_id": "P-E2E-2", "recipient": "bob@campus.test"}.items():
            browser.find_element(By.ID, name).send_keys(value)
        browser.find_element(By.CSS_SELECTOR, '#size option[value="large"]').click()
        browser.find_element(By.ID, "load").click()
        wait_text(browser, "detail", "P-E2E-2")
        door = int(text_of(browser, "message").split()[-1])
        assert door != other and 1 <= door <= 50
        shots(browser, "03-operator-loaded-second")

        # Bob's message, and the robot parked at the stop.
        note = notified_code(tmp_path / "locker" / "notifications.jsonl", "P-E2E-2")
        assert note["recipient"] == "bob@campus.test" and note["stop"] == STOP
        code = str(note["code"])
        for number in (other, door):
            compartment_status(session, number, lambda s: s.state == "loaded" and s.door_closed)
        armed = session.call(ArmStop, "/locker/arm_stop", ArmStop.Request(stop=STOP, arm=True))
        assert armed.success, armed.message
        assert sorted(armed.compartments) == sorted([other, door])

        # A wrong code: the message, and the door stays shut.
        browser.get(f"{base}/")
        type_on_keypad(browser, wrong_code_for(code))
        assert "did not open a door" in wait_text(browser, "message", "did not open a door")
        assert code not in browser.page_source
        shots(browser, "04-wrong-code")

        # Repeated wrong codes: the lockout with its countdown, the keypad off.
        for _ in range(3):
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "open").is_enabled())
            type_on_keypad(browser, wrong_code_for(code))
            with contextlib.suppress(AssertionError):
                wait_text(browser, "message", "Too many wrong codes", timeout=3.0)
                break
        wait_text(browser, "message", "Too many wrong codes")
        countdown = wait_text(browser, "countdown", "Try again in")
        assert not browser.find_element(By.ID, "open").is_enabled()
        assert not browser.find_element(By.CSS_SELECTOR, 'button[data-digit="1"]').is_enabled()
        seconds = int(countdown.split()[-2])
        assert 1 <= seconds <= 3600
        shots(browser, "05-lockout-countdown")
        wait_text(browser, "message", "You can try again now", timeout=LOCKOUT * 8 + 10)
        assert browser.find_element(By.ID, "open").is_enabled()

        # The right code, from a physical keyboard: the right door opens.
        type_on_keyboard(browser, code)
        opened = wait_text(browser, "message", "is open")
        assert opened == f"Door {door} is open - take your parcel and close the door."
        status = compartment_status(session, door, lambda s: s.state == "open")
        assert status.parcel_id == "P-E2E-2"
        shots(browser, "06-door-open")
        untouched = session.wait_for_message(
            CompartmentStatus, f"/locker/compartment_{other:02d}/status", timeout=5.0
        )
        assert untouched.state == "available" and untouched.door_closed and untouched.locked

        # The simulated recipient takes the parcel and closes the door.
        compartment_status(session, door, lambda s: s.state == "delivered" and s.door_closed)
        wait_text(browser, "message", f"Door {door} is closed. Thank you!")
        shots(browser, "07-door-closed")


def kiosk_diagnostics(session: Any, timeout: float = 15.0) -> DiagnosticStatus:
    def link(array: DiagnosticArray) -> DiagnosticStatus | None:
        return next((s for s in array.status if s.name == "kiosk: locker link"), None)

    array = session.wait_for_message(
        DiagnosticArray, "/diagnostics", timeout, predicate=lambda a: link(a) is not None
    )
    return link(array)


def test_kiosk_without_a_locker_says_unavailable_in_chromium(
    ros_graph: Any,
    tmp_path: Path,
    browser: WebDriver,
    shots: Callable[[WebDriver, str], Path],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    session = start_graph(ros_graph, tmp_path, port, locker=False)
    wait_http(f"{base}/api/status", lambda s: not s["reachable"])

    browser.get(f"{base}/")
    banner = wait_text(browser, "banner", "Locker unavailable, please wait.")
    assert banner == "Locker unavailable, please wait."
    assert not browser.find_element(By.ID, "open").is_enabled()
    shots(browser, "01-locker-unavailable")

    status = kiosk_diagnostics(session)
    assert status.level == DiagnosticStatus.ERROR
    assert status.message.startswith("locker unavailable")
    values = {kv.key: kv.value for kv in status.values}
    assert values["kiosk_id"] == "e2e-kiosk"
    assert values["locker_services_ready"] == "False"


def test_a_locker_that_stops_answering_reads_unavailable_in_chromium(
    ros_graph: Any,
    tmp_path: Path,
    browser: WebDriver,
    shots: Callable[[WebDriver, str], Path],
) -> None:
    """The locker process frozen (SIGSTOP): its service is still on the graph but silent."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    session = start_graph(ros_graph, tmp_path, port, timeout=1.0)
    wait_http(f"{base}/api/status", lambda s: bool(s["reachable"]))
    browser.get(f"{base}/")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "open").is_enabled())
    locker_pid = session.supervisor.pids()["locker"]
    os.kill(locker_pid, signal.SIGSTOP)
    try:
        type_on_keypad(browser, "12345678")
        assert wait_text(browser, "message", "Locker unavailable") == (
            "Locker unavailable, please wait."
        )
        shots(browser, "01-locker-not-answering")
        status = kiosk_diagnostics(session)
        assert status.level == DiagnosticStatus.ERROR
        assert "did not answer within 1 s" in status.message
        values = {kv.key: kv.value for kv in status.values}
        assert values["locker_unanswered"] == "1" and values["unavailable"] == "1"
    finally:
        os.kill(locker_pid, signal.SIGCONT)
    # Back again: once the resumed locker has worked off its backlog (a call may still time
    # out meanwhile, as the recipient would see), a code is answered: no stop is armed, so the
    # locker refuses it.
    deadline = time.monotonic() + 30.0
    while True:
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "open").is_enabled())
        type_on_keypad(browser, "12345678")
        try:
            wait_text(browser, "detail", "not parked at a stop", timeout=5.0)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_kiosk_process_stops_on_sigint_and_names_bad_parameters(
    ros_domain: int, tmp_path: Path
) -> None:
    """The executable as `ros2 run` starts it: bad port or a public bind without allow_remote
    -> 2, port taken -> 1; waitress serves and refuses a foreign Host; SIGINT -> 0."""
    from xiaomanlv_core.paths import node_executable

    exe = str(node_executable("kiosk"))
    env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain)}
    bad = subprocess.run(
        [exe, "--ros-args", "-p", "port:=70000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2, bad.stderr
    assert "'port' = 70000 is out of range [1, 65535]" in bad.stderr
    public = subprocess.run(
        [exe, "--ros-args", "-p", "host:=0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert public.returncode == 2, public.stderr
    assert "'host' = '0.0.0.0' serves beyond this machine" in public.stderr
    assert "'allow_remote'" in public.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        clash = subprocess.run(
            [exe, "--ros-args", "-p", f"port:={busy}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert clash.returncode == 1, clash.stderr
    assert f"cannot serve the kiosk on 127.0.0.1:{busy}" in clash.stderr

    port = free_port()
    proc = subprocess.Popen(
        [exe, "--ros-args", "-p", f"port:={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status", lambda s: s["kiosk_id"] == "kiosk-1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as ok:
            assert ok.headers["Server"] == "xiaomanlv-kiosk"  # waitress, not Werkzeug
        foreign = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/status", headers={"Host": f"evil.test:{port}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=5)
        assert refused.value.code == 400
        assert json.load(refused.value)["error"] == "bad_host"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "kiosk stopped" in out
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2.0)
