"""Configuration of the locker kiosk (the touchscreen web app served on the robot)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from xiaomanlv_core.config import ConfigError, param, validate_fields

_KIOSK_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A DNS name (RFC 1123 labels) or an IPv4 literal; IPv6 literals are checked by ipaddress.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")  # always allowed as Host names


def normal_host(name: str) -> str:
    """A host name as the kiosk compares it: lower case, IPv6 without brackets, no final dot.

    Raises:
        ValueError: ``name`` is neither a DNS name nor an IP address literal.
    """
    bare = name.strip().lower()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    if ":" in bare:
        return str(ipaddress.IPv6Address(bare))  # raises ValueError if it is not one
    if not _HOST_NAME.match(bare):
        raise ValueError(f"{name!r} is not a host name or an IP address")
    return bare.rstrip(".")


def is_loopback(host: str) -> bool:
    """``host`` (a bind address) reaches this machine only: localhost or a loopback IP."""
    try:
        bare = normal_host(host)
    except ValueError:
        return False
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False  # a DNS name other than localhost may resolve to any interface


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
    allow_remote: bool = param(
        False,
        description="serve other machines: required when 'host' is not a loopback address",
    )
    allowed_hosts: tuple[str, ...] = param(
        (),
        description="Host names besides 'host', localhost, 127.0.0.1 and [::1] that requests "
        "may name (with 'port'); anything else is refused (DNS rebinding)",
    )
    server_threads: int = param(
        4, low=1, high=64, description="worker threads of the web server (waitress)"
    )
    operator_free_attempts: int = param(
        3,
        low=1,
        high=100,
        description="wrong operator credentials per client address or operator id before "
        "backoff starts",
    )
    operator_attempts_per_minute: int = param(
        10,
        low=1,
        high=60,
        unit="per min",
        description="most wrong operator credentials per client address or operator id in any 60 s",
    )
    code_free_attempts: int = param(
        5, low=1, high=100, description="refused codes per client address before backoff starts"
    )
    code_attempts_per_minute: int = param(
        20,
        low=1,
        high=600,
        unit="per min",
        description="most refused codes per client address in any 60 s",
    )
    backoff_base: float = param(
        2.0,
        low=0.1,
        high=3600.0,
        unit="s",
        description="first lockout of a client or operator id; doubles per further failure",
    )
    backoff_max: float = param(
        300.0, low=0.1, high=86400.0, unit="s", description="longest lockout of a client"
    )
    forget_after: float = param(
        900.0,
        low=1.0,
        high=604800.0,
        unit="s",
        description="failures of a client or operator id are forgotten after this long without one",
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        try:
            normal_host(self.host)
        except ValueError:
            raise ConfigError(
                f"parameter 'host' = {self.host!r} must name an address, e.g. 127.0.0.1"
            ) from None
        if not _KIOSK_ID.match(self.kiosk_id):
            raise ConfigError(
                f"parameter 'kiosk_id' = {self.kiosk_id!r} must be 1-64 letters, digits, '.', "
                "'_' or '-'"
            )
        if not self.allow_remote and not is_loopback(self.host):
            raise ConfigError(
                f"parameter 'host' = {self.host!r} serves beyond this machine (not a loopback "
                "address); the kiosk takes operator credentials and pickup codes, so set "
                "parameter 'allow_remote' to true to mean it (and list the names clients use "
                "in 'allowed_hosts'), or bind 127.0.0.1"
            )
        for index, name in enumerate(self.allowed_hosts):
            try:
                normal_host(name)
            except ValueError:
                raise ConfigError(
                    f"parameter 'allowed_hosts[{index}]' = {name!r} must be a host name or an "
                    "IP address, without scheme or port (the port is parameter 'port')"
                ) from None
        if self.backoff_max < self.backoff_base:
            raise ConfigError(
                f"parameter 'backoff_max' = {self.backoff_max} is below backoff_base "
                f"= {self.backoff_base}"
            )
        if self.forget_after < self.backoff_max:
            raise ConfigError(
                f"parameter 'forget_after' = {self.forget_after} is below backoff_max "
                f"= {self.backoff_max} (a lockout would be forgotten before it ends)"
            )

    @property
    def remote(self) -> bool:
        """The web server binds beyond loopback (allowed only with ``allow_remote``)."""
        return not is_loopback(self.host)

    def host_names(self) -> frozenset[str]:
        """Every Host name a request may carry (normalised; the port must be ``port``)."""
        names = {normal_host(n) for n in (*LOOPBACK_NAMES, *self.allowed_hosts, self.host)}
        return frozenset(n for n in names if n not in ("0.0.0.0", "::"))  # wildcards name none
