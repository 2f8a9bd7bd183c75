"""A lock held until the writer's transaction ends, for a read that decides a write.

Several daemons on one PostgreSQL database each have their own writer. A unit that
looks something up and then writes on what it found (is this mail a copy? does this
sender have a contact yet? is the hourly budget spent?) would let two daemons both find
nothing and both write. Such a unit first takes `hold(tx, scope, key)`: a transaction
advisory lock (`pg_advisory_xact_lock`) on a key naming what it decides about; a second
daemon deciding about the same thing waits there until the first commits, and its own
lookup, a new statement under READ COMMITTED, then sees what the first wrote. The lock
must be its own statement, before the lookup: a statement's snapshot is taken when it
starts, so a lookup in the same statement would not see a commit it waited for.

On SQLite there is one writer, which already runs units one after the other: nothing to
do, and no statement spent. The lock ends with the transaction (the group commit), so
it also holds behind a transaction-mode pooler, and nothing can leak it.
"""

from __future__ import annotations

import hashlib

from nexusmail.storage.connections import WriteTx, dialect_of


def lock_key(scope: str, key: object) -> int:
    """The 64-bit advisory lock key for `key` within `scope` (a signed bigint)."""
    digest = hashlib.blake2b(f"{scope}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold(tx: WriteTx, scope: str, key: object) -> bool:
    """Wait for, then hold until the transaction ends, the lock on `key` in `scope`.
    True when a lock was taken, so what was read before may have changed meanwhile;
    False on SQLite, where nothing else writes."""
    if dialect_of(tx) != "postgresql":
        return False
    tx.execute("SELECT pg_advisory_xact_lock(CAST(? AS BIGINT))", (lock_key(scope, key),))
    return True
