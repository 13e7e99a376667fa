"""KioskConfig: defaults, ranges and the checks that name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xiaomanlv_core.config import ConfigError, config_from_mapping
from xiaomanlv_locker.kiosk.config import KioskConfig


def test_defaults_serve_the_screen_only() -> None:
    config = KioskConfig()
    assert (config.host, config.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"port": 0}, r"'port' = 0 is out of range \[1, 65535\]"),
        ({"service_timeout": 0.0}, r"'service_timeout' = 0.0 is out of range \[0.1, 30\] s"),
        ({"code_length": 5}, r"'code_length' = 5 is out of range \[6, 12\] digits"),
        ({"kiosk_id": "gate 3"}, r"'kiosk_id' = 'gate 3' must be 1-64 letters"),
        ({"host": " "}, r"'host' = ' ' must name an address"),
        ({"host": "http://robot"}, r"'host' = 'http://robot' must name an address"),
        ({"host": "0.0.0.0"}, r"'host' = '0.0.0.0' serves beyond this machine.*'allow_remote'"),
        ({"host": "::"}, r"'host' = '::' serves beyond this machine"),
        ({"host": "192.168.4.20"}, r"'host' = '192.168.4.20' serves beyond this machine"),
        ({"host": "robot.campus"}, r"'host' = 'robot.campus' serves beyond this machine"),
        ({"allowed_hosts": ["ok.test", "evil.test:80"]}, r"'allowed_hosts\[1\]' = 'evil.test:80'"),
        ({"allowed_hosts": ["http://a"]}, r"'allowed_hosts\[0\]' = 'http://a' must be a host"),
        ({"backoff_base": 60.0, "backoff_max": 30.0}, r"'backoff_max' = 30.0 is below"),
        ({"forget_after": 10.0}, r"'forget_after' = 10.0 is below backoff_max"),
        ({"operator_attempts_per_minute": 61}, r"'operator_attempts_per_minute' = 61 is out"),
    ],
)
def test_bad_values_are_named(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config_from_mapping(KioskConfig, values, "test")


def test_the_shipped_yaml_only_overrides_known_fields(repo: Path) -> None:
    doc = yaml.safe_load((repo / "config" / "kiosk.yaml").read_text())
    values = doc["/**"]["ros__parameters"]
    config = config_from_mapping(KioskConfig, values, "config/kiosk.yaml")
    assert config.code_length == values["code_length"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost", "LocalHost"])
def test_loopback_binds_need_no_flag(host: str) -> None:
    assert not KioskConfig(host=host).remote


def test_binding_beyond_loopback_takes_allow_remote() -> None:
    config = KioskConfig(host="0.0.0.0", allow_remote=True, allowed_hosts=("Robot.Campus.",))
    assert config.remote
    # A wildcard names no host; the robot's name is what its clients send.
    assert config.host_names() == {"localhost", "127.0.0.1", "::1", "robot.campus"}
    lan = KioskConfig(host="192.168.4.20", allow_remote=True)
    assert "192.168.4.20" in lan.host_names()


def test_the_shipped_yaml_binds_loopback_only(repo: Path) -> None:
    doc = yaml.safe_load((repo / "config" / "kiosk.yaml").read_text())
    config = config_from_mapping(KioskConfig, doc["/**"]["ros__parameters"], "config/kiosk.yaml")
    assert not config.remote and not config.allow_remote
