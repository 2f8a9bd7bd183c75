"""Service schedules: the task that opens interventions ahead of contract dates.

A tick reads the ids of the schedules due today through the partial index on
next_opening_on (its cost follows the due schedules, not all of them), then opens each
one's due occurrences in its own write unit (tickets.schedules.open_due), so one bad
schedule cannot hold back the others; units queued together share a group commit.
`run` ticks at start and then every `[scheduler] interval_s`, sleeping on the stop
event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

import structlog

from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.live_settings import LiveSettings, live
from nexusmail.service.metrics import Metrics
from nexusmail.storage.connections import Storage
from nexusmail.tickets.recurrence import CatchUp, local_date
from nexusmail.tickets.schedules import DueResult, open_due
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)

# Write units in flight at once: enough to fill the writer's group commits (64 units),
# few enough that the futures of a 100,000-schedule backlog are not all alive at once.
CHUNK = 256
# Ordered as the partial index schedules_due is (rowid last): with ORDER BY id alone
# SQLite prefers a full rowid scan to avoid a sort, an O(schedules) tick that a
# company with thousands of schedules would pay every minute. test_scheduler pins the plan.
DUE_SQL = ("SELECT id FROM schedules WHERE active = 1 AND next_opening_on <= ?"
            " ORDER BY next_opening_on, id")


@dataclass(frozen=True)
class TickResult:
    today: date
    due: int            # schedules the index returned
    opened: int         # interventions opened
    late: int           # of them, opened after their opening date
    skipped: int        # occurrences the catch-up policy recorded as skipped
    failed: int         # schedules whose unit failed (logged; retried next tick)
    mails: int          # assignment mails queued
    select_s: float     # finding the due schedules (the index read), by the clock
    open_s: float       # opening them (the write units)


class Scheduler:
    def __init__(self, store: Storage, settings: Settings | LiveSettings, clock: Clock, *,
                 reply_keys: Sequence[bytes], on_outbox: Callable[[], None],
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.live = live(settings)
        self.clock = clock
        self.reply_keys = reply_keys
        self.on_outbox = on_outbox
        self.last_tick: datetime | None = None  # for health: when a tick last completed

    @property
    def settings(self) -> Settings:
        """The settings of the moment; a tick takes them once and keeps that version."""
        return self.live.current

    async def run(self, stop: asyncio.Event) -> None:
        """Tick now, then every interval until `stop` is set."""
        interval_s = self.settings.scheduler.interval_s
        while not stop.is_set():
            try:
                await self.tick(stop)
            except Exception:  # the loop boundary: log, keep the task alive, retry later
                log.exception("schedule.tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    async def tick(self, stop: asyncio.Event | None = None) -> TickResult:
        """Open every occurrence due today (company calendar), once."""
        started, now = self.clock.monotonic(), self.clock.now()
        settings = self.settings
        today = local_date(now, settings.scheduler.timezone)
        async with self.store.read() as conn:
            due = [row[0] for row in await conn.execute_fetchall(DUE_SQL, (today.isoformat(),))]
        selected = self.clock.monotonic()
        work = partial(open_due, today=today, now=now, settings=settings,
                       reply_keys=self.reply_keys,
                       catch_up=CatchUp(settings.scheduler.catch_up))
        results: list[DueResult] = []
        failed = 0
        for start in range(0, len(due), CHUNK):
            if stop is not None and stop.is_set():
                break  # what is left is still due at the next start
            chunk = due[start:start + CHUNK]
            units = [partial(work, schedule_id=schedule_id) for schedule_id in chunk]
            outcomes = await asyncio.gather(*(self.store.write(unit) for unit in units),
                                            return_exceptions=True)
            for schedule_id, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, StorageError):
                    raise outcome  # the disk, not the schedule: the whole tick retries
                if isinstance(outcome, BaseException):
                    failed += 1
                    log.error("schedule.failed", schedule_id=schedule_id, error=repr(outcome))
                    continue
                results.append(outcome)
                _log_result(schedule_id, outcome)
        ended = self.clock.monotonic()
        result = _summary(today, len(due), results, failed, selected - started, ended - selected)
        if result.mails:
            self.on_outbox()
        self.last_tick = now
        if self.metrics is not None:
            self.metrics.scheduler_ticked(opened=result.opened, late=result.late,
                                          failed=result.failed)
        # Every minute: a quiet tick is debug, one that opened or chased something is info.
        busy = result.opened or result.late or result.failed or result.mails
        (log.info if busy else log.debug)("schedule.tick", today=today.isoformat(), due=result.due,
                 opened=result.opened, late=result.late, skipped=result.skipped,
                 failed=result.failed, mails=result.mails,
                 select_ms=round(result.select_s * 1000, 1),
                 open_ms=round(result.open_s * 1000, 1))
        return result


def _log_result(schedule_id: int, result: DueResult) -> None:
    for opened in result.opened:
        log.info("schedule.opened", intervention=opened.intervention_number,
                 schedule_id=schedule_id, occurrence=opened.occurrence.isoformat(),
                 opens_on=opened.opens_on.isoformat(), late=opened.late,
                 assignment_mails=opened.mails_queued)
    if result.skipped:
        # Not silent: each is also a schedule_occurrences row with outcome "skipped".
        log.warning("schedule.skipped", schedule_id=schedule_id,
                    occurrences=[d.isoformat() for d in result.skipped],
                    why="[scheduler] catch_up policy")


def _summary(today: date, due: int, results: list[DueResult], failed: int,
             select_s: float, open_s: float) -> TickResult:
    opened = [o for r in results for o in r.opened]
    return TickResult(
        today=today, due=due, opened=len(opened), late=sum(o.late for o in opened),
        skipped=sum(len(r.skipped) for r in results), failed=failed,
        mails=sum(o.mails_queued for o in opened), select_s=select_s, open_s=open_s)
