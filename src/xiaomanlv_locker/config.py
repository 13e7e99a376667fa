"""Configuration of the compartment locker: one frozen dataclass, defaults only here.

Ranges and units are declared with :func:`xiaomanlv_core.config.param`, so the locker node
declares its ROS parameters from this class and ``config/locker.yaml`` only overrides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from xiaomanlv_core.config import ConfigError, param, validate_fields

SIZES = ("small", "medium", "large")  # in increasing order; a parcel fits its size or larger
FAULT_KINDS = ("jammed", "lock_fails", "sensor_disagree", "forced_open")


@dataclass(frozen=True)
class LockerConfig:
    """Everything the locker core and node read; paths may be "" to derive from ``data_dir``."""

    data_dir: str = param(
        "~/.local/state/xiaomanlv/locker",
        description="folder for the database, the device secret and the notification file",
    )
    db_path: str = param("", description="SQLite database; '' = <data_dir>/locker.db")
    secret_path: str = param(
        "", description="device secret (0600, created on first start); '' = <data_dir>/device.key"
    )
    notify_path: str = param(
        "", description="JSON-lines notification file; '' = <data_dir>/notifications.jsonl"
    )
    layout: tuple[str, ...] = param(
        ("small 20", "medium 20", "large 10"),
        description="'<size> <count>' per entry, compartments numbered from 1 in this order",
    )
    code_digits: int = param(8, low=6, high=12, unit="digits", description="pickup code length")
    code_ttl: float = param(
        86400.0,
        low=60.0,
        high=30 * 86400.0,
        unit="s",
        description="a code expires this long after loading",
    )  # [s]
    kiosk_free_attempts: int = param(
        3, low=1, high=1000, description="wrong codes per kiosk before backoff starts"
    )
    stop_free_attempts: int = param(
        5, low=1, high=1_000_000, description="wrong codes per stop before backoff starts"
    )
    backoff_base: float = param(
        30.0, low=0.0, high=3600.0, unit="s", description="first lockout; doubles per failure"
    )  # [s]
    backoff_max: float = param(
        900.0, low=0.0, high=86400.0, unit="s", description="longest temporary lockout"
    )  # [s]
    stop_max_failures: int = param(
        20,
        low=1,
        high=10_000_000,
        description="wrong codes at a stop before its permanent lockout (operator clears it)",
    )
    operator_free_attempts: int = param(
        3,
        low=1,
        high=100,
        description="wrong credentials per operator id before backoff starts",
    )
    operator_global_free_attempts: int = param(
        5,
        low=1,
        high=1000,
        description="wrong operator credentials, all ids together, before backoff starts "
        "(the locker-wide budget: a DDS request carries no trustworthy source)",
    )
    operator_backoff_base: float = param(
        10.0,
        low=0.0,
        high=3600.0,
        unit="s",
        description="first operator lockout; doubles per further wrong credential",
    )  # [s]
    operator_backoff_max: float = param(
        300.0, low=0.0, high=86400.0, unit="s", description="longest operator lockout"
    )  # [s]
    operator_forget_after: float = param(
        3600.0,
        low=1.0,
        high=30 * 86400.0,
        unit="s",
        description="an operator scope's wrong credentials are forgotten after this long "
        "without one (the locker-wide count is not reset by a success)",
    )  # [s]
    refusal_summary_window: float = param(
        60.0,
        low=1.0,
        high=3600.0,
        unit="s",
        description="attempts refused during a lockout are audited as one row per window",
    )  # [s]
    site_stops: tuple[str, ...] = param(
        (),
        description="'<name> <x m> <y m>' per stop (map frame): the site's stops; "
        "() = take them from the map server's /map/stops",
    )
    stop_radius: float = param(
        3.0,
        low=0.1,
        high=100.0,
        unit="m",
        description="arming needs a fresh localised pose within this distance of the stop",
    )  # [m]
    pose_timeout: float = param(
        1.0,
        low=0.01,
        high=60.0,
        unit="s",
        description="a /localization/pose older than this is not used for the stop check",
    )  # [s]
    moving_speed: float = param(
        0.05, low=0.0, high=5.0, unit="m/s", description="linear speed above which the robot moves"
    )  # [m/s]
    moving_yaw_rate: float = param(
        0.1, low=0.0, high=10.0, unit="rad/s", description="turn rate above which the robot moves"
    )  # [rad/s]
    odom_timeout: float = param(
        0.5, low=0.01, high=60.0, unit="s", description="no /wheel/odom for this long = moving"
    )  # [s]
    status_rate: float = param(
        1.0, low=0.1, high=50.0, unit="Hz", description="rate of every compartment's status"
    )  # [Hz]
    tick_rate: float = param(
        20.0, low=1.0, high=200.0, unit="Hz", description="sensor polling and timeout checks"
    )  # [Hz]
    door_open_timeout: float = param(
        60.0, low=1.0, high=3600.0, unit="s", description="door open longer = door_left_open alert"
    )  # [s]
    actuation_retries: int = param(
        3, low=1, high=20, description="lock/unlock attempts before jammed / lock_failed"
    )
    driver: str = param("sim", description="hardware driver plugin (xiaomanlv_locker.hardware)")
    notifier: str = param(
        "jsonl", description="notification sender plugin (xiaomanlv_locker.notify)"
    )
    sim_auto_actor: bool = param(
        True, description="sim: a person takes/places the parcel and closes an opened door"
    )
    sim_actor_delay: float = param(
        0.5, low=0.0, high=600.0, unit="s", description="sim: how long the person takes"
    )  # [s]
    sim_state_path: str = param(
        "", description="sim: physical state file, survives restarts; '' = <data_dir>/sim_hw.json"
    )
    sim_actuation_log: str = param(
        "", description="sim: JSON lines of every actuation with CLOCK_MONOTONIC ns; '' = none"
    )
    sim_faults: tuple[str, ...] = param(
        (),
        description="sim: '<jammed|lock_fails|sensor_disagree|forced_open> <compartment> "
        "<start s> [<end s>]', seconds after driver start",
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.backoff_max < self.backoff_base:
            raise ConfigError(
                f"parameter 'backoff_max' = {self.backoff_max} is below backoff_base "
                f"= {self.backoff_base}"
            )
        if self.operator_backoff_max < self.operator_backoff_base:
            raise ConfigError(
                f"parameter 'operator_backoff_max' = {self.operator_backoff_max} is below "
                f"operator_backoff_base = {self.operator_backoff_base}"
            )
        self.stop_positions()
        self.compartment_sizes()
        for index, spec in enumerate(self.sim_faults):
            parse_fault(spec, f"sim_faults[{index}]", len(self.compartment_sizes()))

    def compartment_sizes(self) -> tuple[str, ...]:
        """Size of compartment 1..N (index 0 is compartment 1).

        Raises:
            ConfigError: naming the bad ``layout`` entry.
        """
        sizes: list[str] = []
        for index, entry in enumerate(self.layout):
            parts = entry.split()
            where = f"parameter 'layout'[{index}] = {entry!r}"
            if len(parts) != 2 or parts[0] not in SIZES or not parts[1].isdigit():
                raise ConfigError(f"{where} must be '<small|medium|large> <count>'")
            sizes += [parts[0]] * int(parts[1])
        if not 1 <= len(sizes) <= 255:
            raise ConfigError(f"parameter 'layout' gives {len(sizes)} compartments, allowed 1..255")
        return tuple(sizes)

    def stop_positions(self) -> dict[str, tuple[float, float]] | None:
        """``site_stops`` as name -> (x, y) [m] in map; None when empty (use /map/stops).

        Raises:
            ConfigError: naming the bad ``site_stops`` entry.
        """
        if not self.site_stops:
            return None
        stops: dict[str, tuple[float, float]] = {}
        for index, entry in enumerate(self.site_stops):
            where = f"parameter 'site_stops'[{index}] = {entry!r}"
            parts = entry.split()
            try:
                if len(parts) != 3:
                    raise ValueError
                x, y = float(parts[1]), float(parts[2])
            except ValueError:
                raise ConfigError(f"{where} must be '<name> <x m> <y m>'") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ConfigError(f"{where}: x and y must be finite")
            if parts[0] in stops:
                raise ConfigError(f"{where}: stop {parts[0]!r} is listed twice")
            stops[parts[0]] = (x, y)
        return stops

    def path(self, name: str) -> Path:
        """The resolved path of ``db``, ``secret``, ``notify`` or ``sim_state``."""
        explicit = {
            "db": self.db_path,
            "secret": self.secret_path,
            "notify": self.notify_path,
            "sim_state": self.sim_state_path,
        }[name]
        default = {
            "db": "locker.db",
            "secret": "device.key",
            "notify": "notifications.jsonl",
            "sim_state": "sim_hw.json",
        }[name]
        chosen = Path(explicit) if explicit else Path(self.data_dir) / default
        return chosen.expanduser()

    def bruteforce_probability(self, armed_codes: int | None = None) -> float:
        """Upper bound on the chance a guesser opens any door at one stop before lockout.

        ``stop_max_failures * armed_codes / 10**code_digits`` (union bound: each guess hits one
        of ``armed_codes`` distinct codes out of ``10**code_digits``). ``armed_codes`` defaults
        to every compartment being armed at that stop (the worst case).
        """
        armed = len(self.compartment_sizes()) if armed_codes is None else armed_codes
        return min(1.0, self.stop_max_failures * armed / math.pow(10, self.code_digits))


def parse_fault(spec: str, source: str, compartments: int) -> tuple[str, int, float, float | None]:
    """``"jammed 3 10 20"`` -> ("jammed", 3, 10.0, 20.0).

    Raises:
        ConfigError: naming ``source`` and the bad part.
    """
    parts = spec.split()
    if len(parts) not in (3, 4) or parts[0] not in FAULT_KINDS:
        raise ConfigError(
            f"{source} = {spec!r} must be '<{'|'.join(FAULT_KINDS)}> <compartment> <start> [<end>]'"
        )
    try:
        compartment = int(parts[1])
        start = float(parts[2])
        end = float(parts[3]) if len(parts) == 4 else None
    except ValueError:
        raise ConfigError(f"{source} = {spec!r}: compartment, start, end must be numbers") from None
    if not 1 <= compartment <= compartments:
        raise ConfigError(
            f"{source} = {spec!r}: compartment {compartment} not in 1..{compartments}"
        )
    if end is not None and end < start:
        raise ConfigError(f"{source} = {spec!r}: end {end} before start {start}")
    return parts[0], compartment, start, end
