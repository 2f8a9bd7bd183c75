"""A sequence step for an employee who holds the case's assignment already (an earlier
step's): that assignment is armed again with a fresh mail, and the [sla] reminder counts
again from it, sent once more, under the new mail. Real store, fake clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.cases import (
    NewIntervention,
    add_employee,
    create_intervention,
    find_or_create_customer,
)
from nexusmail.tickets.deadline_sweep import DeadlineSweep
from nexusmail.tickets.models import Source
from nexusmail.tickets.sequence_plan import step_finished
from nexusmail.tickets.sequence_steps import start_and_mail
from nexusmail.tickets.sequence_sweep import SequenceSweep
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence
from nexusmail.tickets.sla_plan import plan_new_assignment

KEYS = [b"sequence-rearm-test-signing-key-01234"]
LUCA = "luca@firm.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)      # a Monday, 10:00 in Rome


def make_settings(data_dir: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(data_dir)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"},
        "sla": {"remind_after_hours": 2}})


def opened(tx: WriteTx, *, settings: Settings) -> None:
    """Case 1 with the two-step sequence (Luca calls, then Luca visits) started."""
    customer = find_or_create_customer(tx, email="ana@example.it", name="Ana", now=START)
    number = create_intervention(
        tx, NewIntervention(customer.customer_id, "Caldaia", "", Source.EMAIL), now=START)
    add_employee(tx, email=LUCA, name="Luca Bianchi", language="it", now=START)
    create_sequence(tx, SequenceDef(code="TWO", steps=[
        StepDef(action="call", employee_email=LUCA, needs_report=False),
        StepDef(action="visit", employee_email=LUCA)]), now=START)
    start_and_mail(tx, number, "TWO", started_by="test", now=START, settings=settings,
                   reply_keys=KEYS)


def confirmed(tx: WriteTx, *, now: datetime, settings: Settings) -> bool:
    """Luca's confirmation, as a reply that acted leaves it."""
    tx.execute("UPDATE assignments SET status = 'confirmed'")
    return step_finished(tx, 1, reported_done=False, now=now, settings=settings)


async def rows(store: Storage, sql: str) -> list[tuple[Any, ...]]:
    async with store.read() as conn:
        return [tuple(r) for r in await conn.execute_fetchall(sql)]


async def test_the_next_step_for_the_same_employee_is_chased_again(
        store: Storage, tmp_path: Path) -> None:
    """Step 1's reminder goes out at 12:00; Luca confirms; step 2 re-arms his one
    assignment (pending, a new mail) and its reminder goes out two business hours after
    that mail, threaded under it; each reminder once."""
    settings, clock = make_settings(tmp_path), FakeClock(START)
    await store.write(lambda tx: opened(tx, settings=settings))
    await store.write(lambda tx: plan_new_assignment(tx, 1, now=START, settings=settings))
    deadlines = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    steps = SequenceSweep(store, settings, clock, reply_keys=KEYS, on_outbox=lambda: None)

    clock.advance(timedelta(hours=2))
    assert (await deadlines.tick()).sent == 1
    assert await store.write(lambda tx: confirmed(tx, now=clock.now(), settings=settings))
    assert (await steps.tick()).mailed == 1
    assert await rows(store, "SELECT id, status FROM assignments") == [(1, "pending")]
    [(first_mail,), (second_mail,)] = await rows(
        store, "SELECT message_id FROM outbox WHERE kind = 'assignment' ORDER BY id")
    assert await rows(store, "SELECT mail_message_id FROM assignments") == [(second_mail,)]

    clock.advance(timedelta(hours=1, minutes=59))
    assert (await deadlines.tick()).sent == 0
    clock.advance(timedelta(minutes=1))
    assert (await deadlines.tick()).sent == 1
    assert (await deadlines.tick()).due == 0
    reminders = [json.loads(context)["in_reply_to"] for (context,) in await rows(
        store, "SELECT context FROM outbox WHERE kind = 'assignment_reminder' ORDER BY id")]
    assert reminders == [[first_mail], [second_mail]]
