"""SLA deadlines over a real store with a fake clock: which contract covers an
intervention, the deadlines it gets, prepaid hours used by work, the low-hours warning
once, the reminder and escalation steps exactly once, and the `due` filter; one run on
PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from postgres_server import PostgresCluster

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.connections import Storage
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets import queries
from nexusmail.tickets.activities import ActivityKind, NewActivity, add_activity
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee, find_or_create_customer
from nexusmail.tickets.contracts import add_contract, list_contracts
from nexusmail.tickets.deadline_sweep import DeadlineSweep
from nexusmail.tickets.due_filter import Due, due_filter
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.store import Store

KEYS = [b"deadline-test-signing-key-0123456789ab"]
MARCO, DISPATCH = "marco.bianchi@firm.test", "dispatch@firm.test"
CUSTOMER = "condominio@example.it"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday, 10:00 in Rome


ROUND_THE_CLOCK = {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "working_hours": "00:00-24:00"}


def make_settings(data_dir: Path, calendar: dict[str, Any] | None = None,
                  **sla: Any) -> Settings:
    return Settings.model_validate({
        "calendar": ROUND_THE_CLOCK if calendar is None else calendar,
        "storage": {"data_dir": str(data_dir)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm",
                 "operator_addresses": [DISPATCH]},
        "sla": {"response_hours": 4, "resolution_hours": 24, **sla},
        "contracts": {"low_hours_alert": 2},
    })


async def rows(store: Storage, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with store.read() as conn:
        return [tuple(r) for r in await conn.execute_fetchall(sql, params)]


async def open_case(store: Storage, settings: Settings, clock: FakeClock,
                    subject: str = "Caldaia in blocco") -> int:
    request = OpenRequest(customer_email=CUSTOMER, customer_name="Condominio Aurora",
                          subject=subject, description="E04", source=Source.API)
    number: int = await store.write(
        lambda tx: open_request(tx, request, now=clock.now(), settings=settings))
    return number


async def customer_id(store: Storage, clock: FakeClock) -> int:
    found = await store.write(lambda tx: find_or_create_customer(
        tx, email=CUSTOMER, name="Condominio Aurora", now=clock.now()))
    return found.customer_id


async def contract(store: Storage, clock: FakeClock, **values: Any) -> int:
    cid = await customer_id(store, clock)
    contract_id: int = await store.write(
        lambda tx: add_contract(tx, cid, values, now=clock.now()))
    return contract_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def test_the_covering_contract_sets_the_deadlines(store: Store, tmp_path: Path,
                                                        clock: FakeClock) -> None:
    """A case requested while a contract is valid takes its hours (fractions too); one
    outside every contract takes the [sla] defaults; 0 means no deadline."""
    settings = make_settings(tmp_path)
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await contract(store, clock, code="OLD", valid_from="2025-01-01", valid_to="2025-12-31",
                   response_hours=1, resolution_hours=2)
    await contract(store, clock, code="GOLD", valid_from="2026-01-01", valid_to="2026-03-31",
                   response_hours=1.5, resolution_hours=0)
    covered = await open_case(store, settings, clock)
    await sweep.tick()
    clock.advance(timedelta(days=30))     # 1 April: after GOLD
    uncovered = await open_case(store, settings, clock)
    await sweep.tick()
    got = {r[0]: r[1:] for r in await rows(
        store, "SELECT i.number, c.code, i.response_due, i.resolution_due FROM interventions i"
        " LEFT JOIN contracts c ON c.id = i.contract_id")}
    assert got[covered] == ("GOLD", "2026-03-02T10:30:00+00:00", None)
    assert got[uncovered] == (None, "2026-04-01T13:00:00+00:00", "2026-04-02T09:00:00+00:00")
    detail = await _detail(store, uncovered)
    assert (detail["response_due"], detail["resolution_due"]) == got[uncovered][1:]


async def test_a_contract_added_later_gives_open_cases_its_deadlines(
        store: Store, tmp_path: Path, clock: FakeClock) -> None:
    """Cases opened before their contract was entered get its hours at the next sweep."""
    settings = make_settings(tmp_path)
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    number = await open_case(store, settings, clock)
    await sweep.tick()
    await contract(store, clock, code="GOLD", valid_from="2026-03-01", response_hours=2,
                   resolution_hours=8)
    await sweep.tick()
    assert await rows(store, "SELECT response_due, resolution_due FROM interventions"
                      " WHERE number = ?", number) == [
        ("2026-03-02T11:00:00+00:00", "2026-03-02T17:00:00+00:00")]


async def test_work_reports_use_prepaid_hours_and_warn_once(
        store: Store, tmp_path: Path, clock: FakeClock) -> None:
    """Work recorded on covered cases counts against the package (travel does not);
    under [contracts] low_hours_alert the operators get one mail, never a second."""
    settings = make_settings(tmp_path)
    wakeups: list[int] = []
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: wakeups.append(1))
    cid = await customer_id(store, clock)
    contract_id = await contract(store, clock, code="PACK", type="maintenance",
                                 valid_from="2026-01-01", prepaid_hours=10)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    number = await open_case(store, settings, clock)
    await sweep.tick()

    async def work(minutes: int, kind: ActivityKind = ActivityKind.WORK) -> None:
        entry = NewActivity(employee_email=MARCO, kind=kind, minutes=minutes, text="",
                            day=date(2026, 3, 2), author="api:test")
        await store.write(lambda tx: add_activity(tx, number, entry, now=clock.now()))

    await work(6 * 60)
    await work(3 * 60, ActivityKind.TRAVEL)
    await sweep.tick()
    async with store.read() as conn:
        [seen] = await list_contracts(conn, cid)
    assert (seen["used_hours"], seen["remaining_hours"]) == (6, 4)
    assert await _outbox(store, "contract_hours") == []
    await work(150)                      # 8.5 h used, 1.5 left: under 2
    await sweep.tick()
    await work(30)
    await sweep.tick()
    assert [r[0] for r in await _outbox(store, "contract_hours")] == [DISPATCH]
    assert wakeups
    context = json.loads((await _outbox(store, "contract_hours"))[0][1])
    assert (context["code"], context["remaining_hours"]) == ("PACK", "1.5")
    async with store.read() as conn:
        [seen] = await list_contracts(conn, cid)
    assert (seen["used_hours"], seen["remaining_hours"], seen["id"]) == (9, 1, contract_id)


async def _outbox(store: Storage, kind: str) -> list[tuple[Any, ...]]:
    return await rows(store, "SELECT recipient, context, language, intervention_number"
                      " FROM outbox WHERE kind = ? ORDER BY id", kind)


async def _detail(store: Storage, number: int) -> dict[str, Any]:
    async with store.read() as conn:
        detail = await queries.get_intervention(conn, number)
    assert detail is not None
    return dict(detail)


async def chase_exactly_once(store: Storage, settings: Settings, clock: FakeClock) -> None:
    """The reminder after 2 business hours and the escalation after 4, each once across
    repeated ticks and a new sweep (a restart); none for an assignment answered."""
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco Bianchi",
                                              language="it", now=clock.now()))
    number = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, number, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    first = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await first.tick()
    clock.advance(timedelta(hours=1, minutes=59))
    assert (await first.tick()).sent == 0
    clock.advance(timedelta(minutes=1))
    assert (await first.tick()).sent == 1
    assert (await first.tick()).due == 0
    [(recipient, context, language, case)] = await _outbox(store, "assignment_reminder")
    assert (recipient, language, case) == (MARCO, "it", number)
    [(assignment_context,)] = await rows(store, "SELECT context FROM outbox WHERE kind ="
                                         " 'assignment'")
    [(assignment_mail,)] = await rows(store, "SELECT mail_message_id FROM assignments")
    reminder = json.loads(context)
    assert reminder["in_reply_to"] == [assignment_mail]
    assert reminder["reply_to"] == json.loads(assignment_context)["reply_to"]
    clock.advance(timedelta(hours=2))
    restarted = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    assert (await restarted.tick()).sent == 1
    assert (await first.tick()).due == 0
    assert [r[0] for r in await _outbox(store, "sla_alert")] == [DISPATCH]
    assert len(await _outbox(store, "assignment_reminder")) == 1
    notes = await rows(store, "SELECT body_text FROM messages WHERE intervention_number = ?"
                       " AND kind = 'note' AND extra LIKE '%sla_step%' ORDER BY id", number)
    assert [n[0].split(":")[0] for n in notes] == [
        f"No answer from {MARCO} to the assignment after 2 business hours",
        f"No answer from {MARCO} to the assignment after 4 business hours"]


async def test_reminder_and_escalation_happen_once(store: Store, tmp_path: Path,
                                                   clock: FakeClock) -> None:
    """See chase_exactly_once (SQLite)."""
    await chase_exactly_once(store, make_settings(tmp_path, remind_after_hours=2,
                                                  escalate_after_hours=4), clock)


async def test_reminder_and_escalation_happen_once_on_postgresql(
        tmp_path: Path, clock: FakeClock, postgres_cluster: PostgresCluster) -> None:
    """See chase_exactly_once: the same on PostgreSQL."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        await chase_exactly_once(store, make_settings(tmp_path, remind_after_hours=2,
                                                      escalate_after_hours=4), clock)


