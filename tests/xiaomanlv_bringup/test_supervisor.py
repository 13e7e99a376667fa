"""Tests for the process handling of xiaomanlv_bringup.supervisor.Supervisor.

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

from xiaomanlv_bringup.graph import NodeSpec
from xiaomanlv_bringup.supervisor import Supervisor

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

# Prints 100 numbered lines, then dies.
CHATTY = """
import sys
for i in range(1, 101):
    print(f"line {i}", flush=True)
sys.exit(4)
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
    restart_window: float = 60.0,
    critical: bool = True,
    retry_after: float = 0.0,
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
        restart_window=restart_window,
        critical=critical,
        retry_after=retry_after,
    )


class FakeClock:
    """An injectable monotonic clock that moves only when the test says so. [s]"""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
        "chatty": _script(tmp_path, "chatty", CHATTY),
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


def _poll_until(supervisor: Supervisor, condition: Callable[[], object]) -> bool:
    def polled() -> object:
        supervisor.poll()
        return condition()

    return _wait_for(polled)


def test_restart_policy_restarts_up_to_max_restarts_then_fails(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    spec = _spec("crash", "crasher", on_exit="restart", max_restarts=2)
    supervisor = make_supervisor([spec], output=output)
    supervisor.start()
    assert _poll_until(supervisor, lambda: supervisor.failure is not None), output.getvalue()
    assert supervisor.failure == (
        "crash exited with code 3: restart budget used up (2 restart(s) within 60 s)"
    )
    assert supervisor.restarts() == {"crash": 2}
    assert supervisor.exit_codes() == {"crash": [3, 3, 3]}
    text = output.getvalue()
    assert text.count("[bringup] started crash (pid") == 3
    assert "crash exited with code 3; restart 1/2 within 60 s" in text
    assert "crash exited with code 3; restart 2/2 within 60 s" in text
    assert "restart 3/2" not in text
    assert "crash is critical: stopping the graph" in text
    supervisor.poll()  # nothing more happens once the graph is stopping
    assert supervisor.restarts() == {"crash": 2}
    assert supervisor.running() == []


def test_restart_budget_is_a_sliding_window_not_a_lifetime_count(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    # Two restarts allowed in any 60 s: a node that dies twice, then again a minute later,
    # is restarted every time (a lifetime count of 2 would stop the graph at the third death).
    clock = FakeClock()
    output = io.StringIO()
    spec = _spec("crash", "crasher", on_exit="restart", max_restarts=2, restart_window=60.0)
    supervisor = make_supervisor([spec], output=output, clock=clock, restart_delay=0.0)
    supervisor.start()
    assert _poll_until(supervisor, lambda: supervisor.restarts()["crash"] == 2), output.getvalue()
    clock.now += 60.5  # both restarts have slid out of the window
    assert _poll_until(supervisor, lambda: supervisor.restarts()["crash"] == 4), output.getvalue()
    assert supervisor.failure is None
    # Four restarts over the node's life; at most two in any 60 s.
    assert _poll_until(supervisor, lambda: supervisor.failure is not None), output.getvalue()
    assert supervisor.restarts() == {"crash": 4}
    assert "restart budget used up (2 restart(s) within 60 s)" in supervisor.failure


def test_a_node_that_keeps_dying_is_reported_with_its_last_output(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    spec = _spec("chatty", "chatty", on_exit="restart", max_restarts=0)
    supervisor = make_supervisor([spec], output=output, output_lines=5)
    supervisor.start()
    assert _poll_until(supervisor, lambda: supervisor.failure is not None), output.getvalue()
    assert supervisor.last_output("chatty") == [f"line {i}" for i in range(96, 101)]
    text = output.getvalue()
    report = text[text.index("[bringup] last 5 line(s) of chatty:") :]
    assert report.splitlines()[1:6] == [f"[bringup]   | line {i}" for i in range(96, 101)]


def test_a_non_critical_node_out_of_budget_is_left_down_and_the_graph_runs_on(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    output = io.StringIO()
    nodes = [
        _spec("keeper", "sleeper"),
        _spec("flaky", "crasher", on_exit="restart", max_restarts=1, critical=False),
    ]
    supervisor = make_supervisor(nodes, output=output)
    supervisor.start()
    assert _poll_until(supervisor, lambda: "flaky" in supervisor.down()), output.getvalue()
    assert supervisor.failure is None
    assert supervisor.running() == ["keeper"]
    assert supervisor.down() == {
        "flaky": "flaky exited with code 3: restart budget used up (1 restart(s) within 60 s);"
        " left down"
    }
    assert "[bringup]   | crashing" in output.getvalue()
    assert "not critical: the graph runs on, flaky left down" in output.getvalue()
    for _ in range(5):  # left down: polling starts nothing
        supervisor.poll()
    assert supervisor.exit_codes()["flaky"] == [3, 3]
    supervisor.shutdown()
    assert supervisor.exit_codes()["keeper"] == [0]


def test_a_non_critical_node_that_exits_with_on_exit_shutdown_does_not_stop_the_graph(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    nodes = [_spec("keeper", "sleeper"), _spec("quitter", "crasher", critical=False)]
    supervisor = make_supervisor(nodes)
    supervisor.start()
    assert _poll_until(supervisor, lambda: "quitter" in supervisor.down())
    assert supervisor.down()["quitter"].endswith("(on_exit: shutdown); left down")
    assert supervisor.failure is None
    assert supervisor.running() == ["keeper"]


def test_a_non_critical_node_is_retried_after_its_cool_down(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    clock = FakeClock()
    output = io.StringIO()
    spec = _spec(
        "flaky", "crasher", on_exit="restart", max_restarts=1, critical=False, retry_after=30.0
    )
    supervisor = make_supervisor([spec], output=output, clock=clock, restart_delay=0.0)
    supervisor.start()
    assert _poll_until(supervisor, lambda: "flaky" in supervisor.down()), output.getvalue()
    assert supervisor.down()["flaky"].endswith("; retrying in 30 s")
    clock.now += 29.0
    for _ in range(5):
        supervisor.poll()
    assert len(supervisor.exit_codes()["flaky"]) == 2  # still cooling down
    clock.now += 1.0
    # Started afresh, with a fresh budget: one restart, then down again.
    assert _poll_until(supervisor, lambda: len(supervisor.exit_codes()["flaky"]) == 4)
    assert _poll_until(supervisor, lambda: "flaky" in supervisor.down())
    assert output.getvalue().count("[bringup] started flaky (pid") == 4
    assert supervisor.failure is None


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
    assert (
        "quitter exited with code 3 (on_exit: shutdown); quitter is critical: stopping the graph"
        in output.getvalue()
    )


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
