"""Frozen-dataclass configuration with declared ranges and units.

Every subsystem has one frozen dataclass config; its defaults live only there. A field made with
:func:`param` carries its allowed range, unit and description as metadata, so the same
declaration feeds ROS parameter descriptors (``ros/params.py``), start-up validation and docs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of its allowed range."""


@dataclass(frozen=True)
class ParamSpec:
    """Allowed range, unit and description of one config field."""

    low: float | None = None
    high: float | None = None
    unit: str = ""
    description: str = ""

    def range_text(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        unit = f" {self.unit}" if self.unit else ""
        return f"[{low}, {high}]{unit}"


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    description: str = "",
) -> Any:
    """A dataclass field with a default, an inclusive range ``[low, high]`` and a unit."""
    spec = ParamSpec(low=low, high=high, unit=unit, description=description)
    return dataclasses.field(default=default, metadata={"param": spec})


def spec_of(field: dataclasses.Field[Any]) -> ParamSpec:
    """The :class:`ParamSpec` of a config field (an empty one if it was declared plainly)."""
    spec = field.metadata.get("param")
    return spec if isinstance(spec, ParamSpec) else ParamSpec()


def validate_fields(config: Any, source: str = "") -> None:
    """Check every numeric field of ``config`` against its declared range.

    Raises:
        ConfigError: naming the field, the bad value, the allowed range and ``source``.
    """
    where = f" (from {source})" if source else ""
    for field in dataclasses.fields(config):
        spec = spec_of(field)
        value = getattr(config, field.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        bad = not math.isfinite(value)
        bad |= spec.low is not None and value < spec.low
        bad |= spec.high is not None and value > spec.high
        if bad:
            raise ConfigError(
                f"parameter '{field.name}' = {value!r} is out of range {spec.range_text()}{where}"
            )


def config_from_mapping(cls: type[C], values: Mapping[str, Any], source: str) -> C:
    """Build config ``cls`` from ``values`` (missing keys keep their defaults).

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or one out of range; the
            message names the key and ``source`` (a file or a node's parameters).
    """
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown parameter '{key}' in {source}; known: {', '.join(sorted(known))}"
            )
        default = known[key].default
        kwargs[key] = _coerce(key, value, default, source)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{err} (from {source})") from None


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple))
        value = tuple(value) if ok else value
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"parameter '{key}' = {value!r} in {source} has type {type(value).__name__}, "
            f"expected {type(default).__name__}"
        )
    return value
