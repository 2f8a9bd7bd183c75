"""The deadline sweep: the task that plans SLA deadlines and carries out due steps.

A tick (at start, then every `[sla] sweep_interval_s`, sleeping on the stop event):
1. plans what is still unplanned (interventions and assignments whose sla_planned_at
   is NULL: made outside the usual paths, or re-timed by a contract entered later),
   found through partial indexes, so the cost follows those rows, not all the open ones;
2. carries out the steps whose instant has come (partial index on the steps not yet
   taken), each in its own write unit, so one bad step cannot hold back the others;
3. checks the contracts with prepaid hours that have not warned yet.
The exactly-once rules live in tickets.deadlines; a step missed while the daemon was
down is carried out at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import structlog

from nexusmail.clock import Clock, iso
from nexusmail.config import Settings
from nexusmail.live_settings import LiveSettings, live
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.deadlines import StepDone, check_contract_hours, run_step
from nexusmail.tickets.sla_calendar import AddBusinessHours, adder_of
from nexusmail.tickets.sla_plan import plan_assignment, plan_intervention
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)

# Write units in flight at once (as the scheduler: fills the writer's group commits).
CHUNK = 256
# Rows planned per write unit: planning is a few statements per row.
PLAN_BATCH = 200
NEW_INTERVENTIONS_SQL = ("SELECT number FROM interventions WHERE sla_planned_at IS NULL"
                         " ORDER BY number LIMIT ?")
NEW_ASSIGNMENTS_SQL = ("SELECT id FROM assignments WHERE sla_planned_at IS NULL"
                       " ORDER BY id LIMIT ?")
DUE_STEPS_SQL = ("SELECT id FROM sla_steps WHERE done_at IS NULL AND due_at <= ?"
                 " ORDER BY due_at, id")
# Contracts still able to warn whose remaining prepaid hours are under the threshold.
LOW_CONTRACTS_SQL = (
    "SELECT c.id FROM contracts c WHERE c.prepaid_hours IS NOT NULL"
    " AND c.low_hours_alerted_at IS NULL AND c.prepaid_hours - (SELECT"
    " coalesce(sum(a.work_minutes), 0) FROM activities a JOIN interventions i"
    " ON i.number = a.intervention_number WHERE i.contract_id = c.id AND a.kind = 'work'"
    " AND a.superseded_by IS NULL) / 60.0 < ?")
# Planning reads at most this many new rows per tick; the rest wait a tick (a burst of
# imported cases must not make one tick take minutes).
PLAN_LIMIT = 5_000


@dataclass(frozen=True)
class SweepResult:
    planned: int          # interventions and assignments planned
    due: int              # steps whose instant had come
    sent: int             # of them, carried out (mail and note)
    moot: int             # of them, with nothing left to chase (answered, resolved...)
    failed: int           # steps whose unit failed (logged; retried next tick)
    mails: int            # mails queued (steps and contract warnings)
    select_s: float       # the index reads, by the clock
    run_s: float          # the write units


class DeadlineSweep:
    def __init__(self, store: Storage, settings: Settings | LiveSettings, clock: Clock, *,
                 on_outbox: Callable[[], None]) -> None:
        self.store = store
        self.live = live(settings)
        self.clock = clock
        self.on_outbox = on_outbox
        self.last_tick: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Tick now, then every interval until `stop` is set."""
        while not stop.is_set():
            try:
                await self.tick(stop)
            except Exception:  # the loop boundary: log, keep the task alive, retry later
                log.exception("sla.tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(),
                                       timeout=self.live.current.sla.sweep_interval_s)

    async def tick(self, stop: asyncio.Event | None = None) -> SweepResult:
        """Plan what is new, then carry out every step due now, once."""
        settings, now, started = self.live.current, self.clock.now(), self.clock.monotonic()
        add = adder_of(settings)
        async with self.store.read() as conn:
            new_cases = await _ids(conn, NEW_INTERVENTIONS_SQL, (PLAN_LIMIT,))
            new_assignments = await _ids(conn, NEW_ASSIGNMENTS_SQL, (PLAN_LIMIT,))
        planned = 0
        for plan, ids in ((plan_intervention, new_cases), (plan_assignment, new_assignments)):
            for start in range(0, len(ids), PLAN_BATCH):
                planned += await self._plan(plan, ids[start:start + PLAN_BATCH], now=now,
                                            settings=settings, add=add)
        async with self.store.read() as conn:
            due = await _ids(conn, DUE_STEPS_SQL, (iso(now),))
            low = (await _ids(conn, LOW_CONTRACTS_SQL, (settings.contracts.low_hours_alert,))
                   if settings.contracts.low_hours_alert > 0 else [])
        selected = self.clock.monotonic()
        done, failed = await self._run_steps(due, now, settings, stop)
        warned = 0
        for contract_id in low:
            warned += bool(await self.store.write(partial(
                check_contract_hours, contract_id=contract_id, now=now, settings=settings)))
        ended = self.clock.monotonic()
        mails = sum(d.mails for d in done) + warned * len(settings.mail.operator_addresses)
        result = SweepResult(planned=planned, due=len(due),
                             sent=sum(d.outcome == "sent" for d in done),
                             moot=sum(d.outcome == "moot" for d in done), failed=failed,
                             mails=mails, select_s=selected - started, run_s=ended - selected)
        if mails:
            self.on_outbox()
        self.last_tick = now
        busy = result.due or result.failed or warned
        (log.info if busy else log.debug)(
            "sla.tick", planned=planned, due=result.due, sent=result.sent, moot=result.moot,
            failed=failed, contract_warnings=warned, mails=mails,
            select_ms=round(result.select_s * 1000, 1), run_ms=round(result.run_s * 1000, 1))
        return result

    async def _plan(self, plan: Callable[..., None], batch: list[int], *, now: datetime,
                    settings: Settings, add: AddBusinessHours) -> int:
        """Plan a batch in one unit; when that fails, row by row, so one row that cannot
        be planned (logged, tried again next tick) holds back neither the others nor the
        steps already due."""
        try:
            await self.store.write(partial(_plan_all, plan=plan, ids=batch, now=now,
                                           settings=settings, add=add))
            return len(batch)
        except StorageError:
            raise
        except Exception as exc:  # narrowed down row by row below
            log.warning("sla.plan_batch_failed", what=plan.__name__, rows=len(batch),
                        error=repr(exc))
        planned = 0
        for row_id in batch:
            try:
                await self.store.write(partial(_plan_all, plan=plan, ids=[row_id], now=now,
                                               settings=settings, add=add))
                planned += 1
            except StorageError:
                raise
            except Exception as exc:  # a loop boundary: the row is retried next tick
                log.error("sla.plan_failed", what=plan.__name__, id=row_id, error=repr(exc))
        return planned

    async def _run_steps(self, due: list[int], now: datetime, settings: Settings,
                         stop: asyncio.Event | None) -> tuple[list[StepDone], int]:
        done: list[StepDone] = []
        failed = 0
        for start in range(0, len(due), CHUNK):
            if stop is not None and stop.is_set():
                break  # what is left is still due at the next start
            chunk = due[start:start + CHUNK]
            outcomes = await asyncio.gather(
                *(self.store.write(partial(run_step, step_id=step_id, now=now,
                                           settings=settings)) for step_id in chunk),
                return_exceptions=True)
            for step_id, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, StorageError):
                    raise outcome  # the disk, not the step: the whole tick retries
                if isinstance(outcome, BaseException):
                    failed += 1
                    log.error("sla.step_failed", step_id=step_id, error=repr(outcome))
                elif outcome is not None:
                    done.append(outcome)
        return done, failed


def _plan_all(tx: WriteTx, plan: Callable[..., None], ids: Sequence[int], *,
              now: datetime, settings: Settings, add: Any) -> None:
    for row_id in ids:
        plan(tx, row_id, now=now, settings=settings, add=add)


async def _ids(conn: Any, sql: str, params: tuple[Any, ...]) -> list[int]:
    return [int(row[0]) for row in await conn.execute_fetchall(sql, params)]
