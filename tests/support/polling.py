"""Waiting in tests for something another process or task does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(check: Callable[[], object], what: str = "the condition",
                     *, timeout_s: float = 10.0, every_s: float = 0.05) -> None:
    """Poll `check` (sync, or returning an awaitable) until truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)
