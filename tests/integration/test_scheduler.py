"""The scheduler's tick over a real store with a fake clock: opening ahead of the date,
exactly once (racing ticks, two stores on one file, restarts), downtime catch-up,
pause and edits, assignment mails."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from store_choice import store_at

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.connections import INTEGRITY_ERRORS
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.recurrence import Interval, Recurrence, iter_occurrences, opening_date
from nexusmail.tickets.scheduler import DUE_SQL, Scheduler
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule, update_schedule
from nexusmail.tickets.store import Store

KEYS = [b"scheduler-test-signing-key-0123456789"]
MARCO = "marco.bianchi@firm.test"
# 09:00 UTC is 10:00 or 11:00 in Rome: the same calendar date in both.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


def make_settings(data_dir: Path, catch_up: str = "latest") -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(data_dir)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"},
        "scheduler": {"catch_up": catch_up},
    })


def spec(**changes: Any) -> ScheduleSpec:
    base: dict[str, Any] = {
        "customer_email": "condominio@example.it", "customer_name": "Condominio Aurora",
        "subject": "Manutenzione caldaia", "description": "Controllo annuale fumi.",
        "interval": Interval.MONTHLY, "first_date": date(2026, 3, 10), "lead_days": 3,
        "contract_ref": "C-2026-17",
    }
    return ScheduleSpec(**{**base, **changes})


async def add(store: Store, clock: FakeClock, **changes: Any) -> int:
    today = clock.now().date()
    return await store.write(
        lambda tx: create_schedule(tx, spec(**changes), today=today, now=clock.now()))


def scheduler(store: Store, settings: Settings, clock: FakeClock,
              wakeups: list[int] | None = None) -> Scheduler:
    sink = wakeups if wakeups is not None else []
    return Scheduler(store, settings, clock, reply_keys=KEYS, on_outbox=lambda: sink.append(1))


async def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with store.read() as conn:
        return [tuple(r) for r in await conn.execute_fetchall(sql, params)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def test_opens_on_the_opening_date_once(store: Store, settings: Settings,
                                              clock: FakeClock) -> None:
    """Monthly 10th, 3 lead days: opened on the 7th, once, naming its date, no customer ack."""
    schedule_id = await add(store, clock)
    sched = scheduler(store, settings, clock)
    clock.advance(timedelta(days=4))                      # 6 March
    assert (await sched.tick()).opened == 0
    clock.advance(timedelta(days=1))                      # 7 March
    result = await sched.tick()
    assert (result.opened, result.late, result.due) == (1, 0, 1)
    assert (await sched.tick()).opened == 0
    assert sched.last_tick == clock.now()
    [(number, subject, description, source, rtype, desired)] = await rows(
        store, "SELECT number, subject, description, source, request_type, desired_from"
               " FROM interventions")
    assert subject == "Manutenzione caldaia (2026-03-10)"
    assert (source, rtype, desired) == ("schedule", "service_schedule", "2026-03-10")
    assert f"Service schedule {schedule_id}, contract C-2026-17: occurrence of 2026-03-10." \
        in description
    assert await rows(store, "SELECT schedule_id, occurrence_on, opens_on, outcome,"
                             " intervention_number, late FROM schedule_occurrences") == [
        (schedule_id, "2026-03-10", "2026-03-07", "opened", number, 0)]
    assert await rows(store, "SELECT count(*) FROM outbox") == [(0,)]
    assert await rows(store, "SELECT next_occurrence_on, next_opening_on FROM schedules") == [
        ("2026-04-10", "2026-04-07")]


@pytest.mark.parametrize(("written", "opened_as"), [
    ("Service schedule", "service_schedule"),           # saved before the list existed
    ("manutenzione PROGRAMMATA", "service_schedule"),   # its Italian name, case aside
    ("Controllo fumi", "Controllo fumi"),               # free text stays as written
])
async def test_cases_get_the_listed_request_types_code(
        store: Store, settings: Settings, clock: FakeClock, written: str,
        opened_as: str) -> None:
    """A schedule whose request type names a listed one (by code or by a name in any
    language) opens its cases with that type's code; other free text is kept."""
    await add(store, clock, request_type=written)
    clock.advance(timedelta(days=5))
    assert (await scheduler(store, settings, clock).tick()).opened == 1
    assert await rows(store, "SELECT request_type FROM interventions") == [(opened_as,)]


async def test_assignees_get_the_assignment_mail(store: Store, settings: Settings,
                                                 clock: FakeClock) -> None:
    """A default assignee is assigned, their mail queued, the outbox woken once."""
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco Bianchi",
                                              language="it", now=clock.now()))
    await add(store, clock, assignees=(MARCO,), first_date=date(2026, 3, 5))
    wakeups: list[int] = []
    result = await scheduler(store, settings, clock, wakeups).tick()
    assert (result.opened, result.mails, wakeups) == (1, 1, [1])
    assert await rows(store, "SELECT kind, recipient, language FROM outbox") == [
        ("assignment", MARCO, "it")]
    assert await rows(store, "SELECT assigned_by FROM assignments") == [("schedule:1",)]


