"""Scenarios: one simulated situation, written as YAML (schema in docs/scenarios.md).

A scenario names a world, where the robot starts, the crowd, obstacles that were not there when
the site was mapped, weather and faults with their times, how recipients behave (used by later
issues), and a seed. `load_scenario` validates a file and names the bad field;
`generate_scenarios` draws randomised scenarios for campaigns. Times are simulation seconds
from the start; positions are in the world frame, metres and radians.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from xiaomanlv_core.site import Site, SiteError, load_site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_core.yamlfile import YamlFileError, read_yaml
from xiaomanlv_sim import assets

_log = logging.getLogger(__name__)

SensorName = Literal["lidar", "imu", "gnss", "odom", "ultrasonic"]


@dataclass(frozen=True)
class CrowdSpec:
    pedestrians: int = 0
    cyclists: int = 0
    group_fraction: float = 0.3  # share of pedestrians walking in groups of 2-4
    loiter_fraction: float = 0.1  # share of pedestrians standing about near entrances
    crossing_fraction: float = 0.2  # share who cut across open areas instead of keeping to paths


@dataclass(frozen=True)
class ObstacleSpec:
    """A static obstacle that was not there at mapping time."""

    kind: Literal["trolley", "barrier", "box"]
    pose: Pose2D
    size: tuple[float, float, float]  # [m] length, width, height
    appear_at: float = 0.0  # [s]
    disappear_at: float | None = None  # [s], None: stays


@dataclass(frozen=True)
class WeatherSpec:
    kind: Literal["rain", "fog"]
    start: float  # [s]
    end: float  # [s]
    intensity: float  # 0..1; 1 is the heaviest the sensors' models cover


@dataclass(frozen=True)
class SensorDropout:
    sensor: SensorName
    start: float  # [s]
    end: float  # [s]


@dataclass(frozen=True)
class GnssJump:
    start: float  # [s]
    end: float  # [s]
    offset: tuple[float, float]  # [m] east, north added to every fix in the window


@dataclass(frozen=True)
class ImuBiasStep:
    start: float  # [s], the bias stays from then on
    gyro: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [rad/s] added bias
    accel: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [m/s^2] added bias


@dataclass(frozen=True)
class WheelSlipPatch:
    center: tuple[float, float]  # [m]
    radius: float  # [m]
    slip: float  # 0..1, share of wheel travel lost while inside the patch
    start: float = 0.0  # [s]
    end: float | None = None  # [s]


@dataclass(frozen=True)
class DoorJam:
    compartment: int  # 1..50
    start: float  # [s]
    end: float | None = None  # [s]


Fault = SensorDropout | GnssJump | ImuBiasStep | WheelSlipPatch | DoorJam


@dataclass(frozen=True)
class RecipientSpec:
    stop: str
    behaviour: Literal["on_time", "late", "no_show", "wrong_code_first"] = "on_time"
    delay: float = 0.0  # [s] after the robot arrives


@dataclass(frozen=True)
class Scenario:
    name: str
    world: str  # world name (worlds/<world>.sdf) or a path to an SDF file
    seed: int
    duration: float  # [s]
    start: Pose2D | str  # a pose, or "station" / a stop name from the site sidecar
    crowd: CrowdSpec = CrowdSpec()
    obstacles: tuple[ObstacleSpec, ...] = ()
    weather: tuple[WeatherSpec, ...] = ()
    faults: tuple[Fault, ...] = ()
    recipients: tuple[RecipientSpec, ...] = ()
    source: Path | None = field(default=None, compare=False)


class ScenarioError(ValueError):
    """A scenario is malformed; the message names the file and the field (e.g. faults[2].end)."""


# -- reading and validation -----------------------------------------------------------------

FAULT_TYPES: dict[str, type] = {
    "sensor_dropout": SensorDropout,
    "gnss_jump": GnssJump,
    "imu_bias_step": ImuBiasStep,
    "wheel_slip": WheelSlipPatch,
    "door_jam": DoorJam,
}
_FAULT_NAMES = {cls: name for name, cls in FAULT_TYPES.items()}
OBSTACLE_KINDS: tuple[str, ...] = ("trolley", "barrier", "box")
SENSORS: tuple[str, ...] = ("lidar", "imu", "gnss", "odom", "ultrasonic")
BEHAVIOURS: tuple[str, ...] = ("on_time", "late", "no_show", "wrong_code_first")
WEATHER_KINDS: tuple[str, ...] = ("rain", "fog")
COMPARTMENTS = 50  # the robot's parcel compartments, numbered 1..50


class _Reader:
    """Typed access to a parsed YAML mapping; every error names the source and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def mapping(
        self, value: Any, where: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(
                where or "(top level)", f"must be a mapping, got {type(value).__name__}"
            )
        prefix = f"{where}." if where else ""
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{key}", f"unknown key (known: {known})")
        for key in sorted(required):
            if key not in value:
                raise self.fail(f"{prefix}{key}", "is required")
        return value

    def number(
        self,
        value: Any,
        where: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {value!r}")
        x = float(value)
        if not math.isfinite(x):
            raise self.fail(where, f"must be finite, got {value!r}")
        if low is not None and (x <= low if low_open else x < low):
            raise self.fail(where, f"must be {'>' if low_open else '>='} {low:g}, got {x:g}")
        if high is not None and x > high:
            raise self.fail(where, f"must be <= {high:g}, got {x:g}")
        return x

    def integer(
        self, value: Any, where: str, *, low: int | None = None, high: int | None = None
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "-inf" if low is None else str(low)
            hi = "inf" if high is None else str(high)
            raise self.fail(where, f"must be in [{lo}, {hi}], got {value}")
        return int(value)

    def text(self, value: Any, where: str, choices: Sequence[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def vector(self, value: Any, where: str, length: int) -> tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or len(value) != length:
            raise self.fail(where, f"must be a list of {length} numbers, got {value!r}")
        return tuple(self.number(v, f"{where}[{i}]") for i, v in enumerate(value))

    def pose(self, value: Any, where: str) -> Pose2D:
        m = self.mapping(value, where, {"x", "y", "yaw"}, {"x", "y"})
        yaw = self.number(m.get("yaw", 0.0), f"{where}.yaw")
        return Pose2D(self.number(m["x"], f"{where}.x"), self.number(m["y"], f"{where}.y"), yaw)

    def window(
        self,
        m: dict[str, Any],
        where: str,
        duration: float,
        *,
        end_key: str = "end",
        optional_end: bool,
    ) -> tuple[float, float | None]:
        start = self.number(m.get("start", 0.0), f"{where}.start", low=0.0)
        if start >= duration:
            raise self.fail(
                f"{where}.start",
                f"must be before the end of the scenario ({start:g} >= {duration:g})",
            )
        raw = m.get(end_key)
        if raw is None:
            if not optional_end:
                raise self.fail(f"{where}.{end_key}", "is required")
            return start, None
        end = self.number(raw, f"{where}.{end_key}")
        if end <= start:
            raise self.fail(f"{where}.{end_key}", f"must be after start ({start:g} >= {end:g})")
        return start, end

    def items(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, got {type(value).__name__}")
        return value


def _crowd(r: _Reader, value: Any) -> CrowdSpec:
    keys = {"pedestrians", "cyclists", "group_fraction", "loiter_fraction", "crossing_fraction"}
    m = r.mapping(value or {}, "crowd", keys, set())
    d = CrowdSpec()
    return CrowdSpec(
        pedestrians=r.integer(
            m.get("pedestrians", d.pedestrians), "crowd.pedestrians", low=0, high=2000
        ),
        cyclists=r.integer(m.get("cyclists", d.cyclists), "crowd.cyclists", low=0, high=500),
        group_fraction=r.number(
            m.get("group_fraction", d.group_fraction), "crowd.group_fraction", low=0, high=1
        ),
        loiter_fraction=r.number(
            m.get("loiter_fraction", d.loiter_fraction), "crowd.loiter_fraction", low=0, high=1
        ),
        crossing_fraction=r.number(
            m.get("crossing_fraction", d.crossing_fraction),
            "crowd.crossing_fraction",
            low=0,
            high=1,
        ),
    )


def _obstacle(r: _Reader, value: Any, where: str, duration: float) -> ObstacleSpec:
    m = r.mapping(
        value,
        where,
        {"kind", "pose", "size", "appear_at", "disappear_at"},
        {"kind", "pose", "size"},
    )
    size = r.vector(m["size"], f"{where}.size", 3)
    for i, s in enumerate(size):
        if s <= 0:
            raise r.fail(f"{where}.size[{i}]", f"must be > 0, got {s:g}")
    appear = r.number(m.get("appear_at", 0.0), f"{where}.appear_at", low=0.0)
    if appear >= duration:
        raise r.fail(
            f"{where}.appear_at",
            f"must be before the end of the scenario ({appear:g} >= {duration:g})",
        )
    disappear = None
    if m.get("disappear_at") is not None:
        disappear = r.number(m["disappear_at"], f"{where}.disappear_at")
        if disappear <= appear:
            raise r.fail(
                f"{where}.disappear_at", f"must be after appear_at ({appear:g} >= {disappear:g})"
            )
    kind = r.text(m["kind"], f"{where}.kind", OBSTACLE_KINDS)
    return ObstacleSpec(
        kind=kind,  # type: ignore[arg-type]
        pose=r.pose(m["pose"], f"{where}.pose"),
        size=(size[0], size[1], size[2]),
        appear_at=appear,
        disappear_at=disappear,
    )


def _weather(r: _Reader, value: Any, where: str, duration: float) -> WeatherSpec:
    m = r.mapping(
        value, where, {"kind", "start", "end", "intensity"}, {"kind", "start", "end", "intensity"}
    )
    kind = r.text(m["kind"], f"{where}.kind", WEATHER_KINDS)
    start, end = r.window(m, where, duration, optional_end=False)
    assert end is not None
    intensity = r.number(m["intensity"], f"{where}.intensity", low=0.0, high=1.0)
    return WeatherSpec(kind=kind, start=start, end=end, intensity=intensity)  # type: ignore[arg-type]


def _fault(r: _Reader, value: Any, where: str, duration: float) -> Fault:
    if not isinstance(value, dict):
        raise r.fail(where, f"must be a mapping, got {type(value).__name__}")
    kind = r.text(value.get("type"), f"{where}.type", tuple(FAULT_TYPES))
    if kind == "sensor_dropout":
        m = r.mapping(value, where, {"type", "sensor", "start", "end"}, {"sensor", "start", "end"})
        start, end = r.window(m, where, duration, optional_end=False)
        assert end is not None
        sensor = r.text(m["sensor"], f"{where}.sensor", SENSORS)
        return SensorDropout(sensor=sensor, start=start, end=end)  # type: ignore[arg-type]
    if kind == "gnss_jump":
        m = r.mapping(value, where, {"type", "start", "end", "offset"}, {"start", "end", "offset"})
        start, end = r.window(m, where, duration, optional_end=False)
        assert end is not None
        east, north = r.vector(m["offset"], f"{where}.offset", 2)
        return GnssJump(start=start, end=end, offset=(east, north))
    if kind == "imu_bias_step":
        m = r.mapping(value, where, {"type", "start", "gyro", "accel"}, {"start"})
        start, _ = r.window(m, where, duration, optional_end=True)
        gyro = r.vector(m.get("gyro", [0.0, 0.0, 0.0]), f"{where}.gyro", 3)
        accel = r.vector(m.get("accel", [0.0, 0.0, 0.0]), f"{where}.accel", 3)
        if not any(gyro) and not any(accel):
            raise r.fail(where, "an IMU bias step needs a non-zero gyro or accel")
        return ImuBiasStep(
            start=start, gyro=(gyro[0], gyro[1], gyro[2]), accel=(accel[0], accel[1], accel[2])
        )
    if kind == "wheel_slip":
        m = r.mapping(
            value,
            where,
            {"type", "center", "radius", "slip", "start", "end"},
            {"center", "radius", "slip"},
        )
        cx, cy = r.vector(m["center"], f"{where}.center", 2)
        radius = r.number(m["radius"], f"{where}.radius", low=0.0, low_open=True)
        slip = r.number(m["slip"], f"{where}.slip", low=0.0, high=1.0)
        start, end = r.window(m, where, duration, optional_end=True)
        return WheelSlipPatch(center=(cx, cy), radius=radius, slip=slip, start=start, end=end)
    m = r.mapping(value, where, {"type", "compartment", "start", "end"}, {"compartment", "start"})
    compartment = r.integer(m["compartment"], f"{where}.compartment", low=1, high=COMPARTMENTS)
    start, end = r.window(m, where, duration, optional_end=True)
    return DoorJam(compartment=compartment, start=start, end=end)


def _recipient(r: _Reader, value: Any, where: str) -> RecipientSpec:
    m = r.mapping(value, where, {"stop", "behaviour", "delay"}, {"stop"})
    behaviour = r.text(m.get("behaviour", "on_time"), f"{where}.behaviour", BEHAVIOURS)
    delay = r.number(m.get("delay", 0.0), f"{where}.delay", low=0.0)
    return RecipientSpec(stop=r.text(m["stop"], f"{where}.stop"), behaviour=behaviour, delay=delay)  # type: ignore[arg-type]


_TOP_KEYS = {
    "name",
    "world",
    "seed",
    "duration",
    "start",
    "crowd",
    "obstacles",
    "weather",
    "faults",
    "recipients",
}


def scenario_from_dict(
    data: Any,
    source: str = "<scenario>",
    *,
    base_dir: Path | None = None,
    check_assets: bool = True,
    site: Site | None = None,
) -> Scenario:
    """Validate a parsed scenario mapping and build the `Scenario`.

    `source` names the origin in messages. A world given as a path is resolved relative to
    `base_dir` (the scenario file's folder) and stored absolute. With `check_assets` the world
    must exist (`assets.world_file`) and stop names are checked against its site sidecar when
    the sidecar can be read (or against `site` when given).

    Raises:
        ScenarioError: naming `source` and the field, e.g. "rainy.yaml: faults[2].end: ...".
    """
    r = _Reader(source)
    m = r.mapping(data, "", _TOP_KEYS, {"name", "world", "seed", "duration", "start"})
    name = r.text(m["name"], "name")
    world = r.text(m["world"], "world")
    seed = r.integer(m["seed"], "seed", low=0, high=2**63 - 1)
    duration = r.number(m["duration"], "duration", low=0.0, low_open=True)
    world_path: Path | None = None
    if _is_path(world) and base_dir is not None and not Path(world).is_absolute():
        world = str((base_dir / world).resolve())
    if check_assets:
        try:
            world_path = assets.world_file(world)
        except assets.AssetNotFoundError as err:
            raise r.fail("world", str(err)) from None
    start_raw = m["start"]
    start: Pose2D | str
    start = (
        r.pose(start_raw, "start") if isinstance(start_raw, dict) else r.text(start_raw, "start")
    )
    crowd = _crowd(r, m.get("crowd"))
    obstacles = tuple(
        _obstacle(r, v, f"obstacles[{i}]", duration)
        for i, v in enumerate(r.items(m.get("obstacles"), "obstacles"))
    )
    weather = tuple(
        _weather(r, v, f"weather[{i}]", duration)
        for i, v in enumerate(r.items(m.get("weather"), "weather"))
    )
    for i, a in enumerate(weather):
        for j in range(i):
            b = weather[j]
            if a.kind == b.kind and a.start < b.end and b.start < a.end:
                raise r.fail(
                    f"weather[{i}]", f"overlaps weather[{j}] ({a.kind} {b.start:g}-{b.end:g} s)"
                )
    faults = tuple(
        _fault(r, v, f"faults[{i}]", duration)
        for i, v in enumerate(r.items(m.get("faults"), "faults"))
    )
    recipients = tuple(
        _recipient(r, v, f"recipients[{i}]")
        for i, v in enumerate(r.items(m.get("recipients"), "recipients"))
    )
    seen: dict[str, int] = {}
    for i, rec in enumerate(recipients):
        if rec.stop in seen:
            raise r.fail(
                f"recipients[{i}].stop", f"'{rec.stop}' already has recipients[{seen[rec.stop]}]"
            )
        seen[rec.stop] = i
    if site is None and check_assets and world_path is not None and _names_stop(start, recipients):
        site = _try_site(world_path)
    if site is not None:
        stops = {s.name for s in site.stops}
        known = ", ".join(sorted(stops)) or "none"
        if isinstance(start, str) and start != "station" and start not in stops:
            raise r.fail(
                "start",
                f"'{start}' is neither 'station' nor a stop of site {site.name} (stops: {known})",
            )
        for i, rec in enumerate(recipients):
            if rec.stop not in stops:
                raise r.fail(
                    f"recipients[{i}].stop",
                    f"'{rec.stop}' is not a stop of site {site.name} (stops: {known})",
                )
    return Scenario(
        name=name,
        world=world,
        seed=seed,
        duration=duration,
        start=start,
        crowd=crowd,
        obstacles=obstacles,
        weather=weather,
        faults=faults,
        recipients=recipients,
    )


def _is_path(world: str) -> bool:
    return "/" in world or world.endswith(".sdf")


def _names_stop(start: Pose2D | str, recipients: Sequence[RecipientSpec]) -> bool:
    return (isinstance(start, str) and start != "station") or bool(recipients)


def _try_site(world_path: Path) -> Site | None:
    """The world's site sidecar, or None while sidecars cannot be read (no file, no loader)."""
    try:
        return load_site(assets.site_file(world_path))
    except (assets.AssetNotFoundError, NotImplementedError) as err:
        _log.debug("stop names not checked: %s", err)
        return None
    except SiteError as err:
        raise ScenarioError(f"site sidecar of {world_path.name} is invalid: {err}") from None


def load_scenario(path: Path, *, check_assets: bool = True) -> Scenario:
    """Read and validate a scenario YAML file (schema: docs/scenarios.md).

    Unknown keys are errors; the world must exist; stop names are checked against the world's
    site sidecar. Raises ScenarioError naming the file and the field
    (e.g. "rainy.yaml: faults[2].end: must be after start (12 >= 10)").
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror or err}") from None
    except YamlFileError as err:  # not UTF-8 or YAML, too large, too deep, a YAML bomb
        raise ScenarioError(f"{path}: {err}") from None
    scenario = scenario_from_dict(data, str(path), base_dir=path.parent, check_assets=check_assets)
    return dataclasses.replace(scenario, source=path)


# -- writing ---------------------------------------------------------------------------------


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The YAML mapping of `scenario` (plain lists, floats and strings; defaults left out)."""

    def pose(p: Pose2D) -> dict[str, float]:
        return {"x": float(p.x), "y": float(p.y), "yaw": float(p.yaw)}

    out: dict[str, Any] = {
        "name": scenario.name,
        "world": scenario.world,
        "seed": int(scenario.seed),
        "duration": float(scenario.duration),
        "start": scenario.start if isinstance(scenario.start, str) else pose(scenario.start),
        "crowd": {
            "pedestrians": int(scenario.crowd.pedestrians),
            "cyclists": int(scenario.crowd.cyclists),
            "group_fraction": float(scenario.crowd.group_fraction),
            "loiter_fraction": float(scenario.crowd.loiter_fraction),
            "crossing_fraction": float(scenario.crowd.crossing_fraction),
        },
    }
    if scenario.obstacles:
        out["obstacles"] = [
            {
                "kind": o.kind,
                "pose": pose(o.pose),
                "size": [float(v) for v in o.size],
                "appear_at": float(o.appear_at),
                "disappear_at": None if o.disappear_at is None else float(o.disappear_at),
            }
            for o in scenario.obstacles
        ]
    if scenario.weather:
        out["weather"] = [
            {
                "kind": w.kind,
                "start": float(w.start),
                "end": float(w.end),
                "intensity": float(w.intensity),
            }
            for w in scenario.weather
        ]
    if scenario.faults:
        out["faults"] = [_fault_to_dict(f) for f in scenario.faults]
    if scenario.recipients:
        out["recipients"] = [
            {"stop": rec.stop, "behaviour": rec.behaviour, "delay": float(rec.delay)}
            for rec in scenario.recipients
        ]
    return out


def _fault_to_dict(fault: Fault) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _FAULT_NAMES[type(fault)]}
    for f in dataclasses.fields(fault):
        value = getattr(fault, f.name)
        if isinstance(value, tuple):
            value = [float(v) for v in value]
        elif isinstance(value, float):
            value = float(value)
        out[f.name] = value
    return out


def dump_scenario(scenario: Scenario, path: Path) -> Path:
    """Write `scenario` as YAML to `path` (folders created); `load_scenario` reads it back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# scenario {scenario.name} (schema: docs/scenarios.md)\n"
    body = yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False, default_flow_style=None)
    path.write_text(header + body, encoding="utf-8")
    return path


# -- generation ------------------------------------------------------------------------------

_OBSTACLE_SIZES: dict[str, tuple[float, float, float]] = {
    "trolley": (1.0, 0.6, 1.0),  # [m] a cleaning or luggage trolley
    "barrier": (2.0, 0.4, 1.0),  # [m] a construction barrier
    "box": (0.6, 0.5, 0.5),  # [m] a dropped parcel or bin
}


@dataclass(frozen=True)
class GeneratorConfig:
    """Ranges the scenario generator draws from."""

    duration: float = 600.0  # [s] of every generated scenario
    max_pedestrians: int = 150
    max_cyclists: int = 15
    rain_probability: float = 0.25  # share of scenarios with a rain window
    fog_probability: float = 0.15  # share with a fog window
    max_faults: int = 3
    max_obstacles: int = 3
    max_recipients: int = 5
    min_window: float = 20.0  # [s] shortest weather/fault window


def generate_scenarios(
    world: str,
    count: int,
    seed: int,
    *,
    site: Site | None = None,
    config: GeneratorConfig | None = None,
    check_assets: bool = True,
) -> list[Scenario]:
    """Draw `count` randomised scenarios on `world`, reproducibly from `seed`.

    Crowd sizes, weather windows, faults, new obstacles on walkway edges (within the walkway,
    along its direction) and recipient behaviours are random; the site (`site`, or the world's
    sidecar) supplies stops and walkways - without one, scenarios start at the station and have
    no walkway obstacles or recipients. Every scenario is validated before it is returned.

    Raises:
        ScenarioError: count < 0, or the world does not exist (with `check_assets`).
    """
    if count < 0:
        raise ScenarioError(f"generate_scenarios: count must be >= 0, got {count}")
    cfg = config or GeneratorConfig()
    world_path: Path | None = None
    if check_assets:
        try:
            world_path = assets.world_file(world)
        except assets.AssetNotFoundError as err:
            raise ScenarioError(f"generate_scenarios: world: {err}") from None
    if site is None and world_path is not None:
        site = _try_site(world_path)
    rng = np.random.default_rng(seed)
    stem = Path(world).stem if _is_path(world) else world
    out = []
    for index in range(count):
        scenario = _draw(rng, f"{stem}_s{seed}_{index:04d}", world, site, cfg)
        source = f"generated scenario {scenario.name}"
        out.append(
            scenario_from_dict(
                scenario_to_dict(scenario), source, check_assets=check_assets, site=site
            )
        )
    return out


def _draw(
    rng: np.random.Generator, name: str, world: str, site: Site | None, cfg: GeneratorConfig
) -> Scenario:
    duration = cfg.duration
    stops = [s.name for s in site.stops] if site is not None else []
    start: str = "station"
    if stops and rng.random() < 0.2:
        start = stops[int(rng.integers(len(stops)))]
    busy = rng.random()
    crowd = CrowdSpec(
        pedestrians=round(busy * cfg.max_pedestrians),
        cyclists=int(rng.integers(0, cfg.max_cyclists + 1)),
        group_fraction=round(float(rng.uniform(0.1, 0.5)), 3),
        loiter_fraction=round(float(rng.uniform(0.0, 0.2)), 3),
        crossing_fraction=round(float(rng.uniform(0.0, 0.4)), 3),
    )
    weather = []
    for kind, p in (("rain", cfg.rain_probability), ("fog", cfg.fog_probability)):
        if rng.random() < p:
            start_t, end_t = _window(rng, duration, cfg.min_window)
            intensity = round(float(rng.uniform(0.1, 1.0)), 3)
            weather.append(WeatherSpec(kind=kind, start=start_t, end=end_t, intensity=intensity))  # type: ignore[arg-type]
    faults: list[Fault] = []
    for _ in range(int(rng.integers(0, cfg.max_faults + 1))):
        faults.append(_draw_fault(rng, duration, cfg, site))
    obstacles = []
    if site is not None and site.walkways.edges:
        for _ in range(int(rng.integers(0, cfg.max_obstacles + 1))):
            obstacles.append(_draw_obstacle(rng, site, duration))
    recipients = []
    if stops:
        chosen = rng.permutation(len(stops))[
            : int(rng.integers(0, min(cfg.max_recipients, len(stops)) + 1))
        ]
        behaviours = rng.choice(len(BEHAVIOURS), size=len(chosen), p=[0.7, 0.15, 0.1, 0.05])
        for s, b in zip(chosen, behaviours, strict=True):
            behaviour = BEHAVIOURS[int(b)]
            delay = round(float(rng.uniform(30.0, 300.0)), 1) if behaviour == "late" else 0.0
            recipients.append(RecipientSpec(stop=stops[int(s)], behaviour=behaviour, delay=delay))  # type: ignore[arg-type]
    return Scenario(
        name=name,
        world=world,
        seed=int(rng.integers(0, 2**31 - 1)),
        duration=duration,
        start=start,
        crowd=crowd,
        obstacles=tuple(obstacles),
        weather=tuple(weather),
        faults=tuple(faults),
        recipients=tuple(recipients),
    )


def _window(rng: np.random.Generator, duration: float, min_window: float) -> tuple[float, float]:
    start = round(float(rng.uniform(0.0, 0.8 * duration)), 1)
    length = float(rng.uniform(min_window, max(min_window, 0.5 * duration)))
    return start, round(min(duration, start + length), 1)


def _draw_fault(
    rng: np.random.Generator, duration: float, cfg: GeneratorConfig, site: Site | None
) -> Fault:
    kind = list(FAULT_TYPES)[int(rng.integers(len(FAULT_TYPES)))]
    start, end = _window(rng, duration, cfg.min_window)
    if kind == "sensor_dropout":
        sensor = SENSORS[int(rng.integers(len(SENSORS)))]
        return SensorDropout(sensor=sensor, start=start, end=min(end, start + 30.0))  # type: ignore[arg-type]
    if kind == "gnss_jump":
        offset = rng.normal(0.0, 5.0, 2).round(2)
        return GnssJump(start=start, end=end, offset=(float(offset[0]), float(offset[1])))
    if kind == "imu_bias_step":
        g = rng.normal(0.0, 0.01, 3).round(4) + np.array([0.0, 0.0, 0.005])
        a = rng.normal(0.0, 0.05, 3).round(3)
        return ImuBiasStep(
            start=start,
            gyro=(float(g[0]), float(g[1]), float(g[2])),
            accel=(float(a[0]), float(a[1]), float(a[2])),
        )
    if kind == "wheel_slip":
        if site is not None and site.walkways.nodes:
            names = sorted(site.walkways.nodes)
            centre = site.walkways.nodes[names[int(rng.integers(len(names)))]]
        else:
            centre = (
                (site.station.loading.x, site.station.loading.y) if site is not None else (0.0, 0.0)
            )
        return WheelSlipPatch(
            center=(float(centre[0]), float(centre[1])),
            radius=round(float(rng.uniform(1.0, 5.0)), 2),
            slip=round(float(rng.uniform(0.05, 0.6)), 3),
            start=start,
            end=end if rng.random() < 0.5 else None,
        )
    return DoorJam(
        compartment=int(rng.integers(1, COMPARTMENTS + 1)),
        start=start,
        end=end if rng.random() < 0.7 else None,
    )


def _draw_obstacle(rng: np.random.Generator, site: Site, duration: float) -> ObstacleSpec:
    """An obstacle on a walkway edge, inside its width, aligned with it."""
    edges = site.walkways.edges
    nodes = site.walkways.nodes
    lengths = np.array([math.dist(nodes[a], nodes[b]) for a, b, _ in edges])
    k = int(rng.choice(len(edges), p=lengths / lengths.sum())) if lengths.sum() > 0 else 0
    a, b, width = edges[k]
    pa, pb = np.asarray(nodes[a], dtype=float), np.asarray(nodes[b], dtype=float)
    direction = pb - pa
    yaw = math.atan2(direction[1], direction[0]) if np.linalg.norm(direction) > 0 else 0.0
    kind = OBSTACLE_KINDS[int(rng.integers(len(OBSTACLE_KINDS)))]
    size = _OBSTACLE_SIZES[kind]
    lateral = float(rng.uniform(-1.0, 1.0)) * max(0.0, 0.5 * width - 0.5 * size[1])
    t = float(rng.uniform(0.2, 0.8))
    normal = np.array([-math.sin(yaw), math.cos(yaw)])
    xy = pa + t * direction + lateral * normal
    appear = round(float(rng.uniform(0.0, 0.5 * duration)), 1) if rng.random() < 0.5 else 0.0
    disappear = (
        round(appear + float(rng.uniform(60.0, duration)), 1) if rng.random() < 0.3 else None
    )
    return ObstacleSpec(
        kind=kind,  # type: ignore[arg-type]
        pose=Pose2D(round(float(xy[0]), 3), round(float(xy[1]), 3), round(yaw, 4)),
        size=size,
        appear_at=appear,
        disappear_at=disappear,
    )
