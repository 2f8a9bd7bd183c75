"""The peer_events table: what the acknowledgement budgets and the loop guard count.

One row per acknowledgement queued and per case opened by mail, under the sender as
counted (nexusmail.mail.peers: address without +extension, and domain). Rows are only
needed for the longest window that reads them, so each insert deletes what has aged
past it: the table stays the size of an hour or two of traffic.

A count decides a write (one more acknowledgement, one more case before a mute), so a
unit reading counts first holds them still with `hold_counts` until it commits: else two
daemons both read "one below the budget" and both go over it. One lock for every count,
the total budget being one number for all senders.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from nexusmail.clock import iso
from nexusmail.mail.peers import Peer
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import WriteTx


class PeerEvent(StrEnum):
    ACK = "ack"      # an acknowledgement queued to the peer
    CASE = "case"    # a case the peer's mail opened


def hold_counts(tx: WriteTx) -> None:
    """Until this transaction ends, no other daemon's writer reads or adds to the counts
    (storage.xact_lock; taking it again in the same transaction is harmless)."""
    xact_lock.hold(tx, "peer_events", "all")


def record(tx: WriteTx, kind: PeerEvent, peer: Peer, *, now: datetime,
           keep: timedelta) -> None:
    """Count one `kind` event for `peer`; forget those older than `keep`."""
    tx.execute("DELETE FROM peer_events WHERE kind = ? AND at < ?", (kind, iso(now - keep)))
    tx.execute("INSERT INTO peer_events (kind, address, domain, at) VALUES (?, ?, ?, ?)",
               (kind, peer.address, peer.domain, iso(now)))


def count_by_address(tx: WriteTx, kind: PeerEvent, address: str, since: datetime) -> int:
    return _count(tx, "SELECT count(*) FROM peer_events WHERE kind = ? AND address = ?"
                      " AND at >= ?", (kind, address, iso(since)))


def count_by_domain(tx: WriteTx, kind: PeerEvent, domain: str, since: datetime) -> int:
    return _count(tx, "SELECT count(*) FROM peer_events WHERE kind = ? AND domain = ?"
                      " AND at >= ?", (kind, domain, iso(since)))


def count_all(tx: WriteTx, kind: PeerEvent, since: datetime) -> int:
    return _count(tx, "SELECT count(*) FROM peer_events WHERE kind = ? AND at >= ?",
                  (kind, iso(since)))


def _count(tx: WriteTx, sql: str, params: tuple[str, ...]) -> int:
    return int(tx.execute(sql, params).fetchone()[0])
