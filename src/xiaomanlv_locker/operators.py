"""Register operator credentials in the locker database (scrypt-hashed).

``python -m xiaomanlv_locker.operators --data-dir DIR --id op1`` reads the credential from
stdin (one line) and stores ``scrypt(credential, salt)``; the plaintext is never stored.
Run it while the locker node is stopped, or at any time (SQLite WAL allows one writer at once;
the write waits for the node's transaction).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from xiaomanlv_locker.codes import SCRYPT_N, hash_credential, load_or_create_secret
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.store import Store


def add_operator(
    config: LockerConfig, operator_id: str, credential: str, n: int = SCRYPT_N
) -> None:
    """Store (or replace) ``operator_id``'s credential hash in the database of ``config``.

    Raises:
        ValueError: an empty id or a credential shorter than 8 characters.
    """
    if not operator_id.strip():
        raise ValueError("operator id is empty")
    if len(credential) < 8:
        raise ValueError(f"credential of {operator_id!r} has {len(credential)} characters, min 8")
    secret = load_or_create_secret(config.path("secret"))
    store = Store(config.path("db"), secret)
    try:
        store.init_layout(config.compartment_sizes(), time.time())
        with store.transaction(time.time()) as tx:
            tx.set_operator(operator_id, hash_credential(credential, n=n))
            tx.audit("operator_added", detail=f"operator {operator_id}")
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the locker's data_dir parameter")
    parser.add_argument("--id", required=True, help="operator id")
    args = parser.parse_args(argv)
    credential = sys.stdin.readline().rstrip("\n")
    try:
        add_operator(LockerConfig(data_dir=args.data_dir), args.id, credential)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"operator {args.id!r} stored in {LockerConfig(data_dir=args.data_dir).path('db')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
