"""The counts behind the acknowledgement budgets and the loop guard, on the run's store:
what one statement reads for address, domain and everyone, the caps, and the pruning
that keeps the table to its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from nexusmail.mail.peers import Peer, peer_of
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.peer_counts import PRUNE_EVERY, PeerEvent, counts_up_to, record

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROBOT = peer_of("Robot+7@Loop.test", ["support@firm.test"])
NEIGHBOUR = peer_of("other@loop.test", ["support@firm.test"])
STRANGER = peer_of("someone@else.test", ["support@firm.test"])


def _record_all(tx: WriteTx, events: list[tuple[PeerEvent, Peer, datetime]],
                keep: timedelta) -> None:
    for kind, peer, at in events:
        record(tx, kind, peer, now=at, keep=keep)


def _counts(tx: WriteTx, kind: PeerEvent, since: datetime, cap: int) -> tuple[int, int, int]:
    counts = counts_up_to(tx, kind, ROBOT, since, address_cap=cap, domain_cap=cap,
                          total_cap=cap)
    return counts.address, counts.domain, counts.total


def _rows(tx: WriteTx) -> int:
    return int(tx.execute("SELECT count(*) FROM peer_events").fetchone()[0])


async def test_counts_are_per_address_domain_and_everyone_within_the_window(
        store: Storage) -> None:
    """Events before `since` and of the other kind are not counted; the robot's
    plus-addresses are one address, its neighbour shares only the domain."""
    minute = timedelta(minutes=1)
    events = [(PeerEvent.ACK, ROBOT, START - 2 * minute),       # before the window
              (PeerEvent.ACK, ROBOT, START),
              (PeerEvent.ACK, peer_of("robot+8@loop.test", []), START + minute),
              (PeerEvent.ACK, NEIGHBOUR, START + minute),
              (PeerEvent.ACK, STRANGER, START + minute),
              (PeerEvent.CASE, ROBOT, START + minute)]          # the other kind
    await store.write(partial(_record_all, events=events, keep=timedelta(hours=1)))
    assert await store.write(partial(_counts, kind=PeerEvent.ACK, since=START,
                                     cap=100)) == (2, 3, 4)
    assert await store.write(partial(_counts, kind=PeerEvent.CASE, since=START,
                                     cap=100)) == (1, 1, 1)


async def test_each_count_stops_at_its_cap(store: Storage) -> None:
    """A budget only asks whether it is reached: a count never goes past its cap."""
    events = [(PeerEvent.ACK, ROBOT, START)] * 5
    await store.write(partial(_record_all, events=events, keep=timedelta(hours=1)))
    assert await store.write(partial(_counts, kind=PeerEvent.ACK, since=START,
                                     cap=3)) == (3, 3, 3)
    assert await store.write(partial(_counts, kind=PeerEvent.ACK, since=START,
                                     cap=0)) == (0, 0, 0)


async def test_aged_rows_are_pruned_as_new_ones_come(store: Storage) -> None:
    """A day of one event a minute with an hour's window leaves about an hour of rows
    (plus at most a pruning interval), and no counted row is ever lost."""
    events = [(PeerEvent.ACK, ROBOT, START + timedelta(minutes=m)) for m in range(24 * 60)]
    await store.write(partial(_record_all, events=events, keep=timedelta(hours=1)))
    assert await store.write(_rows) <= 61 + PRUNE_EVERY
    last_hour = START + timedelta(minutes=24 * 60 - 60)
    assert await store.write(partial(_counts, kind=PeerEvent.ACK, since=last_hour,
                                     cap=1000)) == (60, 60, 60)
