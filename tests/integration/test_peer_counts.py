"""The counts behind the acknowledgement budgets and the loop guard, on the run's store:
what one statement says of address, domain and everyone's caps, and the pruning that
keeps the table to its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from nexusmail.mail.peers import Peer, peer_of
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.peer_counts import PRUNE_EVERY, PeerEvent, caps_reached, record

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROBOT = peer_of("Robot+7@Loop.test", ["support@firm.test"])
NEIGHBOUR = peer_of("other@loop.test", ["support@firm.test"])
STRANGER = peer_of("someone@else.test", ["support@firm.test"])


def _record_all(tx: WriteTx, events: list[tuple[PeerEvent, Peer, datetime]],
                keep: timedelta) -> None:
    for kind, peer, at in events:
        record(tx, kind, peer, now=at, keep=keep)


def _reached(tx: WriteTx, kind: PeerEvent, since: datetime,
             caps: tuple[int, int, int]) -> tuple[bool, bool, bool]:
    reached = caps_reached(tx, kind, ROBOT, since, address_cap=caps[0], domain_cap=caps[1],
                           total_cap=caps[2])
    return reached.address, reached.domain, reached.total


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
    # In the window: the robot's address 2, its domain 3, everyone 4 acknowledgements.
    for caps, expected in (((2, 3, 4), (True, True, True)),
                           ((3, 4, 5), (False, False, False)),
                           ((2, 4, 5), (True, False, False)),
                           ((3, 3, 5), (False, True, False))):
        assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=START,
                                         caps=caps)) == expected
    assert await store.write(partial(_reached, kind=PeerEvent.CASE, since=START,
                                     caps=(1, 1, 1))) == (True, True, True)
    assert await store.write(partial(_reached, kind=PeerEvent.CASE, since=START,
                                     caps=(2, 2, 2))) == (False, False, False)


async def test_a_cap_of_zero_is_always_reached_and_a_huge_one_never(store: Storage) -> None:
    """0 allows nothing, even on an empty table; a cap above every id ever given is not
    reached (the table never held that many rows), and one just at the count is."""
    assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=START,
                                     caps=(0, 0, 0))) == (True, True, True)
    events = [(PeerEvent.ACK, ROBOT, START)] * 5
    await store.write(partial(_record_all, events=events, keep=timedelta(hours=1)))
    assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=START,
                                     caps=(1_000_000,) * 3)) == (False, False, False)
    assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=START,
                                     caps=(5, 5, 5))) == (True, True, True)


async def test_aged_rows_are_pruned_as_new_ones_come(store: Storage) -> None:
    """A day of one event a minute with an hour's window leaves about an hour of rows
    (plus at most a pruning interval), and no counted row is ever lost."""
    events = [(PeerEvent.ACK, ROBOT, START + timedelta(minutes=m)) for m in range(24 * 60)]
    await store.write(partial(_record_all, events=events, keep=timedelta(hours=1)))
    assert await store.write(_rows) <= 61 + PRUNE_EVERY
    last_hour = START + timedelta(minutes=24 * 60 - 60)
    assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=last_hour,
                                     caps=(60, 60, 60))) == (True, True, True)
    assert await store.write(partial(_reached, kind=PeerEvent.ACK, since=last_hour,
                                     caps=(61, 61, 61))) == (False, False, False)
