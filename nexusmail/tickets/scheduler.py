"""Service schedules: the task that opens interventions ahead of contract dates.

(Placeholder with the interface the daemon drives; the service-schedule issue fills it.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.tickets.store import Store


class Scheduler:
    def __init__(self, store: Store, settings: Settings, clock: Clock, *,
                 reply_keys: Sequence[bytes], on_outbox: Callable[[], None]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.reply_keys = reply_keys
        self.on_outbox = on_outbox
        self.last_tick: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
