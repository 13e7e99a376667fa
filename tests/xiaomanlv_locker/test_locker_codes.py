"""Codes, the device secret, operator credentials and attempt limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xiaomanlv_locker.codes import (
    Attempts,
    SecretFileError,
    code_tag,
    hash_credential,
    is_code_shaped,
    load_or_create_secret,
    matches,
    new_code,
    verify_credential,
)


def test_codes_have_the_configured_digits_and_vary() -> None:
    codes = {new_code(6) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # 200 draws from 10^6 almost never collide more than a few times


def test_tag_is_keyed_and_bound_to_parcel_and_stop() -> None:
    key, other = b"k" * 32, b"o" * 32
    tag = code_tag(key, "p1", "A", "123456")
    assert matches(key, "p1", "A", "123456", tag)
    assert not matches(other, "p1", "A", "123456", tag)
    assert not matches(key, "p2", "A", "123456", tag)
    assert not matches(key, "p1", "B", "123456", tag)
    assert not matches(key, "p1", "A", "123457", tag)
    assert b"123456" not in tag


def test_code_shape() -> None:
    assert is_code_shaped("01234567", 8)
    assert not is_code_shaped("0123456", 8)
    assert not is_code_shaped("0123456x", 8)
    assert not is_code_shaped("٠١٢٣٤٥٦٧", 8)  # non-ASCII digits


def test_secret_is_created_0600_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "device.key"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == first


def test_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    load_or_create_secret(path)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="mode 0644"):
        load_or_create_secret(path)


def test_secret_of_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="5 bytes"):
        load_or_create_secret(path)


def test_credential_hash_verifies_only_the_right_credential() -> None:
    stored = hash_credential("s3cret", n=2**10)
    assert verify_credential("s3cret", stored)
    assert not verify_credential("s3cret ", stored)
    assert stored.digest != hash_credential("s3cret", n=2**10).digest  # salted


def test_backoff_doubles_after_free_attempts_and_caps() -> None:
    a = Attempts()
    waits = []
    for k in range(6):
        a = a.failed(100.0 + k, free_attempts=3, backoff_base=10.0, backoff_max=50.0)
        waits.append(a.retry_after(100.0 + k))
    assert waits == [0.0, 0.0, 10.0, 20.0, 40.0, 50.0]
    assert a.succeeded().retry_after(106.0) == 0.0
    assert a.succeeded().failures == 6


def test_permanent_lockout_after_max_failures() -> None:
    a = Attempts()
    for _ in range(4):
        a = a.failed(0.0, free_attempts=100, backoff_base=1.0, backoff_max=1.0, max_failures=4)
    assert a.permanent and a.retry_after(1e9) == float("inf")
    assert a.succeeded().permanent
