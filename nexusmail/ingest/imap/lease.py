"""Who collects an IMAP folder when several daemons share one database: a lease.

One row per (account, folder): the holder (a daemon's incarnation id), an epoch that
grows by one at every change of holder, and when the lease runs out. A holder renews
well before that; a daemon that stalls (GC pause, lost network, SIGSTOP) past it is
replaced by another, which takes the row with epoch + 1. Everything that changes shared
state on the holder's behalf (the checkpoint save, moving or flagging mails) checks
owner AND epoch in the same statement, so the replaced daemon's late writes change
nothing, even if it still believes it holds the lease.

Lease time is the database's own clock on PostgreSQL (daemons on several machines
disagree about the time; the one database does not), and the injected clock on SQLite,
where only one daemon runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nexusmail.storage.connections import WriteTx, dialect_of


class LeaseLost(Exception):
    """Another daemon holds the folder now: stop touching it until it is taken again."""


@dataclass(frozen=True)
class Lease:
    account: str
    folder: str
    owner: str
    epoch: int


def _now_sql(tx: WriteTx, now: datetime) -> str:
    """The current time in seconds as an SQL expression. On SQLite it is our clock's
    value written as a number literal (a float we formatted, never outside input), so
    one statement can compare against it several times."""
    if dialect_of(tx) == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)"
    return f"{now.timestamp():.6f}"


def acquire_lease(tx: WriteTx, account: str, folder: str, owner: str, lease_s: float,
                  now: datetime) -> Lease | None:
    """Take the folder's lease if it is free, expired, or already ours (then it is only
    renewed, same epoch). None when another daemon holds it."""
    at = _now_sql(tx, now)
    row = tx.execute(
        "INSERT INTO imap_leases (account, folder, owner, epoch, lease_until)"  # noqa: S608
        f" VALUES (?, ?, ?, 1, {at} + ?)"
        " ON CONFLICT (account, folder) DO UPDATE SET"
        " epoch = CASE WHEN imap_leases.owner = excluded.owner"
        f" AND imap_leases.lease_until > {at}"
        " THEN imap_leases.epoch ELSE imap_leases.epoch + 1 END,"
        " owner = excluded.owner, lease_until = excluded.lease_until"
        f" WHERE imap_leases.owner = excluded.owner OR imap_leases.lease_until <= {at}"
        " RETURNING epoch",
        (account, folder, owner, float(lease_s)),
    ).fetchone()
    return None if row is None else Lease(account, folder, owner, int(row[0]))


def renew_lease(tx: WriteTx, lease: Lease, lease_s: float, now: datetime) -> bool:
    """Push the lease's end further; False when it was taken (owner or epoch changed).
    An expired lease nobody took yet is still ours: nobody else touched the folder."""
    cursor = tx.execute(
        f"UPDATE imap_leases SET lease_until = {_now_sql(tx, now)} + ?"  # noqa: S608
        " WHERE account = ? AND folder = ? AND owner = ? AND epoch = ?",
        (float(lease_s), lease.account, lease.folder, lease.owner, lease.epoch),
    )
    return cursor.rowcount == 1


def release_lease(tx: WriteTx, lease: Lease, now: datetime) -> None:
    """On a clean stop: let another daemon take the folder at once, not after expiry."""
    tx.execute(
        f"UPDATE imap_leases SET lease_until = {_now_sql(tx, now)}"  # noqa: S608
        " WHERE account = ? AND folder = ? AND owner = ? AND epoch = ?",
        (lease.account, lease.folder, lease.owner, lease.epoch),
    )


def end_leases_of(tx: WriteTx, owner: str, now: datetime) -> int:
    """A daemon known to be dead: every folder it held is free now (its next holder's
    new epoch fences anything it might still have had in flight). Returns how many."""
    return int(tx.execute(
        f"UPDATE imap_leases SET lease_until = {_now_sql(tx, now)}"  # noqa: S608
        " WHERE owner = ?",
        (owner,),
    ).rowcount)


def held_by(tx: WriteTx, owner: str, now: datetime) -> int:
    """How many folders `owner` holds a lease on now (what a daemon's heartbeat shows)."""
    row = tx.execute(
        "SELECT count(*) FROM imap_leases"  # noqa: S608
        f" WHERE owner = ? AND lease_until > {_now_sql(tx, now)}",
        (owner,),
    ).fetchone()
    return int(row[0])
