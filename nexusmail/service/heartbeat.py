"""This daemon's heartbeat in the workers table, and the cluster as last seen.

Every `interval_s` (a third of the outbox lease, so a live daemon's row never looks
older than a lease) the daemon records that it is alive and how many outgoing mails it
holds, then reads every daemon's row: health and /metrics show that snapshot without a
query of their own. A clean stop removes the row; a killed daemon's row simply stops
moving, which is what an operator watches for.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import structlog

from nexusmail.clock import Clock
from nexusmail.ingest.imap.lease import held_by as imap_held_by
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.outbox import held_by
from nexusmail.tickets.workers import WorkerRow, heartbeat, leave, list_workers

log = structlog.get_logger(__name__)


class Heartbeat:
    def __init__(self, store: Storage, clock: Clock, worker_id: str, *,
                 interval_s: float) -> None:
        self.store = store
        self.clock = clock
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.started_at: datetime = clock.now()
        self.cluster: list[WorkerRow] = []

    async def beat(self) -> None:
        """Record this daemon's heartbeat; refresh the cluster snapshot."""
        now = self.clock.now()

        def unit(tx: WriteTx) -> None:
            holds = {"outbox": held_by(tx, now=now, worker_id=self.worker_id),
                     "imap": imap_held_by(tx, self.worker_id, now)}
            heartbeat(tx, worker_id=self.worker_id, started_at=self.started_at, now=now,
                      holds=holds)

        await self.store.write(unit)
        async with self.store.read() as conn:
            self.cluster = await list_workers(conn)

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until `stop`, then leave the table."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
                if stop.is_set():
                    break
                try:
                    await self.beat()
                except Exception:  # the loop boundary: a missed beat, not a dead daemon
                    log.exception("heartbeat.failed")
        finally:
            try:
                await self.store.write(lambda tx: leave(tx, self.worker_id))
            except Exception:  # the store may be gone already; the row ages out
                log.exception("heartbeat.leave_failed")

    def details(self) -> dict[str, Any]:
        """For `GET /api/v1/health`: this daemon's id and every daemon's last heartbeat."""
        return {"self": self.worker_id, "daemons": [
            {"id": w.id, "started_at": w.started_at, "last_heartbeat": w.last_seen,
             "holds": dict(w.holds)} for w in self.cluster]}