async def test_an_assignee_gone_leaves_the_case_open_and_unassigned(
        store: Store, settings: Settings, clock: FakeClock) -> None:
    """A deactivated assignee does not stop the opening; a note says why."""
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    await add(store, clock, assignees=(MARCO,), first_date=date(2026, 3, 5))
    await store.write(lambda tx: tx.execute("UPDATE employees SET active = 0"))
    result = await scheduler(store, settings, clock).tick()
    assert (result.opened, result.mails) == (1, 0)
    notes = await rows(store, "SELECT body_text FROM messages ORDER BY id")
    assert notes[-1] == (f"Could not assign {MARCO}: employee {MARCO} is not active",)


async def test_downtime_catch_up_marks_late_and_records_skips(
        tmp_path: Path, store: Store, clock: FakeClock) -> None:
    """After downtime the upcoming and latest past open late; older ones are skipped."""
    await add(store, clock, interval=Interval.WEEKLY, first_date=date(2026, 3, 4),
              lead_days=2)
    clock.advance(timedelta(days=36))                     # 7 April
    result = await scheduler(store, make_settings(tmp_path), clock).tick()
    assert (result.opened, result.late, result.skipped) == (2, 2, 4)
    assert await rows(store, "SELECT occurrence_on, outcome, late, intervention_number IS NULL"
                             " FROM schedule_occurrences ORDER BY occurrence_on") == [
        ("2026-03-04", "skipped", 0, 1), ("2026-03-11", "skipped", 0, 1),
        ("2026-03-18", "skipped", 0, 1), ("2026-03-25", "skipped", 0, 1),
        ("2026-04-01", "opened", 1, 0), ("2026-04-08", "opened", 1, 0)]
    descriptions = await rows(store, "SELECT description FROM interventions ORDER BY number")
    assert "Opened late: it was due to open on 2026-03-30." in descriptions[0][0]


async def test_pause_stops_openings_and_resume_does_not_catch_up_the_pause(
        store: Store, settings: Settings, clock: FakeClock) -> None:
    """Paused opens nothing; resume starts from today; an edit never reopens an occurrence."""
    schedule_id = await add(store, clock, interval=Interval.WEEKLY,
                            first_date=date(2026, 3, 3), lead_days=1)
    sched = scheduler(store, settings, clock)
    assert (await sched.tick()).opened == 1               # 3 March opens on 2 March

    async def change(**changes: Any) -> None:
        today, now = clock.now().date(), clock.now()
        await store.write(lambda tx: update_schedule(tx, schedule_id, changes, today=today,
                                                     now=now))

    await change(active=False)
    clock.advance(timedelta(days=21))                     # 23 March
    assert (await sched.tick()).due == 0
    await change(active=True)
    result = await sched.tick()                           # 24 March opens on 23 March
    assert (result.opened, result.late, result.skipped) == (1, 0, 0)
    await change(lead_days=30, subject="Caldaia e bruciatore")
    result = await sched.tick()
    assert result.opened == 4                             # 31 March .. 21 April
    assert [r[0] for r in await rows(
        store, "SELECT occurrence_on FROM schedule_occurrences ORDER BY 1")] == [
        "2026-03-03", "2026-03-24", "2026-03-31", "2026-04-07", "2026-04-14", "2026-04-21"]


async def test_racing_ticks_and_two_stores_open_once(tmp_path: Path, store: Store,
                                                     settings: Settings,
                                                     clock: FakeClock) -> None:
    """Racing ticks, and a second store on the same file, open each occurrence once."""
    for n in range(20):
        await add(store, clock, first_date=date(2026, 3, 3 + n % 3), subject=f"S{n}")
    async with store_at(tmp_path) as other:
        results = await asyncio.gather(
            scheduler(store, settings, clock).tick(), scheduler(store, settings, clock).tick(),
            scheduler(other, settings, clock).tick())
    assert sum(r.opened for r in results) == 20
    assert await rows(store, "SELECT count(*), count(DISTINCT subject) FROM interventions") \
        == [(20, 20)]


async def test_run_ticks_at_start_and_stops_at_once(store: Store, tmp_path: Path,
                                                    clock: FakeClock) -> None:
    """`run` ticks at start, sleeps on the stop event and returns as soon as it is set."""
    await add(store, clock, first_date=date(2026, 3, 4))
    settings = make_settings(tmp_path)
    sched = scheduler(store, settings, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(sched.run(stop))
    for _ in range(500):  # the first tick runs as soon as the task starts
        if sched.last_tick is not None:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 1)     # interval_s is 60: only the stop event ends it
    assert await rows(store, "SELECT count(*) FROM interventions") == [(1,)]


