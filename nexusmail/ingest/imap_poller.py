"""IMAP collection: every configured account feeds `Ingest.accept`.

(Placeholder with the interface the daemon drives; the IMAP issue fills it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Ingest


class ImapCollector:
    def __init__(self, settings: Settings, ingest: Ingest, clock: Clock) -> None:
        self.settings = settings
        self.ingest = ingest
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def states(self) -> dict[str, dict[str, Any]]:
        """Per account: connected, last success, last error (for health checks)."""
        return {}
