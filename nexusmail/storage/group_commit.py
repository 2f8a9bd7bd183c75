"""The one writer both stores share: a thread that applies queued write units in groups.

Units queued while a commit is in flight are applied together, each in its own
savepoint, and made durable by one COMMIT; a unit's future resolves only after that
COMMIT, so an SMTP 250 sent on it is never ahead of the disk. What a group's
transaction looks like is the store's own (`apply_group`); the queueing, the thread
and handing each outcome back to its caller's event loop are here, once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Units applied in one transaction at most; bounds the latency one commit adds.
MAX_GROUP = 64

# What apply_group gives back per unit: (True, its result) or (False, the exception
# its caller gets).
Outcome = tuple[bool, Any]


class StorageError(Exception):
    """The store could not make a change durable; the caller must not acknowledge."""


@dataclass
class _Unit:
    fn: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class GroupCommitWriter(ABC):
    """Runs `apply_group` in one thread over groups of at most MAX_GROUP units."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Unit | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0  # how many COMMITs the writer made (group commit shows here)

    def start_writer(self) -> None:
        self._thread = threading.Thread(target=self._run_writer, name="nexusmail-writer")
        self._thread.start()

    async def stop_writer(self) -> None:
        """Let the queued units finish, then end the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def write(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(conn)` in the writer's transaction; return once it is committed.

        Raises what `fn` raised (its changes rolled back), or StorageError when the
        commit itself failed (disk full, I/O error, database gone)."""
        if self._thread is None:
            raise StorageError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Unit(fn, future, loop))
        return await future

    @abstractmethod
    def apply_group(self, fns: list[Callable[[Any], Any]]) -> list[Outcome]:
        """Apply the units in one transaction (a savepoint each); one outcome per unit.
        Runs in the writer thread."""

    def _run_writer(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            units = [u for u in group if isinstance(u, _Unit)]
            outcomes = self.apply_group([u.fn for u in units])
            for unit, (ok, value) in zip(units, outcomes, strict=True):
                unit.loop.call_soon_threadsafe(_settle, unit.future, ok, value)
            if _STOP in group:
                return


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return  # the caller went away (an SMTP client hung up)
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