steps = st.lists(st.one_of(st.integers(0, 40), st.just("restart")), min_size=1, max_size=12)


@hyp_settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(interval=st.sampled_from(list(Interval)), every=st.integers(1, 3),
       first=st.integers(0, 60), lead=st.integers(0, 45), plan=steps,
       policy=st.sampled_from(["latest", "upcoming", "all"]))
def test_every_occurrence_is_handled_exactly_once(interval: Interval, every: int, first: int,
                                                  lead: int, plan: list[int | str],
                                                  policy: str) -> None:
    """Over any ticks, clock moves and restarts, each due occurrence is handled exactly once."""
    first_date = TODAY + timedelta(days=first)
    rule = Recurrence(interval, first_date, every=every)

    async def scenario(data_dir: Path) -> None:
        clock = FakeClock(START)
        settings = make_settings(data_dir, policy)
        store = store_at(data_dir)
        await store.open()
        try:
            await add(store, clock, interval=interval, every=every, first_date=first_date,
                      lead_days=lead)
            sched = scheduler(store, settings, clock)
            await sched.tick()
            for step in plan:
                if step == "restart":
                    await store.close()
                    store = store_at(data_dir)
                    await store.open()
                    sched = scheduler(store, settings, clock)
                else:
                    assert isinstance(step, int)
                    clock.advance(timedelta(days=step))
                await sched.tick()
            today = clock.now().date()
            due = list(takewhile(lambda d: opening_date(d, lead) <= today,
                                 iter_occurrences(rule)))
            handled = await rows(store, "SELECT occurrence_on, outcome, intervention_number"
                                        " FROM schedule_occurrences ORDER BY occurrence_on")
            assert [date.fromisoformat(h[0]) for h in handled] == due
            opened = [h[2] for h in handled if h[1] == "opened"]
            assert None not in opened
            numbers = await rows(store, "SELECT number FROM interventions ORDER BY number")
            assert sorted(opened) == [n[0] for n in numbers]
            if policy == "all":
                assert all(h[1] == "opened" for h in handled)
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder)))


def test_store_rejects_a_second_row_for_one_occurrence(tmp_path: Path) -> None:
    """The unique key itself refuses a second row for a schedule's occurrence."""

    async def scenario() -> None:
        clock = FakeClock(START)
        async with store_at(tmp_path) as store:
            await add(store, clock)
            insert = ("INSERT INTO schedule_occurrences (schedule_id, occurrence_on, opens_on,"
                      " outcome, handled_at) VALUES (1, '2026-03-10', '2026-03-07', 'opened',"
                      " 'x')")
            await store.write(lambda tx: tx.execute(insert))
            with pytest.raises(INTEGRITY_ERRORS):
                await store.write(lambda tx: tx.execute(insert))

    asyncio.run(scenario())


@pytest.mark.sqlite_only(reason="reads SQLite's query plan (EXPLAIN QUERY PLAN)")
async def test_due_query_reads_the_index_not_every_schedule(store: Store) -> None:
    """The due query searches the partial index schedules_due, never scans every schedule."""
    async with store.read() as conn:
        plan = await conn.execute_fetchall("EXPLAIN QUERY PLAN " + DUE_SQL, ("2026-03-02",))
    details = [row[3] for row in plan]
    assert any("USING INDEX schedules_due" in d for d in details), details
    assert not any(d.startswith("SCAN") for d in details), details


@pytest.mark.parametrize(("first_date", "lead", "last_minute"), [
    (date(2026, 3, 31), 2, datetime(2026, 3, 28, 22, 59, tzinfo=UTC)),   # CET, DST next day
    (date(2026, 10, 25), 0, datetime(2026, 10, 24, 21, 59, tzinfo=UTC)),  # CEST, DST ends
])
async def test_opening_follows_the_rome_calendar_across_dst(
        store: Store, tmp_path: Path, first_date: date, lead: int,
        last_minute: datetime) -> None:
    """An opening waits for the Rome date, not the UTC one, on both DST weekends."""
    clock = FakeClock(last_minute - timedelta(days=1))
    await add(store, clock, first_date=first_date, lead_days=lead)
    clock.advance(timedelta(days=1))                  # 23:59 in Rome, the day before
    sched = scheduler(store, make_settings(tmp_path), clock)
    assert (await sched.tick()).opened == 0
    clock.advance(timedelta(minutes=1))               # midnight in Rome
    result = await sched.tick()
    assert (result.opened, result.late) == (1, 0)
