"""Tests for the process handling of xiaomanlv_nav.bringup.Supervisor.

The children are small Python scripts on ``tmp_path`` standing in for node processes with a
given lifecycle; no ROS is involved. Waits are bounded polls on a state, never assertions on time.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from xiaomanlv_nav.bringup import Supervisor
from xiaomanlv_nav.graph import NodeSpec

TIMEOUT = 15.0  # [s] upper bound of every wait; a healthy run takes a fraction of it

# Waits for SIGINT and exits 0 on it; gives up by itself after a minute.
SLEEPER = """
import signal, sys, time

def on_sigint(signum, frame):
    print("caught SIGINT", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, on_sigint)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.02)
sys.exit(9)
"""

CRASHER = """
import sys
print("crashing", flush=True)
sys.exit(3)
"""

# Ignores SIGINT, so only SIGTERM (or SIGKILL) stops it.
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.02)
sys.exit(9)
"""

# Records its argv and environment in OUT (written whole, then renamed into place).
RECORDER = """
import json, os, sys
tmp = OUT + ".tmp"
with open(tmp, "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
os.replace(tmp, OUT)
"""


def _script(directory: Path, name: str, body: str, **constants: str) -> Path:
    path = directory / name
    header = "".join(f"{key} = {value!r}\n" for key, value in constants.items())
    path.write_text(f"#!{sys.executable}\n{header}{textwrap.dedent(body)}", encoding="utf-8")
    path.chmod(0o755)
    return path


def _spec(
    name: str,
    executable: str,
    *,
    on_exit: str = "shutdown",
    max_restarts: int = 0,
    parameters: Sequence[Path] = (),
    namespace: str = "",
    remappings: tuple[tuple[str, str], ...] = (),
    use_sim_time: bool = False,
) -> NodeSpec:
    return NodeSpec(
        name=name,
        executable=executable,
        namespace=namespace,
        parameters=tuple(parameters),
        remappings=remappings,
        on_exit=on_exit,
        max_restarts=max_restarts,
        use_sim_time=use_sim_time,
    )


