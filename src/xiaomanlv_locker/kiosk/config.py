"""Configuration of the locker kiosk (the touchscreen web app served on the robot)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from xiaomanlv_nav.config import ConfigError, param, validate_fields

_KIOSK_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class KioskConfig:
    """Every default of the kiosk lives here; config/kiosk.yaml only overrides.

    Raises:
        ConfigError: a field out of range or malformed, naming the field and its value.
    """

    host: str = param(
        "127.0.0.1", description="address the web server binds to (127.0.0.1: the screen only)"
    )
    port: int = param(8080, low=1, high=65535, description="TCP port of the web server")
    kiosk_id: str = param(
        "kiosk-1", description="this screen's id, sent with every code (letters, digits, ._-)"
    )
    service_timeout: float = param(
        3.0, low=0.1, high=30.0, unit="s", description="how long to wait for a locker service"
    )
    code_length: int = param(
        8,
        low=6,
        high=12,
        unit="digits",
        description="digits of a pickup code; must equal the locker's code_digits",
    )
    status_timeout: float = param(
        5.0,
        low=0.5,
        high=60.0,
        unit="s",
        description="a compartment status older than this counts as unknown",
    )
    diagnostics_period: float = param(
        1.0, low=0.1, high=60.0, unit="s", description="period of the kiosk's /diagnostics"
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if not self.host.strip():
            raise ConfigError(
                f"parameter 'host' = {self.host!r} must name an address, e.g. 127.0.0.1"
            )
        if not _KIOSK_ID.match(self.kiosk_id):
            raise ConfigError(
                f"parameter 'kiosk_id' = {self.kiosk_id!r} must be 1-64 letters, digits, '.', "
                "'_' or '-'"
            )
