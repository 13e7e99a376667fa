"""Tests for xiaomanlv_nav.health.monitor, driven with explicit timestamps (no clock, no sleep)."""

from __future__ import annotations

import re

import pytest

from xiaomanlv_core.config import ConfigError, config_from_mapping
from xiaomanlv_nav.health.config import HealthMonitorConfig, TopicWatch
from xiaomanlv_nav.health.content import OK
from xiaomanlv_nav.health.monitor import (
    HealthMonitor,
    HealthReport,
    Level,
    TopicReport,
    Verdict,
)

LIDAR = "/lidar/points"
IMU = "/imu/data"
WATCHED = (f"{LIDAR} sensor_msgs/msg/PointCloud2 8", f"{IMU} sensor_msgs/msg/Imu 80")


def _monitor(watched: tuple[str, ...] = WATCHED, **fields: float) -> HealthMonitor:
    values = {"rate_window": 2.0, "stale_factor": 3.0, "diagnostics_timeout": 5.0, **fields}
    return HealthMonitor(HealthMonitorConfig(watched_topics=watched, **values))


def _feed(monitor: HealthMonitor, topic: str, rate: float, start: float, end: float) -> float:
    """Messages on ``topic`` at ``rate`` [Hz] from ``start`` to ``end`` [s]; the last stamp."""
    count = round((end - start) * rate)
    for i in range(count + 1):
        monitor.observe(topic, start + i / rate)
    return start + count / rate


def _topic(report: HealthReport, topic: str) -> TopicReport:
    (found,) = [t for t in report.topics if t.topic == topic]
    return found


# -- topics -----------------------------------------------------------------------------------


def test_topic_never_seen_is_stale_with_age_minus_one() -> None:
    report = _monitor().evaluate(10.0)
    lidar = _topic(report, LIDAR)
    assert lidar.level == Level.STALE
    assert lidar.age == -1.0
    assert lidar.rate == 0.0
    assert lidar.min_rate == 8.0
    assert report.level == Level.STALE


def test_topic_faster_than_its_minimum_is_ok() -> None:
    monitor = _monitor()
    last = _feed(monitor, LIDAR, 10.0, 0.0, 4.0)
    lidar = _topic(monitor.evaluate(last + 0.05), LIDAR)
    assert lidar.level == Level.OK
    assert lidar.rate == pytest.approx(10.0, rel=0.02)
    assert lidar.age == pytest.approx(0.05)


def test_topic_slower_than_its_minimum_warns() -> None:
    monitor = _monitor()
    last = _feed(monitor, LIDAR, 5.0, 0.0, 4.0)
    lidar = _topic(monitor.evaluate(last + 0.05), LIDAR)
    assert lidar.level == Level.WARN
    assert lidar.rate == pytest.approx(5.0, rel=0.02)
    assert "below 8 Hz" in lidar.message


def test_topic_goes_stale_after_stale_factor_periods_of_silence() -> None:
    monitor = _monitor()  # 8 Hz minimum, stale_factor 3: stale after 0.375 s of silence
    last = _feed(monitor, LIDAR, 10.0, 0.0, 4.0)
    just_before = _topic(monitor.evaluate(last + 0.37), LIDAR)
    assert just_before.level == Level.OK
    after = _topic(monitor.evaluate(last + 0.38), LIDAR)
    assert after.level == Level.STALE
    assert after.age == pytest.approx(0.38)
    assert "silent for 0.38 s" in after.message


def test_stale_limit_follows_the_stale_factor() -> None:
    monitor = _monitor(stale_factor=5.0)  # 8 Hz minimum: stale after 0.625 s
    last = _feed(monitor, LIDAR, 10.0, 0.0, 4.0)
    assert _topic(monitor.evaluate(last + 0.6), LIDAR).level == Level.OK
    assert _topic(monitor.evaluate(last + 0.65), LIDAR).level == Level.STALE


def test_rate_is_measured_over_the_window_only() -> None:
    monitor = _monitor()  # rate_window 2 s
    _feed(monitor, LIDAR, 40.0, 0.0, 5.0)  # fast, long ago
    last = _feed(monitor, LIDAR, 5.0, 5.2, 10.0)  # slow, recently
    lidar = _topic(monitor.evaluate(last + 0.01), LIDAR)
    assert lidar.rate == pytest.approx(5.0, rel=0.02)
    assert lidar.level == Level.WARN
    # ... and recovers once the slow messages have left the window again.
    last = _feed(monitor, LIDAR, 10.0, 10.1, 14.0)
    lidar = _topic(monitor.evaluate(last + 0.01), LIDAR)
    assert lidar.rate == pytest.approx(10.0, rel=0.02)
    assert lidar.level == Level.OK


