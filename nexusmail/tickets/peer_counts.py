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
    row_id = int(tx.execute(
        "INSERT INTO peer_events (kind, address, domain, at) VALUES (?, ?, ?, ?) RETURNING id",
        (kind, peer.address, peer.domain, iso(now))).fetchone()[0])
    if row_id % PRUNE_EVERY == 0:
        tx.execute("DELETE FROM peer_events WHERE kind = ? AND at < ?", (kind, iso(now - keep)))


@dataclass(frozen=True)
class Reached:
    """Whether a peer's address, its domain and everyone had their cap of events."""

    address: bool
    domain: bool
    total: bool


def caps_reached(tx: WriteTx, kind: PeerEvent, peer: Peer, since: datetime, *,
                 address_cap: int, domain_cap: int, total_cap: int) -> Reached:
    """Whether the peer's address, its domain and everyone had at least their cap of
    `kind` events since `since`, in one statement. A count stops at its cap (only
    whether it is reached matters), and the domain's and everyone's are not read at all
    while the cap is above every id the table ever gave (ids are distinct and positive:
    it never held that many rows). Else a high total budget read the whole window's
    rows at every mail."""
    at = iso(since)
    row = tx.execute(
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
         total_cap, kind, at, total_cap, total_cap)).fetchone()
    return Reached(bool(row[0]), bool(row[1]), bool(row[2]))


def count_by_address(tx: WriteTx, kind: PeerEvent, address: str, since: datetime) -> int:
    return _count(tx, "SELECT count(*) FROM peer_events WHERE kind = ? AND address = ?"
                      " AND at >= ?", (kind, address, iso(since)))


def count_by_domain(tx: WriteTx, kind: PeerEvent, domain: str, since: datetime) -> int:
    return _count(tx, "SELECT count(*) FROM peer_events WHERE kind = ? AND domain = ?"
                      " AND at >= ?", (kind, domain, iso(since)))


def _count(tx: WriteTx, sql: str, params: tuple[str, ...]) -> int:
    return int(tx.execute(sql, params).fetchone()[0])
