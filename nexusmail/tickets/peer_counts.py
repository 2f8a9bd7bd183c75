"""The peer_events table: what the acknowledgement budgets and the loop guard count.

One row per acknowledgement queued and per case opened by mail, under the sender as
counted (nexusmail.mail.peers: address without +extension, and domain). Rows are only
needed for the longest window that reads them, so every PRUNE_EVERY-th insert deletes
what has aged past it: the table stays the size of an hour or two of traffic. (Not on
every insert: that was one more statement per new case for the store's one writer,
and the counts only read rows inside their window anyway.)

A count decides a write (one more acknowledgement, one more case before a mute), so a
unit reading counts first holds them still with `hold_counts` until it commits: else two
daemons both read "one below the budget" and both go over it. One lock for every count,
the total budget being one number for all senders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from nexusmail.clock import iso
from nexusmail.mail.peers import Peer
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import WriteTx

# An insert whose id is a multiple of this also deletes its kind's aged rows.
PRUNE_EVERY = 64


class PeerEvent(StrEnum):
    ACK = "ack"      # an acknowledgement queued to the peer
    CASE = "case"    # a case the peer's mail opened


def hold_counts(tx: WriteTx) -> None:
    """Until this transaction ends, no other daemon's writer reads or adds to the counts
    (storage.xact_lock; taking it again in the same transaction is harmless)."""
    xact_lock.hold(tx, "peer_events", "all")


def record(tx: WriteTx, kind: PeerEvent, peer: Peer, *, now: datetime,
           keep: timedelta) -> None:
    """Count one `kind` event for `peer`; now and then, forget those older than `keep`."""
    tx.execute("INSERT INTO peer_events (kind, address, domain, at) VALUES (?, ?, ?, ?)",
               (kind, peer.address, peer.domain, iso(now)))
    # Whether this is a pruning insert is decided by the server, from the newest id (this
    # row's, or a later one of another daemon's): reading the id back here was a round
    # trip the one writer waited for on PostgreSQL. The test is a constant of the
    # statement, worked out once before any row is looked at.
    tx.execute("DELETE FROM peer_events WHERE (SELECT max(id) FROM peer_events) % ? = 0"
               " AND kind = ? AND at < ?", (PRUNE_EVERY, kind, iso(now - keep)))


@dataclass(frozen=True)
class Reached:
    """Whether a peer's address, its domain and everyone had their cap of events."""

    address: bool
    domain: bool
    total: bool


def caps_reached(tx: WriteTx, kind: PeerEvent, peer: Peer, since: datetime, *,
                 address_cap: int, domain_cap: int, total_cap: int) -> Reached:
    """`ask_caps_reached`, answered at once."""
    return ask_caps_reached(tx, kind, peer, since, address_cap=address_cap,
                            domain_cap=domain_cap, total_cap=total_cap)()


def ask_caps_reached(tx: WriteTx, kind: PeerEvent, peer: Peer, since: datetime, *,
                     address_cap: int, domain_cap: int, total_cap: int
                     ) -> Callable[[], Reached]:
    """Whether the peer's address, its domain and everyone had at least their cap of
    `kind` events since `since`, in one statement. A count stops at its cap (only
    whether it is reached matters), and the domain's and everyone's are not read at all
    while the cap is above every id the table ever gave (ids are distinct and positive:
    it never held that many rows). Else a high total budget read the whole window's
    rows at every mail. Asked now, read when the returned function is called (on
    PostgreSQL the answer can come back with another read of the unit's)."""
    at = iso(since)
    cursor = tx.execute(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM peer_events"
        "   WHERE kind = ? AND address = ? AND at >= ? LIMIT ?) AS a) >= ?,"
        " CASE WHEN (SELECT coalesce(max(id), 0) FROM peer_events) < ? THEN 0"
        "  ELSE (SELECT count(*) FROM (SELECT 1 FROM peer_events"
        "   WHERE kind = ? AND domain = ? AND at >= ? LIMIT ?) AS d) END >= ?,"
        " CASE WHEN (SELECT coalesce(max(id), 0) FROM peer_events) < ? THEN 0"
        "  ELSE (SELECT count(*) FROM (SELECT 1 FROM peer_events"
        "   WHERE kind = ? AND at >= ? LIMIT ?) AS t) END >= ?",
        (kind, peer.address, at, address_cap, address_cap,
         domain_cap, kind, peer.domain, at, domain_cap, domain_cap,
         total_cap, kind, at, total_cap, total_cap))

    def answer() -> Reached:
        row = cursor.fetchone()
        return Reached(bool(row[0]), bool(row[1]), bool(row[2]))
    return answer


# A peer's events of one kind since a moment, by address or by domain: a query of its
# own, or a scalar subquery of a caller's statement (parameters: kind, peer, since).
COUNT_BY_ADDRESS = "SELECT count(*) FROM peer_events WHERE kind = ? AND address = ? AND at >= ?"
COUNT_BY_DOMAIN = "SELECT count(*) FROM peer_events WHERE kind = ? AND domain = ? AND at >= ?"


def count_by_address(tx: WriteTx, kind: PeerEvent, address: str, since: datetime) -> int:
    return _count(tx, COUNT_BY_ADDRESS, (kind, address, iso(since)))


def count_by_domain(tx: WriteTx, kind: PeerEvent, domain: str, since: datetime) -> int:
    return _count(tx, COUNT_BY_DOMAIN, (kind, domain, iso(since)))


def _count(tx: WriteTx, sql: str, params: tuple[str, ...]) -> int:
    return int(tx.execute(sql, params).fetchone()[0])