def test_clock_going_back_starts_the_history_over() -> None:
    monitor = _monitor()
    _feed(monitor, LIDAR, 10.0, 100.0, 104.0)
    _feed(monitor, LIDAR, 10.0, 1.0, 1.2)  # the simulation was reset
    lidar = _topic(monitor.evaluate(1.25), LIDAR)
    assert lidar.rate == pytest.approx(10.0, rel=0.02)
    assert lidar.age == pytest.approx(0.05)
    assert lidar.level == Level.OK


def test_evaluating_before_the_last_arrival_forgets_the_history() -> None:
    monitor = _monitor()
    _feed(monitor, LIDAR, 10.0, 100.0, 104.0)
    lidar = _topic(monitor.evaluate(2.0), LIDAR)
    assert lidar.rate == 0.0
    assert lidar.age == -1.0
    assert lidar.level == Level.STALE


def test_single_message_warns_until_a_rate_is_measured_then_goes_stale() -> None:
    monitor = _monitor()
    monitor.observe(LIDAR, 1.0)
    lidar = _topic(monitor.evaluate(1.1), LIDAR)
    assert (lidar.level, lidar.rate) == (Level.WARN, 0.0)
    assert "not measured" in lidar.message
    assert _topic(monitor.evaluate(1.4), LIDAR).level == Level.STALE


def test_topic_slower_than_the_rate_window_warns() -> None:
    gnss = "/gnss/fix"
    monitor = _monitor((f"{gnss} sensor_msgs/msg/NavSatFix 1",))  # stale after 3 s
    last = _feed(monitor, gnss, 0.4, 0.0, 10.0)  # a message every 2.5 s, window 2 s
    report = _topic(monitor.evaluate(last + 0.5), gnss)
    assert report.level == Level.WARN


def test_unwatched_topics_are_ignored() -> None:
    monitor = _monitor()
    monitor.observe("/camera/image", 1.0)
    report = monitor.evaluate(1.0)
    assert [t.topic for t in report.topics] == [LIDAR, IMU]
    assert [w.topic for w in monitor.watches] == [LIDAR, IMU]


# -- components -------------------------------------------------------------------------------


def test_component_statuses_are_recorded() -> None:
    monitor = _monitor(())
    for level, name in enumerate(["a_ok", "b_warn", "c_error", "d_stale"]):
        monitor.observe_status(name, level, f"message {level}", 1.0)
    report = monitor.evaluate(2.0)
    assert [(c.name, c.level, c.message) for c in report.components] == [
        ("a_ok", Level.OK, "message 0"),
        ("b_warn", Level.WARN, "message 1"),
        ("c_error", Level.ERROR, "message 2"),
        ("d_stale", Level.STALE, "message 3"),
    ]
    assert all(c.age == pytest.approx(1.0) for c in report.components)


def test_newest_component_status_wins() -> None:
    monitor = _monitor(())
    monitor.observe_status("lidar_driver", 2, "no packets", 1.0)
    monitor.observe_status("lidar_driver", 0, "running", 2.0)
    (comp,) = monitor.evaluate(2.5).components
    assert (comp.level, comp.message) == (Level.OK, "running")


def test_component_older_than_the_timeout_is_stale() -> None:
    monitor = _monitor((), diagnostics_timeout=5.0)
    monitor.observe_status("lidar_driver", 0, "running", 10.0)
    (comp,) = monitor.evaluate(15.0).components
    assert comp.level == Level.OK
    (comp,) = monitor.evaluate(15.1).components
    assert comp.level == Level.STALE
    assert comp.message == "no status for 5.1 s"


@pytest.mark.parametrize("level", [-1, 4, 99])
def test_invalid_status_level_names_the_component(level: int) -> None:
    monitor = _monitor(())
    with pytest.raises(
        ValueError, match=re.escape(f"status 'motor_driver' has level {level}, not one of 0..3")
    ):
        monitor.observe_status("motor_driver", level, "?", 1.0)
    assert monitor.evaluate(1.0).components == ()


# -- overall ----------------------------------------------------------------------------------


def test_nothing_watched_and_no_components_is_ok() -> None:
    report = _monitor(()).evaluate(0.0)
    assert report.level == Level.OK
    assert report.summary() == "OK"
    assert report.stamp == 0.0


