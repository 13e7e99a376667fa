"""Pickup codes, the device secret, operator credentials and attempt limits.

- Codes: ``secrets.randbelow(10**digits)``, zero-padded. Only a keyed tag is stored:
  HMAC-SHA256 (RFC 2104) over ``parcel_id, stop, code`` with a 32-byte device secret that lives
  in a 0600 file outside the database. With ``10**digits`` codes a plain hash is inverted by
  enumeration; the keyed tag is not, unless the secret is stolen too. Comparison uses
  :func:`hmac.compare_digest` over every candidate (no early exit).
- Operator credentials: scrypt (RFC 7914, :func:`hashlib.scrypt`) with a random salt; the cost
  parameters are stored with each hash.
- Attempt limits: a counter per scope (a stop, a kiosk, an operator id, all operators) with
  exponential backoff after the free attempts and, for stops, a permanent lockout after
  ``max_failures`` (the brute-force bound). Operator scopes forget their consecutive failures
  after a quiet period (:meth:`Attempts.forgotten`) instead of on any success.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, replace
from pathlib import Path

SECRET_BYTES = 32
SCRYPT_N = 2**14  # CPU/memory cost (16 MiB with r=8), OWASP's minimum for scrypt
SCRYPT_R = 8
SCRYPT_P = 1


class SecretFileError(RuntimeError):
    """The device secret file is unreadable, the wrong size or readable by others."""


def new_code(digits: int) -> str:
    """A uniformly random ``digits``-digit code from the OS CSPRNG."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def code_tag(secret: bytes, parcel_id: str, stop: str, code: str) -> bytes:
    """HMAC-SHA256 of the code bound to its parcel and stop (32 bytes)."""
    message = "\x00".join((parcel_id, stop, code)).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def matches(secret: bytes, parcel_id: str, stop: str, code: str, tag: bytes) -> bool:
    """Constant-time check of ``code`` against a stored tag."""
    return hmac.compare_digest(code_tag(secret, parcel_id, stop, code), tag)


def is_code_shaped(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (and missing parents) if needed; the folder itself gets mode 0700.

    An existing folder is left as it is (it may be shared on purpose, e.g. /tmp).
    """
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def load_or_create_secret(path: Path) -> bytes:
    """Read the device secret, creating it (mode 0600, ``O_EXCL``) on first start.

    Raises:
        SecretFileError: the file is group/other accessible, or not ``SECRET_BYTES`` long.
    """
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"device secret {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})"
        )
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise SecretFileError(
            f"device secret {path} has {len(data)} bytes, expected {SECRET_BYTES}"
        )
    return data


@dataclass(frozen=True)
class CredentialHash:
    """An scrypt hash with its salt and cost parameters, as stored."""

    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P


def hash_credential(credential: str, n: int = SCRYPT_N) -> CredentialHash:
    """scrypt(credential, random 16-byte salt)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        credential.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**26, dklen=32
    )
    return CredentialHash(salt=salt, digest=digest, n=n)


def verify_credential(credential: str, stored: CredentialHash) -> bool:
    digest = hashlib.scrypt(
        credential.encode(),
        salt=stored.salt,
        n=stored.n,
        r=stored.r,
        p=stored.p,
        maxmem=2**26,
        dklen=len(stored.digest),
    )
    return hmac.compare_digest(digest, stored.digest)


@dataclass(frozen=True)
class Attempts:
    """Failed-attempt state of one scope (``stop:<name>``, ``kiosk:<id>``, ``operator:<id>``,
    ``operators``)."""

    failures: int = 0  # total wrong codes since the counter was last reset
    consecutive: int = 0  # wrong codes since the last success
    locked_until: float = 0.0  # [s] wall time
    permanent: bool = False
    last_failure: float = 0.0  # [s] wall time of the newest wrong attempt

    def retry_after(self, now: float) -> float:
        """[s] until the next attempt is accepted; inf when permanently locked; 0 if free."""
        if self.permanent:
            return float("inf")
        return max(0.0, self.locked_until - now)

    def failed(
        self,
        now: float,
        free_attempts: int,
        backoff_base: float,
        backoff_max: float,
        max_failures: int | None = None,
    ) -> Attempts:
        """The counter after one more wrong code at ``now`` [s].

        After ``free_attempts`` consecutive failures every further one locks the scope for
        ``backoff_base * 2**(k)`` seconds (k = failures beyond the free ones, capped at
        ``backoff_max``); after ``max_failures`` in total the lockout is permanent.
        """
        failures = self.failures + 1
        consecutive = self.consecutive + 1
        locked_until = self.locked_until
        beyond = consecutive - free_attempts
        if beyond >= 0:
            locked_until = now + min(backoff_max, backoff_base * 2.0 ** min(beyond, 60))
        permanent = self.permanent or (max_failures is not None and failures >= max_failures)
        return Attempts(failures, consecutive, locked_until, permanent, now)

    def forgotten(self, now: float, after: float) -> Attempts:
        """The consecutive count is forgotten once the newest failure is ``after`` s old."""
        if self.consecutive and now - self.last_failure > after and now >= self.locked_until:
            return replace(self, consecutive=0)
        return self

    def succeeded(self) -> Attempts:
        """A right code resets the consecutive count (not the total, nor a permanent lock)."""
        return replace(self, consecutive=0, locked_until=0.0)
