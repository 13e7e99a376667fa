"""Tests for xiaomanlv_core.config: declared ranges, type coercion and error messages."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from xiaomanlv_core.config import (
    ConfigError,
    ParamSpec,
    config_from_mapping,
    param,
    spec_of,
    validate_fields,
)

SOURCE = "config/demo.yaml"


@dataclasses.dataclass(frozen=True)
class _DemoConfig:
    rate: float = param(10.0, low=0.1, high=100.0, unit="Hz", description="loop rate")  # [Hz]
    count: int = param(3, low=0, high=10, description="retries")
    gain: float = param(1.5, description="unbounded gain")  # [-]
    enabled: bool = param(True)
    label: str = param("front")
    topics: tuple[str, ...] = param(("/a", "/b"))

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class _Unchecked:
    """No validation at construction, so validate_fields can be called on a bad instance."""

    speed: float = param(1.0, low=0.0, high=2.0, unit="m/s")  # [m/s]
    plain: float = 0.0
    name: str = "x"
    flag: bool = param(True, low=5.0)


# -- ParamSpec.range_text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (ParamSpec(low=0.1, high=100.0, unit="Hz"), "[0.1, 100] Hz"),
        (ParamSpec(low=-1.5, high=2.5, unit="m"), "[-1.5, 2.5] m"),
        (ParamSpec(low=0.0), "[0, inf]"),
        (ParamSpec(high=3.0), "[-inf, 3]"),
        (ParamSpec(), "[-inf, inf]"),
    ],
)
def test_range_text(spec: ParamSpec, text: str) -> None:
    assert spec.range_text() == text


def test_param_stores_its_spec_in_the_field_metadata() -> None:
    fields = {f.name: f for f in dataclasses.fields(_DemoConfig)}
    assert spec_of(fields["rate"]) == ParamSpec(
        low=0.1, high=100.0, unit="Hz", description="loop rate"
    )
    assert fields["rate"].default == 10.0
    assert spec_of(dataclasses.fields(_Unchecked)[1]) == ParamSpec()  # declared plainly


# -- config_from_mapping: defaults and conversions --------------------------------------------


def test_missing_keys_keep_their_defaults() -> None:
    assert config_from_mapping(_DemoConfig, {}, SOURCE) == _DemoConfig()
    cfg = config_from_mapping(_DemoConfig, {"count": 7}, SOURCE)
    assert cfg.count == 7
    assert dataclasses.replace(cfg, count=3) == _DemoConfig()


def test_int_is_accepted_for_a_float_field_and_converted() -> None:
    cfg = config_from_mapping(_DemoConfig, {"rate": 20, "gain": -2}, SOURCE)
    assert cfg.rate == 20.0
    assert type(cfg.rate) is float
    assert cfg.gain == -2.0
    assert type(cfg.gain) is float


def test_list_is_converted_to_a_tuple_for_a_tuple_field() -> None:
    cfg = config_from_mapping(_DemoConfig, {"topics": ["/x", "/y", "/z"]}, SOURCE)
    assert cfg.topics == ("/x", "/y", "/z")
    assert type(cfg.topics) is tuple


def test_inclusive_bounds_are_accepted() -> None:
    low = config_from_mapping(_DemoConfig, {"rate": 0.1, "count": 0}, SOURCE)
    high = config_from_mapping(_DemoConfig, {"rate": 100.0, "count": 10}, SOURCE)
    assert (low.rate, low.count) == (0.1, 0)
    assert (high.rate, high.count) == (100.0, 10)


# -- config_from_mapping: type errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("rate", True, "parameter 'rate' = True in config/demo.yaml has type bool, expected float"),
        (
            "count",
            False,
            "parameter 'count' = False in config/demo.yaml has type bool, expected int",
        ),
        (
            "rate",
            "fast",
            "parameter 'rate' = 'fast' in config/demo.yaml has type str, expected float",
        ),
        ("count", 2.5, "parameter 'count' = 2.5 in config/demo.yaml has type float, expected int"),
        ("enabled", 1, "parameter 'enabled' = 1 in config/demo.yaml has type int, expected bool"),
        ("label", 5, "parameter 'label' = 5 in config/demo.yaml has type int, expected str"),
        (
            "topics",
            "/x",
            "parameter 'topics' = '/x' in config/demo.yaml has type str, expected tuple",
        ),
    ],
)
def test_wrong_type_names_key_value_and_source(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_mapping(_DemoConfig, {key: value}, SOURCE)


def test_unknown_key_names_the_key_and_lists_the_known_ones() -> None:
    expected = (
        "unknown parameter 'speed' in config/demo.yaml; "
        "known: count, enabled, gain, label, rate, topics"
    )
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config_from_mapping(_DemoConfig, {"rate": 5.0, "speed": 1.0}, SOURCE)


# -- range errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": 0.05}, "parameter 'rate' = 0.05 is out of range [0.1, 100] Hz"),
        ({"rate": 100.5}, "parameter 'rate' = 100.5 is out of range [0.1, 100] Hz"),
        ({"rate": -1}, "parameter 'rate' = -1.0 is out of range [0.1, 100] Hz"),
        ({"rate": math.nan}, "parameter 'rate' = nan is out of range [0.1, 100] Hz"),
        ({"rate": math.inf}, "parameter 'rate' = inf is out of range [0.1, 100] Hz"),
        ({"count": 11}, "parameter 'count' = 11 is out of range [0, 10]"),
        ({"gain": -math.inf}, "parameter 'gain' = -inf is out of range [-inf, inf]"),
        ({"gain": math.nan}, "parameter 'gain' = nan is out of range [-inf, inf]"),
    ],
)
def test_out_of_range_names_field_value_range_and_source(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{message} (from config/demo.yaml)")):
        config_from_mapping(_DemoConfig, values, SOURCE)


def test_direct_construction_validates_without_a_source() -> None:
    with pytest.raises(ConfigError, match=r"parameter 'rate' = 0\.0 is out of range") as info:
        _DemoConfig(rate=0.0)
    assert "(from" not in str(info.value)


def test_validate_fields_names_the_source() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape("parameter 'speed' = 2.5 is out of range [0, 2] m/s (from node params)"),
    ):
        validate_fields(_Unchecked(speed=2.5), source="node params")


def test_validate_fields_checks_plain_floats_only_for_finiteness() -> None:
    validate_fields(_Unchecked(plain=-1e300))
    with pytest.raises(ConfigError, match=re.escape("parameter 'plain' = inf")):
        validate_fields(_Unchecked(plain=math.inf))


def test_validate_fields_skips_bools_and_non_numbers() -> None:
    # flag is a bool declared with low=5: a bool is not checked against a numeric range.
    validate_fields(_Unchecked(flag=False, name="anything"))


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