@pytest.mark.parametrize("worst", [Level.OK, Level.WARN, Level.ERROR, Level.STALE])
def test_overall_level_is_the_worst(worst: Level) -> None:
    monitor = _monitor((f"{LIDAR} sensor_msgs/msg/PointCloud2 8",))
    last = _feed(monitor, LIDAR, 10.0, 0.0, 3.0)
    monitor.observe_status("a", 0, "fine", last)
    monitor.observe_status("b", int(worst), "worst", last)
    report = monitor.evaluate(last + 0.01)
    assert _topic(report, LIDAR).level == Level.OK
    assert report.level == worst


def test_overall_level_includes_topics() -> None:
    monitor = _monitor()
    _feed(monitor, LIDAR, 5.0, 0.0, 3.0)  # WARN
    _feed(monitor, IMU, 100.0, 0.0, 3.0)  # OK
    monitor.observe_status("a", 0, "fine", 3.0)
    assert monitor.evaluate(3.01).level == Level.WARN


def test_unhealthy_topics_and_summary() -> None:
    monitor = _monitor()
    last = _feed(monitor, LIDAR, 10.0, 0.0, 3.0)  # OK; IMU never seen
    monitor.observe_status("camera", 2, "overheating", last)
    monitor.observe_status("gnss", 0, "fix", last)
    report = monitor.evaluate(last + 0.01)
    assert report.unhealthy_topics() == [IMU]
    assert report.unhealthy_topics(frozenset({LIDAR})) == []
    assert report.unhealthy_topics(frozenset({IMU, "/other"})) == [IMU]
    assert report.summary() == f"STALE: {IMU} STALE, camera ERROR"


def test_all_healthy_summary() -> None:
    monitor = _monitor()
    _feed(monitor, LIDAR, 10.0, 0.0, 3.0)
    last = _feed(monitor, IMU, 100.0, 0.0, 3.0)
    report = monitor.evaluate(last + 0.005)
    assert report.unhealthy_topics() == []
    assert report.summary() == "OK"


# -- configuration ----------------------------------------------------------------------------


def test_parse_watch() -> None:
    assert TopicWatch.parse("  /imu/data   sensor_msgs/msg/Imu  80.5 ") == TopicWatch(
        topic="/imu/data", msg_type="sensor_msgs/msg/Imu", min_rate=80.5
    )


def test_default_config_is_valid() -> None:
    config = HealthMonitorConfig()
    assert [w.topic for w in config.watches()] == [
        "/lidar/points",
        "/imu/data",
        "/wheel/odom",
        "/gnss/fix",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/imu/data sensor_msgs/msg/Imu", "entry '/imu/data sensor_msgs/msg/Imu' must be"),
        ("/imu/data sensor_msgs/msg/Imu 80 1 x", "entry '/imu/data sensor_msgs/msg/Imu 80 1 x'"),
        ("/imu/data sensor_msgs/msg/Imu 80 x", "max publishers 'x' in "),
        ("/imu/data sensor_msgs/msg/Imu 80 0", "max publishers '0' in "),
        ("/imu/data sensor_msgs/msg/Imu 80 1.5", "max publishers '1.5' in "),
        ("/imu/data sensor_msgs/msg/Imu 80 1001", "max publishers '1001' in "),
        ("", "entry '' must be"),
        (
            "imu/data sensor_msgs/msg/Imu 80",
            "topic 'imu/data' in 'imu/data sensor_msgs/msg/Imu 80'",
        ),
        ("/imu/data sensor_msgs/Imu 80", "type 'sensor_msgs/Imu' in "),
        ("/imu/data sensor_msgs/srv/Imu 80", "type 'sensor_msgs/srv/Imu' in "),
        ("/imu/data sensor_msgs/msg/sub/Imu 80", "type 'sensor_msgs/msg/sub/Imu' in "),
        ("/imu/data sensor_msgs/msg/Imu fast", "min_rate 'fast' in "),
        ("/imu/data sensor_msgs/msg/Imu 0", "min_rate 0 in "),
        ("/imu/data sensor_msgs/msg/Imu -5", "min_rate -5 in "),
        ("/imu/data sensor_msgs/msg/Imu nan", "min_rate nan in "),
        ("/imu/data sensor_msgs/msg/Imu 10001", "min_rate 10001 in "),
    ],
)
def test_malformed_watch_is_rejected_with_source(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"health.yaml: {message}")):
        TopicWatch.parse(spec, source="health.yaml")