async def test_an_answered_assignment_is_not_chased(store: Store, tmp_path: Path,
                                                    clock: FakeClock) -> None:
    """A step whose assignment was answered is taken as moot: no mail, no note."""
    settings = make_settings(tmp_path, remind_after_hours=1)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    number = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, number, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await sweep.tick()
    await store.write(lambda tx: tx.execute("UPDATE assignments SET status = 'confirmed'"))
    clock.advance(timedelta(hours=2))
    result = await sweep.tick()
    assert (result.due, result.sent, result.moot) == (1, 0, 1)
    assert await _outbox(store, "assignment_reminder") == []


async def test_resolution_warning_before_the_deadline(store: Store, tmp_path: Path,
                                                      clock: FakeClock) -> None:
    """[sla] warn_before_hours before the resolution deadline of an open case, the
    operators are told once."""
    settings = make_settings(tmp_path, warn_before_hours=1.5)
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    number = await open_case(store, settings, clock)
    await sweep.tick()
    clock.advance(timedelta(hours=22, minutes=29))
    assert (await sweep.tick()).sent == 0
    clock.advance(timedelta(minutes=1))
    assert (await sweep.tick()).sent == 1
    clock.advance(timedelta(hours=5))
    assert (await sweep.tick()).due == 0
    [(recipient, context, _, case)] = await _outbox(store, "sla_alert")
    assert (recipient, case) == (DISPATCH, number)
    assert json.loads(context)["resolution_due"] == "2026-03-03T09:00:00+00:00"


