"""The sequence sweep: the task that mails the action-sequence steps whose time has come.

A tick (at start, then every `[sla] sweep_interval_s`, sleeping on the stop event)
reads the scheduled steps due by now through a partial index (its cost follows those
steps, not every run) and mails each in its own write unit (tickets.sequence_steps), so
one bad step cannot hold back the others. A step due while the daemon was down is
mailed at the next start; one mailed already is not mailed again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog

from nexusmail.clock import Clock, iso
from nexusmail.config import Settings
from nexusmail.live_settings import LiveSettings, live
from nexusmail.storage.connections import Storage
from nexusmail.tickets.sequence_steps import StepMailed, mail_step
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)

# Write units in flight at once (as the scheduler: fills the writer's group commits).
CHUNK = 256
DUE_SQL = ("SELECT id FROM sequence_run_steps WHERE status = 'scheduled' AND mail_at <= ?"
           " ORDER BY mail_at, id")


@dataclass(frozen=True)
class SequenceTick:
    due: int              # steps whose time had come
    mailed: int           # of them, mailed now
    blocked: int          # could not be mailed (the thread says why)
    failed: int           # whose unit failed (logged; retried next tick)
    mails: int            # assignment mails queued


class SequenceSweep:
    def __init__(self, store: Storage, settings: Settings | LiveSettings, clock: Clock, *,
                 reply_keys: Sequence[bytes], on_outbox: Callable[[], None]) -> None:
        self.store = store
        self.live = live(settings)
        self.clock = clock
        self.reply_keys = reply_keys
        self.on_outbox = on_outbox

    async def run(self, stop: asyncio.Event) -> None:
        """Tick now, then every interval until `stop` is set."""
        while not stop.is_set():
            try:
                await self.tick(stop)
            except Exception:  # the loop boundary: log, keep the task alive, retry later
                log.exception("sequence.tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(),
                                       timeout=self.live.current.sla.sweep_interval_s)

    async def tick(self, stop: asyncio.Event | None = None) -> SequenceTick:
        """Mail every step due by now, once."""
        settings, now = self.live.current, self.clock.now()
        if not self.reply_keys:
            log.debug("sequence.tick", skipped="no reply signing key is loaded")
            return SequenceTick(0, 0, 0, 0, 0)
        async with self.store.read() as conn:
            due = [int(row[0]) for row in await conn.execute_fetchall(DUE_SQL, (iso(now),))]
        done, failed = await self._mail(due, now, settings, stop)
        result = SequenceTick(due=len(due), mailed=sum(d.outcome == "mailed" for d in done),
                              blocked=sum(d.outcome == "blocked" for d in done),
                              failed=failed, mails=sum(d.mails for d in done))
        if result.mails:
            self.on_outbox()
        (log.info if due else log.debug)(
            "sequence.tick", due=result.due, mailed=result.mailed, blocked=result.blocked,
            failed=failed, mails=result.mails)
        return result

    async def _mail(self, due: list[int], now: datetime, settings: Settings,
                    stop: asyncio.Event | None) -> tuple[list[StepMailed], int]:
        done: list[StepMailed] = []
        failed = 0
        for start in range(0, len(due), CHUNK):
            if stop is not None and stop.is_set():
                break  # what is left is still due at the next start
            chunk = due[start:start + CHUNK]
            outcomes = await asyncio.gather(
                *(self.store.write(partial(mail_step, step_id=step_id, now=now,
                                           settings=settings, reply_keys=self.reply_keys))
                  for step_id in chunk),
                return_exceptions=True)
            for step_id, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, StorageError):
                    raise outcome  # the disk, not the step: the whole tick retries
                if isinstance(outcome, BaseException):
                    failed += 1
                    log.error("sequence.step_failed", step_id=step_id, error=repr(outcome))
                elif outcome is not None:
                    done.append(outcome)
        return done, failed