def test_watch_error_explains_the_expected_forms() -> None:
    with pytest.raises(ConfigError, match=re.escape("must look like package/msg/Type")):
        TopicWatch.parse("/a std_msgs/Empty 1")
    with pytest.raises(ConfigError, match=re.escape("is out of range (0, 10000] Hz")):
        TopicWatch.parse("/a std_msgs/msg/Empty 0")
    with pytest.raises(ConfigError, match=re.escape("is not a number")):
        TopicWatch.parse("/a std_msgs/msg/Empty 1Hz")


@pytest.mark.parametrize("msg_type", ["/msg/Imu", "sensor_msgs/msg/"])
def test_type_with_an_empty_part_is_rejected(msg_type: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"type '{msg_type}'")):
        TopicWatch.parse(f"/imu/data {msg_type} 80")


def test_config_rejects_a_malformed_watch() -> None:
    with pytest.raises(ConfigError, match=re.escape("watched_topics: topic 'imu' in 'imu")):
        HealthMonitorConfig(watched_topics=("imu sensor_msgs/msg/Imu 80",))


def test_config_rejects_duplicate_topics() -> None:
    watched = (
        "/b std_msgs/msg/Empty 1",
        "/a std_msgs/msg/Empty 1",
        "/b std_msgs/msg/String 2",
        "/a std_msgs/msg/Empty 3",
    )
    with pytest.raises(
        ConfigError, match=re.escape("watched_topics: /a, /b listed more than once")
    ):
        HealthMonitorConfig(watched_topics=watched)


@pytest.mark.parametrize("rate", [0.0, 0.05, 100.5, float("nan")])
def test_config_rejects_publish_rate_out_of_range(rate: float) -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(f"parameter 'publish_rate' = {rate!r} is out of range [0.1, 100] Hz"),
    ):
        HealthMonitorConfig(publish_rate=rate)


def test_config_from_mapping_names_the_source() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "parameter 'stale_factor' = 0.5 is out of range [1, 100] periods (from robot.yaml)"
        ),
    ):
        config_from_mapping(HealthMonitorConfig, {"stale_factor": 0.5}, "robot.yaml")
    cfg = config_from_mapping(
        HealthMonitorConfig, {"stale_factor": 5, "watched_topics": ["/a std_msgs/msg/Empty 1"]}, "x"
    )
    assert cfg.stale_factor == 5.0
    assert cfg.watched_topics == ("/a std_msgs/msg/Empty 1",)


# -- content, stamps, publishers ----------------------------------------------------------------

EMPTY = Verdict(Level.ERROR, "empty cloud (0 points)")


def _feed_judged(
    monitor: HealthMonitor,
    topic: str,
    rate: float,
    start: float,
    end: float,
    content: Verdict = OK,
    lag: float = 0.0,
) -> float:
    """Like :func:`_feed`, each message with ``content`` and a header stamp ``lag`` s old on a
    ROS clock that reads the arrival time."""
    count = round((end - start) * rate)
    for i in range(count + 1):
        t = start + i / rate
        monitor.observe(topic, t, content, header_stamp=t - lag, ros_now=t)
    return start + count / rate


def test_bad_content_at_full_rate_is_not_healthy() -> None:
    monitor = _monitor()
    last = _feed_judged(monitor, LIDAR, 10.0, 0.0, 4.0, EMPTY)
    lidar = _topic(monitor.evaluate(last + 0.05), LIDAR)
    assert lidar.level == Level.ERROR
    assert lidar.rate == pytest.approx(10.0, rel=0.02)
    assert lidar.message == "empty cloud (0 points) (20 of 20 messages in the last 2 s)"
    assert lidar.topic in monitor.evaluate(last + 0.05).unhealthy_topics()


def test_one_bad_message_holds_its_topic_for_one_window_then_clears() -> None:
    monitor = _monitor()  # rate_window 2 s
    _feed_judged(monitor, LIDAR, 10.0, 0.0, 3.0)
    monitor.observe(LIDAR, 3.05, EMPTY)
    last = _feed_judged(monitor, LIDAR, 10.0, 3.1, 5.0)
    lidar = _topic(monitor.evaluate(last), LIDAR)
    assert lidar.level == Level.ERROR
    assert "(1 of 22 messages in the last 2 s)" in lidar.message
    last = _feed_judged(monitor, LIDAR, 10.0, 5.1, 5.2)
    assert _topic(monitor.evaluate(last), LIDAR).level == Level.OK


