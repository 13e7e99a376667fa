"""LockerConfig: ranges, layout, fault specs, brute-force bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_core.config import ConfigError, config_from_mapping
from xiaomanlv_locker.config import LockerConfig


def test_default_layout_is_20_20_10() -> None:
    sizes = LockerConfig().compartment_sizes()
    assert len(sizes) == 50
    assert sizes.count("small") == 20 and sizes.count("medium") == 20 and sizes[-1] == "large"


def test_default_bruteforce_bound_is_below_1e_4() -> None:
    cfg = LockerConfig()
    assert cfg.bruteforce_probability() == pytest.approx(20 * 50 / 1e8)
    assert cfg.bruteforce_probability() <= 1e-4
    assert LockerConfig(code_digits=6).bruteforce_probability(armed_codes=2) == pytest.approx(4e-5)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"code_digits": 4}, r"'code_digits' = 4 is out of range \[6, 12\] digits"),
        ({"layout": ["huge 3"]}, r"'layout'\[0\] = 'huge 3'"),
        ({"layout": ["small 300"]}, "300 compartments"),
        ({"sim_faults": ["jammed 51 0"]}, r"sim_faults\[0\].*compartment 51 not in 1..50"),
        ({"sim_faults": ["melted 1 0"]}, r"sim_faults\[0\] = 'melted 1 0'"),
        ({"backoff_base": 100.0, "backoff_max": 10.0}, "'backoff_max' = 10.0 is below"),
    ],
)
def test_bad_values_name_the_parameter(values: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_mapping(LockerConfig, values, "config/locker.yaml")


def test_paths_derive_from_data_dir(tmp_path: Path) -> None:
    cfg = LockerConfig(data_dir=str(tmp_path), notify_path=str(tmp_path / "phone.jsonl"))
    assert cfg.path("db") == tmp_path / "locker.db"
    assert cfg.path("secret") == tmp_path / "device.key"
    assert cfg.path("notify") == tmp_path / "phone.jsonl"


def test_repository_yaml_is_valid(repo: Path) -> None:
    import yaml

    data = yaml.safe_load((repo / "config" / "locker.yaml").read_text())
    config_from_mapping(LockerConfig, data["/**"]["ros__parameters"], "config/locker.yaml")
