"""The IMAP fair share: how many folders a daemon takes and which it keeps."""

from __future__ import annotations

from nexusmail.ingest.imap.share import FairShare


def share(folders: int, live: int | None, held: list[str]) -> FairShare:
    async def live_daemons() -> int:
        if live is None:
            raise OSError("database away")
        return live
    return FairShare(folders, live_daemons, lambda: held)


async def test_a_daemon_takes_up_to_its_share_and_no_more() -> None:
    """Five folders over two daemons: a share is three (rounded up, so none is left)."""
    assert await share(5, 2, ["a", "b"]).may_take()
    assert not await share(5, 2, ["a", "b", "c"]).may_take()
    assert await share(5, 0, ["a", "b", "c", "d"]).may_take()  # 0 live counts as 1


async def test_above_its_share_a_daemon_keeps_the_first_by_name() -> None:
    """Holding four of four with two daemons: it keeps "a" and "b", lets go of the rest."""
    held = ["d", "b", "a", "c"]
    kept = [name for name in held if await share(4, 2, held).may_keep(name)]
    assert kept == ["b", "a"]


async def test_not_knowing_the_live_daemons_limits_nothing() -> None:
    """No count, or one that cannot be read: take and keep every folder, as one daemon."""
    assert await share(3, None, ["a", "b", "c"]).may_take()
    assert await share(3, None, ["a", "b", "c"]).may_keep("c")
    assert await FairShare(3, None, lambda: ["a", "b", "c"]).may_take()
