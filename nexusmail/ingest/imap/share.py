"""How many IMAP folders one daemon should collect when several share the database.

Without a way to count the live daemons, a daemon takes every free folder (the first
one started would collect everything). With one, each keeps at most its fair share,
ceil(folders / live daemons): it takes no more free folders beyond that and lets go
of the ones above it, so a daemon that starts later gets some. Which ones it keeps is
decided by name, so every daemon lets go of the same kind of excess and none of them
flaps between folders.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog

from nexusmail.clock import Clock
from nexusmail.storage.connections import Storage
from nexusmail.tickets.workers import count_live

log = structlog.get_logger(__name__)

LiveDaemons = Callable[[], Awaitable[int]]


def live_daemons_of(store: Storage, clock: Clock, within_s: float) -> LiveDaemons:
    """Count the daemons whose heartbeat (the workers table) is fresher than `within_s`:
    a killed daemon stops counting after that, so its folders are shared out again."""
    async def live() -> int:
        async with store.read() as conn:
            return await count_live(conn, clock.now(), within_s)
    return live


class FairShare:
    def __init__(self, folders: int, live_daemons: LiveDaemons | None,
                 held: Callable[[], list[str]]) -> None:
        self.folders = folders
        self.live_daemons = live_daemons
        self.held = held  # names of the folders (accounts) this daemon holds now

    async def _share(self) -> int | None:
        if self.live_daemons is None:
            return None
        try:
            live = await self.live_daemons()
        except Exception as exc:  # not knowing is no reason to stop collecting
            log.warning("imap.live_daemons_unknown", error=str(exc))
            return None
        return math.ceil(self.folders / max(1, live))

    async def may_take(self) -> bool:
        """Whether this daemon may take one more free folder."""
        share = await self._share()
        return share is None or len(self.held()) < share

    async def may_keep(self, name: str) -> bool:
        """Whether this daemon keeps the folder `name` it holds."""
        share = await self._share()
        return share is None or name in sorted(self.held())[:share]
