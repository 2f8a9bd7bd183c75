"""Injected time: code asks a clock, never `datetime.now()`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    """Anything that can say what time it is, as an aware UTC datetime."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        self._mono += delta.total_seconds()


# One write unit stamps its `now` a dozen times over (inbound row, case, messages,
# outbox, counts): the text of the few latest instants is kept rather than made again.
@lru_cache(maxsize=64)
def iso(moment: datetime) -> str:
    """The one text form of a timestamp in the store: UTC ISO 8601, second precision."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")
