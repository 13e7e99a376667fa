"""Process supervisor behind ``xiaomanlv bringup``: the launch pattern without ``launch``.

Starts each node of a profile as its own process with ``--ros-args``, prefixes every output
line with the node's name, forwards SIGINT/SIGTERM, applies the declared exit policy when a
node dies, and shuts down in the order ros2 launch uses: SIGINT, then SIGTERM, then SIGKILL
after grace periods. The integration-test harness and the demo drive the same class.

Exit policy (``config/graph.yaml``, see ``docs/bringup.md``): ``on_exit: restart`` restarts a
node while it has restarts left in a sliding window (at most ``max_restarts`` in any
``restart_window`` seconds: systemd's StartLimitBurst/StartLimitIntervalSec, so a node that
crashes now and then over days is never given up on, and one that crash-loops is). A node lost
for good (``on_exit: shutdown``, or its budget used up) is reported with the last lines it
printed; it stops the graph only if it is ``critical``. A non-critical one is left down while
the rest runs on, and is started afresh after ``retry_after`` seconds (0: never).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from xiaomanlv_bringup.graph import NodeSpec

OUTPUT_LINES = 20  # lines of each node's recent output kept for the report when it is lost
MAX_LINE = 2_000  # [characters] longer output lines are cut in the ring (not on the terminal)


@dataclass
class _Child:
    spec: NodeSpec
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0  # over the supervisor's life (introspection only; the budget is windowed)
    reader: threading.Thread | None = None
    exit_codes: list[int] = field(default_factory=list)
    recent: deque[float] = field(default_factory=deque)  # [s] clock times of recent restarts
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    restart_at: float | None = None  # [s] clock time a pending restart is due
    down: str | None = None  # why the node is left down (non-critical, lost)


class Supervisor:
    """Runs a set of node processes and keeps them to their declared exit policy.

    Args:
        nodes: the nodes to run.
        resolve: maps an executable name to the path to run.
        env: environment of the children (``ROS_DOMAIN_ID`` goes here).
        output: where prefixed output lines go.
        grace: seconds to wait after SIGINT and again after SIGTERM. [s]
        restart_delay: pause before restarting a node that died. [s]
        clock: monotonic seconds for the restart window, delays and retries (tests inject
            one; the default is ``time.monotonic``). [s]
        output_lines: lines of each node's latest output kept for its report.
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        resolve: Callable[[str], Path],
        *,
        env: Mapping[str, str] | None = None,
        output: TextIO | None = None,
        grace: float = 5.0,
        restart_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        output_lines: int = OUTPUT_LINES,
    ) -> None:
        self._children = [
            _Child(
                spec,
                [str(resolve(spec.executable)), *spec.ros_args()],
                output=deque(maxlen=max(1, output_lines)),
            )
            for spec in nodes
        ]
        self._env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self._output = output if output is not None else sys.stdout
        self._write_lock = threading.Lock()
        self._grace = grace
        self._restart_delay = restart_delay
        self._clock = clock
        self._stop = threading.Event()
        self._signals = 0
        self.failure: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for child in self._children:
            self._spawn(child)

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut the graph down (thread- and signal-safe)."""
        self._stop.set()

    def run(self) -> int:
        """Supervise until SIGINT/SIGTERM or a node's exit policy stops the graph.

        Returns 0 after a requested shutdown, 1 after a failure.
        """
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if not self._children:
                return 0
            self.start()
            while not self._stop.wait(0.1):
                self.poll()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failure else 0

    def poll(self) -> None:
        """Apply exit policies to children that have ended since the last poll, and start the
        restarts and retries that have come due."""
        if self._stop.is_set():
            return
        now = self._clock()
        for child in self._children:
            proc = child.process
            if proc is not None and proc.poll() is not None:
                child.exit_codes.append(proc.returncode)
                child.process = None
                self._on_exit(child, proc.returncode, now)
                if self._stop.is_set():
                    return
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                self._spawn(child)

    def _on_exit(self, child: _Child, code: int, now: float) -> None:
        spec = child.spec
        name = spec.name
        if spec.on_exit == "restart":
            while child.recent and now - child.recent[0] >= spec.restart_window:
                child.recent.popleft()  # slid out of the window
            if len(child.recent) < spec.max_restarts:
                child.recent.append(now)
                child.restarts += 1
                self._say(
                    "bringup",
                    f"{name} exited with code {code}; restart {len(child.recent)}/"
                    f"{spec.max_restarts} within {spec.restart_window:g} s",
                )
                child.restart_at = now + self._restart_delay
                return
            reason = (
                f"{name} exited with code {code}: restart budget used up "
                f"({spec.max_restarts} restart(s) within {spec.restart_window:g} s)"
            )
        else:
            reason = f"{name} exited with code {code} (on_exit: shutdown)"
        self._report_last_output(child)
        if spec.critical:
            self._say("bringup", f"{reason}; {name} is critical: stopping the graph")
            self.failure = reason
            self._stop.set()
            return
        retry = spec.on_exit == "restart" and spec.retry_after > 0.0
        then = f"retrying in {spec.retry_after:g} s" if retry else "left down"
        child.down = f"{reason}; {then}"
        self._say("bringup", f"{reason}; not critical: the graph runs on, {name} {then}")
        if retry:
            child.recent.clear()  # a fresh budget for the fresh start
            child.restart_at = now + spec.retry_after

    def _report_last_output(self, child: _Child) -> None:
        if child.reader is not None:
            child.reader.join(timeout=1.0)  # the pipe ends with the process: read it to the end
        lines = list(child.output)
        name = child.spec.name
        if not lines:
            self._say("bringup", f"{name} printed nothing before it exited")
            return
        self._say("bringup", f"last {len(lines)} line(s) of {name}:")
        for line in lines:
            self._say("bringup", f"  | {line}")

    def shutdown(self) -> None:
        """SIGINT every child, then SIGTERM, then SIGKILL, each after the grace period."""
        self._stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [c for c in self._children if c.process and c.process.poll() is None]
            if not alive:
                break
            for child in alive:
                assert child.process is not None
                if sig != signal.SIGINT:
                    self._say("bringup", f"{child.spec.name} still running: {sig.name}")
                child.process.send_signal(sig)
            deadline = time.monotonic() + self._grace
            for child in alive:
                assert child.process is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for child in self._children:
            if child.process is not None and child.process.returncode is not None:
                child.exit_codes.append(child.process.returncode)
                child.process = None
            if child.reader is not None:
                child.reader.join(timeout=2.0)

    # -- introspection ---------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.process.pid for c in self._children if c.process is not None}

    def restarts(self) -> dict[str, int]:
        return {c.spec.name: c.restarts for c in self._children}

    def exit_codes(self) -> dict[str, list[int]]:
        return {c.spec.name: list(c.exit_codes) for c in self._children}

    def running(self) -> list[str]:
        return [c.spec.name for c in self._children if c.process and c.process.poll() is None]

    def down(self) -> dict[str, str]:
        """Non-critical nodes lost for now, with why and whether they will be retried."""
        return {c.spec.name: c.down for c in self._children if c.down and c.process is None}

    def last_output(self, name: str) -> list[str]:
        """The latest lines ``name`` printed (at most ``output_lines``), oldest first."""
        for child in self._children:
            if child.spec.name == name:
                return list(child.output)
        raise KeyError(name)

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which forwards
        # it, so every node sees exactly one SIGINT (as with ros2 launch).
        child.down = None
        child.process = subprocess.Popen(
            child.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        child.reader = threading.Thread(target=self._pump, args=(child, child.process), daemon=True)
        child.reader.start()
        self._say("bringup", f"started {child.spec.name} (pid {child.process.pid})")

    def _pump(self, child: _Child, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            child.output.append(line[:MAX_LINE])
            self._say(child.spec.name, line)

    def _say(self, name: str, line: str) -> None:
        with self._write_lock:
            self._output.write(f"[{name}] {line}\n")
            self._output.flush()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            # A second Ctrl-C: do not wait for the graceful path.
            for child in self._children:
                if child.process and child.process.poll() is None:
                    child.process.kill()
        self._stop.set()