async def test_due_filter_overdue_and_today(store: Store, tmp_path: Path,
                                            clock: FakeClock) -> None:
    """`overdue`: an open case with a deadline passed (response only until someone
    confirmed); `today`: a deadline in the company's day; resolved cases never."""
    settings = make_settings(tmp_path, response_hours=2, resolution_hours=30)
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    late = await open_case(store, settings, clock, "late")
    answered = await open_case(store, settings, clock, "answered")
    resolved = await open_case(store, settings, clock, "resolved")
    await store.write(lambda tx: assign(tx, answered, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    await store.write(lambda tx: tx.execute("UPDATE assignments SET status = 'confirmed'"))
    await store.write(lambda tx: tx.execute(
        "UPDATE interventions SET status = 'resolved' WHERE number = ?", (resolved,)))
    await sweep.tick()
    clock.advance(timedelta(hours=3))
    fresh = await open_case(store, settings, clock, "fresh")
    await sweep.tick()

    async def listed(due: Due) -> list[int]:
        window = due_filter(due, clock.now(), settings.calendar.timezone)
        async with store.read() as conn:
            page = await queries.list_interventions(conn, due=window)
        return sorted(i["number"] for i in page["items"])

    assert await listed(Due.OVERDUE) == [late]
    assert await listed(Due.TODAY) == [late, fresh]
    clock.advance(timedelta(days=1, hours=4))    # 3 March 16:00 UTC: two resolutions passed
    assert await listed(Due.OVERDUE) == [late, answered, fresh]
    assert await listed(Due.TODAY) == [late, answered, fresh]
    assert resolved not in await listed(Due.OVERDUE)



async def test_deadlines_and_reminders_count_business_hours(store: Store, tmp_path: Path
                                                            ) -> None:
    """On the default calendar (Monday to Friday, 08:30-17:30 in Rome) a case opened on
    Friday at 16:00 is due for a response on Monday at 11:00, and its 2-hour reminder
    waits over the weekend until Monday 09:00."""
    clock = FakeClock(datetime(2026, 3, 6, 15, 0, tzinfo=UTC))    # Friday 16:00 in Rome
    settings = make_settings(tmp_path, calendar={}, remind_after_hours=2)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    number = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, number, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await sweep.tick()
    detail = await _detail(store, number)
    assert detail["response_due"] == "2026-03-09T10:00:00+00:00"     # Monday 11:00
    clock.advance(timedelta(days=1))                                 # Saturday
    assert (await sweep.tick()).due == 0
    clock.advance(timedelta(days=2, hours=-7, minutes=-1))           # Monday 08:59
    assert (await sweep.tick()).due == 0
    clock.advance(timedelta(minutes=1))
    assert (await sweep.tick()).sent == 1


async def test_a_case_that_cannot_be_planned_holds_back_nothing(
        store: Store, tmp_path: Path, clock: FakeClock) -> None:
    """A row the sweep cannot plan (its request time unreadable) is logged and retried;
    the due steps still run."""
    settings = make_settings(tmp_path, remind_after_hours=1)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    good = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, good, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await sweep.tick()
    bad = await open_case(store, settings, clock, "bad")
    later = await open_case(store, settings, clock, "later")
    # As if it had been made by a path that does not plan (an import, an old version).
    await store.write(lambda tx: tx.execute(
        "UPDATE interventions SET created_at = 'yesterday', sla_planned_at = NULL,"
        " response_due = NULL WHERE number = ?", (bad,)))
    clock.advance(timedelta(hours=1))
    result = await sweep.tick()
    assert (result.planned, result.sent) == (0, 1)
    assert await rows(store, "SELECT number FROM interventions WHERE response_due IS NOT NULL"
                      " ORDER BY number") == [(good,), (later,)]
    assert await rows(store, "SELECT number FROM interventions WHERE sla_planned_at IS NULL"
                      ) == [(bad,)]


async def test_deadlines_are_there_as_soon_as_the_case_is(store: Store, tmp_path: Path,
                                                          clock: FakeClock) -> None:
    """A case and an assignment made through the usual paths are planned in the same
    transaction: deadlines and steps exist before any sweep runs."""
    settings = make_settings(tmp_path, remind_after_hours=0.5, escalate_after_hours=1.25)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    number = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, number, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    detail = await _detail(store, number)
    assert (detail["response_due"], detail["resolution_due"]) == (
        "2026-03-02T13:00:00+00:00", "2026-03-03T09:00:00+00:00")
    assert await rows(store, "SELECT step, due_at FROM sla_steps ORDER BY id") == [
        ("remind", "2026-03-02T09:30:00+00:00"), ("escalate", "2026-03-02T10:15:00+00:00")]


async def test_a_deadline_the_calendar_cannot_place_never_stops_the_case(
        store: Store, tmp_path: Path, clock: FakeClock) -> None:
    """100,000 business hours lie beyond what the calendar counts: the case still opens
    and is assigned, its deadlines are left for the sweep (logged), nothing fails."""
    settings = make_settings(tmp_path, calendar={}, remind_after_hours=100_000)
    await contract(store, clock, code="HUGE", valid_from="2026-01-01",
                   resolution_hours=100_000)
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    number = await open_case(store, settings, clock)
    await store.write(lambda tx: assign(tx, number, MARCO, now=clock.now(),
                                        settings=settings, reply_keys=KEYS))
    assert await rows(store, "SELECT status, resolution_due, sla_planned_at FROM"
                      " interventions") == [("open", None, None)]
    assert await rows(store, "SELECT status, sla_planned_at FROM assignments") == [
        ("pending", None)]
    result = await DeadlineSweep(store, settings, clock, on_outbox=lambda: None).tick()
    assert (result.planned, result.due) == (0, 0)
