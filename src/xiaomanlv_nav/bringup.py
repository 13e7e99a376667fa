"""Process supervisor behind ``xiaomanlv bringup``: the launch pattern without ``launch``.

Starts each node of a profile as its own process with ``--ros-args``, prefixes every output
line with the node's name, forwards SIGINT/SIGTERM, applies the declared exit policy when a
node dies (``restart`` up to ``max_restarts`` times, or ``shutdown``: stop everything), and
shuts down in the order ros2 launch uses: SIGINT, then SIGTERM, then SIGKILL after grace periods.
The integration-test harness and the demo drive the same class.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from xiaomanlv_nav.graph import NodeSpec


@dataclass
class _Child:
    spec: NodeSpec
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    reader: threading.Thread | None = None
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    """Runs a set of node processes and keeps them to their declared exit policy.

    Args:
        nodes: the nodes to run.
        resolve: maps an executable name to the path to run.
        env: environment of the children (``ROS_DOMAIN_ID`` goes here).
        output: where prefixed output lines go.
        grace: seconds to wait after SIGINT and again after SIGTERM. [s]
        restart_delay: pause before restarting a node that died. [s]
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
    ) -> None:
        self._children = [
            _Child(spec, [str(resolve(spec.executable)), *spec.ros_args()]) for spec in nodes
        ]
        self._env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self._output = output if output is not None else sys.stdout
        self._write_lock = threading.Lock()
        self._grace = grace
        self._restart_delay = restart_delay
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
        """Apply exit policies to children that have ended since the last poll."""
        for child in self._children:
            proc = child.process
            if proc is None or proc.poll() is None or self._stop.is_set():
                continue
            code = proc.returncode
            child.exit_codes.append(code)
            child.process = None
            name = child.spec.name
            if child.spec.on_exit == "restart" and child.restarts < child.spec.max_restarts:
                child.restarts += 1
                self._say(
                    "bringup",
                    f"{name} exited with code {code}; restart "
                    f"{child.restarts}/{child.spec.max_restarts}",
                )
                time.sleep(self._restart_delay)
                self._spawn(child)
                continue
            reason = (
                f"{name} exited with code {code} after {child.restarts} restart(s)"
                if child.spec.on_exit == "restart"
                else f"{name} exited with code {code} (on_exit: shutdown)"
            )
            self._say("bringup", f"{reason}; stopping the graph")
            self.failure = reason
            self._stop.set()

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

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which forwards
        # it, so every node sees exactly one SIGINT (as with ros2 launch).
        child.process = subprocess.Popen(
            child.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        child.reader = threading.Thread(
            target=self._pump, args=(child.spec.name, child.process), daemon=True
        )
        child.reader.start()
        self._say("bringup", f"started {child.spec.name} (pid {child.process.pid})")

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._say(name, raw.decode("utf-8", errors="replace").rstrip("\n"))

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