def test_the_worst_bad_message_of_the_window_is_reported() -> None:
    monitor = _monitor()
    _feed_judged(monitor, LIDAR, 10.0, 0.0, 1.0, Verdict(Level.WARN, "no fix"))
    monitor.observe(LIDAR, 1.05, EMPTY)
    last = _feed_judged(monitor, LIDAR, 10.0, 1.1, 2.0, Verdict(Level.WARN, "no fix"))
    lidar = _topic(monitor.evaluate(last), LIDAR)
    assert lidar.level == Level.ERROR
    assert lidar.message.startswith("empty cloud (0 points) (1 of 22 messages")


def test_content_warn_is_a_warn() -> None:
    gnss = "/gnss/fix"
    monitor = _monitor((f"{gnss} sensor_msgs/msg/NavSatFix 4",))
    last = _feed_judged(monitor, gnss, 5.0, 0.0, 3.0, Verdict(Level.WARN, "no fix"))
    report = _topic(monitor.evaluate(last), gnss)
    assert report.level == Level.WARN
    assert report.message.startswith("no fix (")


def test_old_stamps_are_an_error_naming_their_age() -> None:
    monitor = _monitor(max_stamp_age=1.0)
    last = _feed_judged(monitor, IMU, 100.0, 100.0, 103.0, lag=30.0)
    imu = _topic(monitor.evaluate(last), IMU)
    assert imu.level == Level.ERROR
    assert imu.message.startswith("stamp 30.00 s old (limit 1 s)")


def test_stamps_within_the_age_limit_are_fine() -> None:
    monitor = _monitor(max_stamp_age=1.0)
    last = _feed_judged(monitor, IMU, 100.0, 100.0, 103.0, lag=0.9)
    assert _topic(monitor.evaluate(last), IMU).level == Level.OK


def test_future_stamps_are_an_error() -> None:
    monitor = _monitor(max_stamp_lead=0.5)
    last = _feed_judged(monitor, IMU, 100.0, 100.0, 103.0, lag=-2.0)
    imu = _topic(monitor.evaluate(last), IMU)
    assert imu.level == Level.ERROR
    assert "stamp 2.00 s in the future (limit 0.5 s)" in imu.message
    ok = _monitor(max_stamp_lead=0.5)
    last = _feed_judged(ok, IMU, 100.0, 100.0, 103.0, lag=-0.4)
    assert _topic(ok.evaluate(last), IMU).level == Level.OK


def test_unstamped_messages_on_a_running_clock_are_an_error() -> None:
    monitor = _monitor()
    for i in range(50):
        monitor.observe(IMU, 10.0 + i / 100, header_stamp=0.0, ros_now=1000.0)
    imu = _topic(monitor.evaluate(10.5), IMU)
    assert imu.level == Level.ERROR
    assert imu.message.startswith("unstamped (header stamp 0)")


def test_stamps_are_not_judged_before_the_ros_clock_starts() -> None:
    """use_sim_time before the first /clock: the clock reads 0, nothing to judge against."""
    monitor = _monitor()
    last = 0.0
    for i in range(300):
        last = i / 100
        monitor.observe(IMU, last, header_stamp=12345.0, ros_now=0.0)
    assert _topic(monitor.evaluate(last), IMU).level == Level.OK


def test_observe_returns_the_verdict_on_the_message() -> None:
    monitor = _monitor()
    assert monitor.observe(IMU, 1.0, header_stamp=1.0, ros_now=1.0).ok
    old = monitor.observe(IMU, 1.1, header_stamp=0.5, ros_now=100.0)
    assert old.level == Level.ERROR and "old" in old.cause
    # bad content outranks a bad stamp only when worse; equal levels keep the content's cause
    both = monitor.observe(IMU, 1.2, EMPTY, header_stamp=0.5, ros_now=100.0)
    assert both == EMPTY
    assert monitor.observe("/unwatched", 1.3, EMPTY).ok


def test_a_second_publisher_is_an_error_naming_the_publishers() -> None:
    monitor = _monitor()
    last = _feed_judged(monitor, IMU, 100.0, 0.0, 3.0)
    monitor.observe_publishers(IMU, 1, ("/sim",))
    assert _topic(monitor.evaluate(last), IMU).level == Level.OK
    monitor.observe_publishers(IMU, 2, ("/sim", "/spoofer"))
    imu = _topic(monitor.evaluate(last), IMU)
    assert imu.level == Level.ERROR
    assert imu.message == "2 publishers (/sim, /spoofer), 1 declared"
    monitor.observe_publishers(IMU, 1, ("/sim",))
    assert _topic(monitor.evaluate(last), IMU).level == Level.OK


