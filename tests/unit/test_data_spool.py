"""DATA spooling pieces: unstuffing as the bytes come, the in-flight byte budget, and
the start-up sweep of spool files a crash left behind."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nexusmail.ingest.data_budget import ByteBudget
from nexusmail.ingest.data_spool import (
    STALE_SPOOL_AGE_S,
    Unstuffer,
    remove_stale_spool_files,
    unstuff,
)

# Bytes rich in the characters that matter: CR, LF and dots.
_stuffed = st.lists(st.sampled_from([b"\r", b"\n", b".", b"\r\n", b"\r\n.", b"x"]),
                    max_size=60).map(b"".join)


@given(_stuffed, st.lists(st.integers(min_value=0, max_value=60), max_size=10))
def test_unstuffing_piece_by_piece_equals_unstuffing_the_whole(data: bytes,
                                                               cuts: list[int]) -> None:
    """Wherever the pieces are cut (a CRLF-dot or the first dot split in two), the
    streamed result is the one-shot result."""
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    unstuffer = Unstuffer()
    out = b"".join(unstuffer.feed(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert out + unstuffer.finish() == unstuff(data)


async def test_budget_lets_mails_through_while_they_fit_in_order() -> None:
    """Two 10-byte holds fit in 25; the third waits for a release; a 40-byte one (over
    the whole budget) waits for the budget to be empty, then goes alone."""
    budget = ByteBudget(25)
    order: list[str] = []

    async def hold(name: str, size: int, release: asyncio.Event) -> None:
        async with budget.hold(size):
            order.append(name)
            await release.wait()

    events = {name: asyncio.Event() for name in "abcd"}
    tasks = [asyncio.create_task(hold(n, s, events[n]))
             for n, s in (("a", 10), ("b", 10), ("c", 10), ("d", 40))]
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    events["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c"]
    events["b"].set()
    events["c"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c", "d"]
    assert budget.in_use_bytes == 40
    events["d"].set()
    await asyncio.gather(*tasks)
    assert budget.in_use_bytes == 0


async def test_a_waiter_that_goes_away_frees_its_place() -> None:
    """A client that disconnects while first in line does not hold up the next one,
    and nothing stays counted."""
    budget = ByteBudget(10)
    await budget.acquire(10)
    gone = asyncio.create_task(budget.acquire(10))
    small = asyncio.create_task(budget.acquire(5))
    await asyncio.sleep(0.01)
    gone.cancel()
    budget.release(10)
    await asyncio.wait_for(small, 1)
    assert gone.cancelled()
    assert budget.in_use_bytes == 5


def test_only_old_spool_files_are_swept(tmp_path: Path) -> None:
    """At start, spool files older than an hour go (a crash left them); a fresh one
    (another daemon's transfer) and other files stay."""
    old, fresh, other = tmp_path / "data-old.eml", tmp_path / "data-new.eml", tmp_path / "x"
    for path in (old, fresh, other):
        path.write_bytes(b"mail")
    now = 1_900_000_000.0
    os.utime(old, (now - STALE_SPOOL_AGE_S - 1,) * 2)
    os.utime(fresh, (now - 60,) * 2)
    os.utime(other, (now - 10 * STALE_SPOOL_AGE_S,) * 2)
    assert remove_stale_spool_files(tmp_path, now_epoch_s=now) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data-new.eml", "x"]
    assert remove_stale_spool_files(tmp_path / "missing", now_epoch_s=now) == 0
