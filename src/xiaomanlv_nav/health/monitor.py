"""Heartbeat, content and diagnostics aggregation: the health picture the safety layer watches.

For each watched topic the monitor keeps the arrival times of recent messages and reports
OK (rate at or above its minimum), WARN (alive but slower, or too few messages to measure a
rate), or STALE (silent for longer than
``stale_factor`` periods of its minimum rate, or never seen). Arriving is not enough: each
message also brings a content :class:`~xiaomanlv_nav.health.content.Verdict` (empty, non-finite,
no fix, unreadable; judged by :mod:`xiaomanlv_nav.health.content` from values the node
extracts) and its header stamp, judged against the ROS clock (too old, in the future). A bad
message keeps its topic at its verdict's level for one ``rate_window``, so a stream that mixes
good and bad messages does not flicker to OK. A topic with more publishers than its watch
declares (default one) is an ERROR naming them: a second publisher contradicting the real
sensor must not read as healthy. For each component that
publishes ``/diagnostics`` it keeps the newest status and reports STALE once that status is
older than ``diagnostics_timeout``. The overall level is the worst of all of them. Levels
follow diagnostic_msgs/DiagnosticStatus (OK=0, WARN=1, ERROR=2, STALE=3), as the ROS
diagnostic_aggregator does.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass

from xiaomanlv_nav.health.config import HealthMonitorConfig, TopicWatch
from xiaomanlv_nav.health.content import OK, Level, Verdict, publishers_verdict, stamp_verdict

__all__ = [
    "ComponentReport",
    "HealthMonitor",
    "HealthReport",
    "Level",
    "TopicReport",
    "Verdict",
]

MAX_NAME = 256  # [characters] of a component or topic name
MAX_MESSAGE = 2048  # [characters] of a component's status message


def text_problem(text: str, max_length: int) -> str | None:
    """Why ``text`` is unfit to keep and show, or None: too long, or a control character
    (C0/C1, including NUL and ANSI escapes) or U+FFFD (the mark of bytes that were not UTF-8)."""
    if len(text) > max_length:
        return f"is {len(text)} characters long, at most {max_length}"
    for char in text:
        if char == "\ufffd":
            return "is not valid UTF-8"
        if unicodedata.category(char) == "Cc":
            return f"contains control character {char!r}"
    return None


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a log line or an error: repr, cut to ``limit`` characters."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


@dataclass(frozen=True)
class TopicReport:
    topic: str
    level: Level
    rate: float  # [Hz] measured over the window; 0 if fewer than two messages
    min_rate: float  # [Hz]
    age: float  # [s] since the last message; -1 if never seen
    message: str


@dataclass(frozen=True)
class ComponentReport:
    name: str
    level: Level
    message: str
    age: float  # [s] since the status was received


@dataclass(frozen=True)
class HealthReport:
    stamp: float  # [s] on the monitor's clock
    level: Level
    topics: tuple[TopicReport, ...]
    components: tuple[ComponentReport, ...]

    def unhealthy_topics(self, only: frozenset[str] | None = None) -> list[str]:
        return [
            t.topic
            for t in self.topics
            if t.level != Level.OK and (only is None or t.topic in only)
        ]

    def summary(self) -> str:
        bad = [f"{t.topic} {t.level.name}" for t in self.topics if t.level != Level.OK]
        bad += [f"{c.name} {c.level.name}" for c in self.components if c.level != Level.OK]
        return self.level.name + (": " + ", ".join(bad) if bad else "")


@dataclass
class _Component:
    level: Level
    message: str
    received: float  # [s]


class HealthMonitor:
    """Aggregates message arrivals, their content and component statuses into a report.

    Arrival and evaluation times are seconds on one clock (the node's steady clock, so the
    watchdog keeps going when simulated time stalls); header stamps are judged against the ROS
    clock the caller passes with each message (simulated time in simulation).
    """

    def __init__(self, config: HealthMonitorConfig) -> None:
        self.config = config
        self._watches = {w.topic: w for w in config.watches()}
        self._arrivals: dict[str, deque[float]] = {t: deque() for t in self._watches}
        self._bad: dict[str, deque[tuple[float, Verdict]]] = {t: deque() for t in self._watches}
        self._publishers: dict[str, Verdict] = {t: OK for t in self._watches}
        self._components: dict[str, _Component] = {}

    @property
    def watches(self) -> list[TopicWatch]:
        return list(self._watches.values())

    def observe(
        self,
        topic: str,
        stamp: float,
        content: Verdict = OK,
        header_stamp: float | None = None,
        ros_now: float = 0.0,
    ) -> Verdict:
        """Record that a message on ``topic`` arrived at ``stamp`` [s] and judge it.

        Args:
            content: what the node found in the message (empty, non-finite, unreadable...).
            header_stamp: [s] the message's header stamp on the ROS clock; None without one.
            ros_now: [s] the ROS clock at arrival; 0 while it has not started.

        Returns:
            The message's verdict: the worse of ``content`` and its stamp's (OK for an
            unwatched topic).
        """
        arrivals = self._arrivals.get(topic)
        if arrivals is None:
            return OK
        bad = self._bad[topic]
        if arrivals and stamp < arrivals[-1]:
            arrivals.clear()  # the clock went back (simulation reset): start over
            bad.clear()
        arrivals.append(stamp)
        self._trim(arrivals, stamp)
        verdict = content
        if header_stamp is not None:
            cfg = self.config
            on_time = stamp_verdict(header_stamp, ros_now, cfg.max_stamp_age, cfg.max_stamp_lead)
            verdict = content if content.level >= on_time.level else on_time
        if not verdict.ok:
            bad.append((stamp, verdict))
        self._trim_bad(bad, stamp)
        return verdict

    def observe_publishers(self, topic: str, count: int, names: tuple[str, ...] = ()) -> None:
        """Record that ``topic`` has ``count`` publishers now (``names``: their nodes)."""
        watch = self._watches.get(topic)
        if watch is not None:
            self._publishers[topic] = publishers_verdict(count, watch.max_publishers, names)

    def observe_status(self, name: str, level: int, message: str, stamp: float) -> None:
        """Record a component's diagnostic status received at ``stamp`` [s].

        Raises:
            ValueError: when ``level`` is not a diagnostic_msgs level (0..3), the name is
                empty, the name or message is too long or holds a control character, or the
                table already holds ``max_components`` fresh components.
        """
        try:
            checked = Level(level)
        except ValueError:
            raise ValueError(f"status {shown(name)} has level {level}, not one of 0..3") from None
        if not name:
            raise ValueError("status with an empty name")
        for field, text, limit in (("name", name, MAX_NAME), ("message", message, MAX_MESSAGE)):
            problem = text_problem(text, limit)
            if problem:
                raise ValueError(f"status {shown(name)}: {field} {problem}")
        if name not in self._components and len(self._components) >= self.config.max_components:
            oldest = min(self._components, key=lambda n: self._components[n].received)
            if stamp - self._components[oldest].received <= self.config.diagnostics_timeout:
                raise ValueError(
                    f"status {shown(name)} refused: {len(self._components)} components "
                    f"tracked (max_components), none stale"
                )
            del self._components[oldest]
        self._components[name] = _Component(checked, message, stamp)

    def evaluate(self, now: float) -> HealthReport:
        topics = tuple(self._topic_report(w, now) for w in self._watches.values())
        components = tuple(
            self._component_report(name, c, now) for name, c in sorted(self._components.items())
        )
        levels = [t.level for t in topics] + [c.level for c in components]
        return HealthReport(
            stamp=now,
            level=max(levels, default=Level.OK),
            topics=topics,
            components=components,
        )

    def _trim(self, arrivals: deque[float], now: float) -> None:
        """Keep the arrivals inside the window plus the last one before it.

        The one before the window keeps the rate measurable for a topic whose period is
        longer than the window (a 0.4 Hz stream in a 2 s window reads 0.4 Hz, not 0).
        """
        horizon = now - self.config.rate_window
        while len(arrivals) > 2 and arrivals[1] < horizon:
            arrivals.popleft()

    def _trim_bad(self, bad: deque[tuple[float, Verdict]], now: float) -> None:
        """Keep the bad messages of the last ``rate_window``."""
        horizon = now - self.config.rate_window
        while bad and bad[0][0] < horizon:
            bad.popleft()

    def _content(self, topic: str, now: float) -> Verdict:
        """The worst bad message of the window (the newest of equals), with how many were as bad."""
        bad, arrivals = self._bad[topic], self._arrivals[topic]
        self._trim_bad(bad, now)
        if not bad:
            return OK
        level = max(verdict.level for _, verdict in bad)
        found = next(v for _, v in reversed(bad) if v.level == level)
        as_bad = sum(1 for _, v in bad if v.level == level)
        window = self.config.rate_window
        seen = len(arrivals) - (1 if arrivals and arrivals[0] < now - window else 0)
        share = f"{as_bad} of {max(seen, len(bad))} messages in the last {window:g} s"
        return Verdict(found.level, f"{found.cause} ({share})")

    def _topic_report(self, watch: TopicWatch, now: float) -> TopicReport:
        arrivals = self._arrivals[watch.topic]
        if arrivals and now < arrivals[-1]:
            arrivals.clear()
            self._bad[watch.topic].clear()
        publishers = self._publishers[watch.topic]
        if not arrivals:
            level, text = self._combine(Level.STALE, "no message yet", publishers, OK)
            return TopicReport(watch.topic, level, 0.0, watch.min_rate, -1.0, text)
        self._trim(arrivals, now)
        age = now - arrivals[-1]
        span = arrivals[-1] - arrivals[0]
        rate = (len(arrivals) - 1) / span if span > 0.0 else 0.0
        stale_after = self.config.stale_factor / watch.min_rate
        if age > stale_after:
            level, text = Level.STALE, f"silent for {age:.2f} s (limit {stale_after:.2f} s)"
        elif len(arrivals) < 2:
            level, text = Level.WARN, "one message so far: rate not measured yet"
        elif rate < watch.min_rate:
            level, text = Level.WARN, f"{rate:.1f} Hz, below {watch.min_rate:g} Hz"
        else:
            level, text = Level.OK, f"{rate:.1f} Hz"
        level, text = self._combine(level, text, publishers, self._content(watch.topic, now))
        return TopicReport(watch.topic, level, rate, watch.min_rate, age, text)

    @staticmethod
    def _combine(
        level: Level, text: str, publishers: Verdict, content: Verdict
    ) -> tuple[Level, str]:
        """The worst of the rate's, the publishers' and the content's levels; the causes of
        every problem (the rate's text alone when all is well)."""
        problems = [v for v in (publishers, content) if not v.ok]
        if not problems:
            return level, text
        causes = [v.cause for v in problems] + ([text] if level != Level.OK else [])
        return max(level, *(v.level for v in problems)), "; ".join(causes)

    def _component_report(self, name: str, comp: _Component, now: float) -> ComponentReport:
        age = max(0.0, now - comp.received)
        if age > self.config.diagnostics_timeout:
            return ComponentReport(name, Level.STALE, f"no status for {age:.1f} s", age)
        return ComponentReport(name, comp.level, comp.message, age)