def test_declared_publishers_are_allowed() -> None:
    watched = (f"{IMU} sensor_msgs/msg/Imu 80 2",)
    monitor = _monitor(watched)
    last = _feed_judged(monitor, IMU, 100.0, 0.0, 3.0)
    monitor.observe_publishers(IMU, 2, ("/imu_left", "/imu_right"))
    assert _topic(monitor.evaluate(last), IMU).level == Level.OK
    monitor.observe_publishers(IMU, 3)
    assert _topic(monitor.evaluate(last), IMU).message == "3 publishers, 2 declared"


def test_extra_publishers_are_reported_for_a_silent_topic_too() -> None:
    monitor = _monitor()
    monitor.observe_publishers(LIDAR, 2, ("/a", "/b"))
    lidar = _topic(monitor.evaluate(1.0), LIDAR)
    assert lidar.level == Level.STALE
    assert lidar.message == "2 publishers (/a, /b), 1 declared; no message yet"


def test_slow_and_bad_reports_both_causes() -> None:
    monitor = _monitor()
    last = _feed_judged(monitor, LIDAR, 5.0, 0.0, 3.0, EMPTY)
    lidar = _topic(monitor.evaluate(last), LIDAR)
    assert lidar.level == Level.ERROR
    assert lidar.message.endswith("; 5.0 Hz, below 8 Hz")


def test_a_clock_reset_forgets_bad_messages() -> None:
    monitor = _monitor()
    _feed_judged(monitor, LIDAR, 10.0, 100.0, 102.0, EMPTY)
    last = _feed_judged(monitor, LIDAR, 10.0, 1.0, 1.5)
    assert _topic(monitor.evaluate(last), LIDAR).level == Level.OK


def test_parse_watch_with_publishers() -> None:
    assert TopicWatch.parse("/imu/data sensor_msgs/msg/Imu 80 2") == TopicWatch(
        topic="/imu/data", msg_type="sensor_msgs/msg/Imu", min_rate=80.0, max_publishers=2
    )
    assert TopicWatch.parse("/imu/data sensor_msgs/msg/Imu 80").max_publishers == 1


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("max_stamp_age", 0.0, "[0.01, 3600] s"),
        ("max_stamp_age", float("inf"), "[0.01, 3600] s"),
        ("max_stamp_lead", -0.1, "[0, 3600] s"),
        ("max_wait", 0.5, "[1, 86400] s"),
    ],
)
def test_config_rejects_stamp_limits_out_of_range(field: str, value: float, allowed: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"parameter '{field}' = {value!r} is out of range {allowed}")
    ):
        HealthMonitorConfig(**{field: value})


# -- hostile component statuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message", "error"),
    [
        ("", "ok", "status with an empty name"),
        ("driver\x1b[2J", "ok", "status 'driver\\x1b[2J': name contains control character"),
        ("driver", "line\nforged line", "status 'driver': message contains control character"),
        ("driver", "bad \ufffd bytes", "status 'driver': message is not valid UTF-8"),
        ("d" * 300, "ok", "name is 300 characters long, at most 256"),
        ("driver", "m" * 5000, "status 'driver': message is 5000 characters long, at most 2048"),
    ],
)
def test_unfit_status_text_is_refused_naming_the_field(name: str, message: str, error: str) -> None:
    monitor = _monitor(())
    with pytest.raises(ValueError, match=re.escape(error)):
        monitor.observe_status(name, 0, message, 1.0)
    assert monitor.evaluate(1.0).components == ()


def test_a_long_name_is_cut_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"status 'x{60}'\.\.\. has level 9"):
        _monitor(()).observe_status("x" * 10_000, 9, "", 1.0)


def test_component_table_is_bounded_and_makes_room_only_from_stale_entries() -> None:
    monitor = _monitor((), max_components=3, diagnostics_timeout=5.0)
    for i in range(3):
        monitor.observe_status(f"c{i}", 0, "ok", 1.0 + i)
    with pytest.raises(ValueError, match=re.escape("'flood' refused: 3 components tracked")):
        monitor.observe_status("flood", 0, "ok", 4.0)
    monitor.observe_status("c1", 1, "updated", 4.0)  # a known name is always updated
    monitor.observe_status("late", 0, "ok", 6.5)  # c0 (t=1) is stale by now: it makes room
    assert [c.name for c in monitor.evaluate(6.5).components] == ["c1", "c2", "late"]