def _wait_for(condition: Callable[[], object], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def _read_json(path: Path) -> dict:
    assert _wait_for(path.exists), f"{path} was never written"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def scripts(tmp_path: Path) -> dict[str, Path]:
    return {
        "sleeper": _script(tmp_path, "sleeper", SLEEPER),
        "crasher": _script(tmp_path, "crasher", CRASHER),
        "stubborn": _script(tmp_path, "stubborn", STUBBORN),
        "recorder": _script(tmp_path, "recorder", RECORDER, OUT=str(tmp_path / "record.json")),
    }


@pytest.fixture
def make_supervisor(scripts: dict[str, Path]) -> Iterator[Callable[..., Supervisor]]:
    """Builds supervisors on the test scripts; shuts every one of them down afterwards."""
    made: list[Supervisor] = []

    def make(nodes: Sequence[NodeSpec], **kwargs: object) -> Supervisor:
        options: dict = {"output": io.StringIO(), "grace": 5.0, "restart_delay": 0.05, **kwargs}
        supervisor = Supervisor(nodes, scripts.__getitem__, **options)
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        supervisor.shutdown()
        assert supervisor.running() == []


# -- output and command line ------------------------------------------------------------------


def test_output_lines_are_prefixed_with_the_node_name(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    supervisor = make_supervisor([_spec("talker", "sleeper")], output=output)
    supervisor.start()
    assert _wait_for(lambda: "[talker] ready\n" in output.getvalue()), output.getvalue()
    pid = supervisor.pids()["talker"]
    assert f"[bringup] started talker (pid {pid})\n" in output.getvalue()
    supervisor.shutdown()
    assert "[talker] caught SIGINT\n" in output.getvalue()


def test_child_receives_its_ros_args(
    tmp_path: Path, make_supervisor: Callable[..., Supervisor]
) -> None:
    params = [tmp_path / "nav.yaml", tmp_path / "sim" / "nav.yaml"]
    spec = _spec(
        "rec",
        "recorder",
        parameters=params,
        namespace="/robot1",
        remappings=(("/scan", "/lidar/scan"),),
        use_sim_time=True,
    )
    make_supervisor([spec]).start()
    argv = _read_json(tmp_path / "record.json")["argv"]
    assert argv == [
        "--ros-args",
        "-r", "__node:=rec",
        "-r", "__ns:=/robot1",
        "--params-file", str(params[0]),
        "--params-file", str(params[1]),
        "-p", "use_sim_time:=true",
        "-r", "/scan:=/lidar/scan",
    ]  # fmt: skip
    assert argv == spec.ros_args()


def test_children_get_the_env_passed_in(
    tmp_path: Path, make_supervisor: Callable[..., Supervisor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XML_PARENT_ONLY", "parent")
    make_supervisor([_spec("rec", "recorder")], env={"ROS_DOMAIN_ID": "42"}).start()
    env = _read_json(tmp_path / "record.json")["env"]
    assert env["ROS_DOMAIN_ID"] == "42"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "XML_PARENT_ONLY" not in env


def test_children_inherit_the_environment_by_default(
    tmp_path: Path, make_supervisor: Callable[..., Supervisor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XML_PARENT_ONLY", "parent")
    make_supervisor([_spec("rec", "recorder")]).start()
    env = _read_json(tmp_path / "record.json")["env"]
    assert env["XML_PARENT_ONLY"] == "parent"
    assert env["PYTHONUNBUFFERED"] == "1"


# -- shutdown ---------------------------------------------------------------------------------


def test_shutdown_stops_a_child_with_sigint(make_supervisor: Callable[..., Supervisor]) -> None:
    output = io.StringIO()
    supervisor = make_supervisor([_spec("a", "sleeper"), _spec("b", "sleeper")], output=output)
    supervisor.start()
    assert _wait_for(lambda: output.getvalue().count("] ready\n") == 2), output.getvalue()
    assert sorted(supervisor.running()) == ["a", "b"]
    supervisor.shutdown()
    assert supervisor.exit_codes() == {"a": [0], "b": [0]}
    assert supervisor.running() == []
    assert supervisor.pids() == {}
    assert "SIGTERM" not in output.getvalue()
    assert supervisor.failure is None


def test_child_ignoring_sigint_is_stopped_with_sigterm(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    supervisor = make_supervisor([_spec("stubborn", "stubborn")], output=output, grace=0.5)
    supervisor.start()
    assert _wait_for(lambda: "[stubborn] ready\n" in output.getvalue()), output.getvalue()
    supervisor.shutdown()
    assert "[bringup] stubborn still running: SIGTERM\n" in output.getvalue()
    assert "SIGKILL" not in output.getvalue()
    assert supervisor.exit_codes() == {"stubborn": [-signal.SIGTERM]}
    assert supervisor.running() == []


def test_shutdown_twice_is_harmless(make_supervisor: Callable[..., Supervisor]) -> None:
    output = io.StringIO()
    supervisor = make_supervisor([_spec("a", "sleeper")], output=output)
    supervisor.start()
    assert _wait_for(lambda: "[a] ready\n" in output.getvalue()), output.getvalue()
    supervisor.shutdown()
    supervisor.shutdown()
    assert supervisor.exit_codes() == {"a": [0]}


# -- exit policies ----------------------------------------------------------------------------


def test_restart_policy_restarts_up_to_max_restarts_then_fails(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    spec = _spec("crash", "crasher", on_exit="restart", max_restarts=2)
    supervisor = make_supervisor([spec], output=output)
    supervisor.start()

    def failed() -> bool:
        supervisor.poll()
        return supervisor.failure is not None

    assert _wait_for(failed), output.getvalue()
    assert supervisor.failure == "crash exited with code 3 after 2 restart(s)"
    assert supervisor.restarts() == {"crash": 2}
    assert supervisor.exit_codes() == {"crash": [3, 3, 3]}
    text = output.getvalue()
    assert text.count("[bringup] started crash (pid") == 3
    assert "crash exited with code 3; restart 1/2" in text
    assert "crash exited with code 3; restart 2/2" in text
    assert "restart 3/2" not in text
    assert "[bringup] crash exited with code 3 after 2 restart(s); stopping the graph" in text
    supervisor.poll()  # nothing more happens once the graph is stopping
    assert supervisor.restarts() == {"crash": 2}
    assert supervisor.running() == []


def test_shutdown_policy_stops_the_graph_and_run_returns_1(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    nodes = [_spec("keeper", "sleeper"), _spec("quitter", "crasher", on_exit="shutdown")]
    supervisor = make_supervisor(nodes, output=output)
    watchdog = threading.Timer(TIMEOUT, supervisor.request_stop)  # only if run() would hang
    watchdog.start()
    try:
        code = supervisor.run()
    finally:
        watchdog.cancel()
    assert supervisor.failure == "quitter exited with code 3 (on_exit: shutdown)"
    assert code == 1
    assert supervisor.running() == []
    codes = supervisor.exit_codes()
    assert codes["quitter"] == [3]
    assert len(codes["keeper"]) == 1  # stopped along with it
    assert "quitter exited with code 3 (on_exit: shutdown); stopping the graph" in output.getvalue()


def test_run_returns_0_after_request_stop(make_supervisor: Callable[..., Supervisor]) -> None:
    output = io.StringIO()
    supervisor = make_supervisor([_spec("a", "sleeper"), _spec("b", "sleeper")], output=output)
    seen_running: list[list[str]] = []

    def stop_once_running() -> None:
        _wait_for(lambda: output.getvalue().count("] ready\n") == 2)
        seen_running.append(sorted(supervisor.running()))
        supervisor.request_stop()

    stopper = threading.Timer(0.01, stop_once_running)
    stopper.start()
    code = supervisor.run()
    stopper.join()
    assert code == 0
    assert seen_running == [["a", "b"]]
    assert supervisor.failure is None
    assert supervisor.exit_codes() == {"a": [0], "b": [0]}
    assert supervisor.running() == []


def test_run_restores_the_signal_handlers(make_supervisor: Callable[..., Supervisor]) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    supervisor = make_supervisor([])
    assert supervisor.run() == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
