"""A byte budget for large mails in memory at once, after their DATA was spooled.

Spooling bounds what a transfer holds while it is read; once the end marker came the
mail is read back and parsed, hashed and stored as bytes, several copies of it at the
peaks. This budget lets large mails through that phase only while their sizes fit in
it together, first come first served; the others wait on disk, their clients waiting
for the reply (RFC 5321 4.5.3.2.6 gives them 10 minutes). A mail larger than the whole
budget goes alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.in_use_bytes = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Wait until `size` bytes fit, keep them for the block, give them back."""
        await self.acquire(size)
        try:
            yield
        finally:
            self.release(size)

    async def acquire(self, size: int) -> None:
        if not self._waiting and self._fits(size):
            self.in_use_bytes += size
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((size, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(size)  # granted just as the client went away
            else:
                granted.cancel()
                self._grant()  # it may have been first in line, holding up the others
            raise

    def release(self, size: int) -> None:
        self.in_use_bytes -= size
        self._grant()

    def _fits(self, size: int) -> bool:
        return self.in_use_bytes == 0 or self.in_use_bytes + size <= self.capacity_bytes

    def _grant(self) -> None:
        # In order of arrival: a large mail is not overtaken for ever by smaller ones.
        while self._waiting:
            size, granted = self._waiting[0]
            if granted.done():
                self._waiting.popleft()
                continue
            if not self._fits(size):
                return
            self._waiting.popleft()
            self.in_use_bytes += size
            granted.set_result(None)
