"""KioskConfig: defaults, ranges and the checks that name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xiaomanlv_locker.kiosk.config import KioskConfig
from xiaomanlv_nav.config import ConfigError, config_from_mapping


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
    ],
)
def test_bad_values_are_named(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config_from_mapping(KioskConfig, values, "test")


def test_the_shipped_yaml_only_overrides_known_fields(repo: Path) -> None:
    doc = yaml.safe_load((repo / "config" / "kiosk.yaml").read_text())
    values = doc["/**"]["ros__parameters"]
    config = config_from_mapping(KioskConfig, values, "config/kiosk.yaml")
    assert config.kiosk_id == values["kiosk_id"]
