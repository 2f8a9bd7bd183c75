"""Sequences started by their trigger over a real store with a fake clock: a service
schedule opening its case starts the sequence of its request type, and the sequence
sweep mails step 1 once, however often it ticks and from however many sweeps."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.ingest.prepare import prepare
from nexusmail.storage.connections import Storage
from nexusmail.tickets.apply_mail import InboundMail, apply_inbound
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.recurrence import Interval
from nexusmail.tickets.scheduler import Scheduler
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule
from nexusmail.tickets.sequence_sweep import SequenceSweep
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence

KEYS = [b"sequence-trigger-test-signing-key-0123"]
LUCA = "luca@firm.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)      # a Monday


def make_settings(data_dir: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(data_dir)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})


async def test_a_schedule_starts_the_sequence_of_its_type(store: Storage,
                                                          tmp_path: Path) -> None:
    """The schedule's case (request type `service_schedule`, the seeded code) starts
    the sequence triggered by that type; three sweeps racing
    and then a fourth mail step 1 once, with the step's action, hours and notes."""
    settings, clock = make_settings(tmp_path), FakeClock(START)
    now = clock.now()
    await store.write(lambda tx: add_employee(tx, email=LUCA, name="Luca Bianchi",
                                              language="it", now=now))
    await store.write(lambda tx: create_sequence(tx, SequenceDef(
        code="MAN", trigger_request_type="service_schedule", steps=[
            StepDef(action="check", employee_email=LUCA, expected_hours=1.5,
                    notes="Controllo fumi", needs_report=False)]), now=now))
    spec = ScheduleSpec(customer_email="condominio@example.it",
                        customer_name="Condominio Aurora", subject="Manutenzione caldaia",
                        interval=Interval.MONTHLY, first_date=date(2026, 3, 4), lead_days=3)
    await store.write(lambda tx: create_schedule(tx, spec, today=START.date(), now=now))
    opened = await Scheduler(store, settings, clock, reply_keys=KEYS,
                             on_outbox=lambda: None).tick()
    assert opened.opened == 1

    sweeps = [SequenceSweep(store, settings, clock, reply_keys=KEYS, on_outbox=lambda: None)
              for _ in range(3)]
    ticks = await asyncio.gather(*(sweep.tick() for sweep in sweeps))
    assert sorted(t.mailed for t in ticks) == [0, 0, 1]
    assert (await sweeps[0].tick()).due == 0
    async with store.read() as conn:
        mails = list(await conn.execute_fetchall(
            "SELECT recipient, context FROM outbox WHERE kind = 'assignment'"))
        runs = list(await conn.execute_fetchall(
            "SELECT r.code, r.started_by, i.request_type FROM sequence_runs r"
            " JOIN interventions i ON i.number = r.intervention_number"))
    assert [tuple(r) for r in runs] == [("MAN", "request type service_schedule",
                                         "service_schedule")]
    [(recipient, context)] = [tuple(m) for m in mails]
    assert recipient == LUCA
    step = json.loads(context)["step"]
    assert (step["code"], step["number"], step["of"], step["action"], step["expected_hours"],
            step["notes"], step["needs_report"]) == ("MAN", 1, 1, "check", "1.5",
                                                     "Controllo fumi", False)


def request_mail(n: int) -> InboundMail:
    """A customer's mail naming the type "Manutenzione programmata" (service_schedule)."""
    sender = "rossi@example.it"
    raw = (f"From: Mario Rossi <{sender}>\r\nTo: support@firm.test\r\n"
           f"Subject: Manutenzione programmata caldaia {n}\r\n"
           f"Message-ID: <req-{n}@example.it>\r\n\r\nQuando passate?\r\n").encode()
    prepared = prepare(raw, sender, ["firm.test"], 100_000, 20, ["support@firm.test"])
    return InboundMail(raw=raw, raw_sha256=prepared.raw_sha256,
                       content_sha256=prepared.content_sha256, mail=prepared.mail,
                       source="smtp", envelope_from=sender, envelope_to=["support@firm.test"],
                       noise_reason=prepared.noise, attachments=(),
                       language=prepared.language, reading=prepared.reading,
                       serial_candidates=prepared.serial_candidates)


async def test_imported_history_starts_no_sequence(store: Storage, tmp_path: Path) -> None:
    """A live mail of the trigger's type starts the sequence; the same kind of mail
    imported as history (no acknowledgement) opens its case but starts nothing."""
    settings = make_settings(tmp_path)
    await store.write(lambda tx: add_employee(tx, email=LUCA, name="Luca Bianchi",
                                              language="it", now=START))
    await store.write(lambda tx: create_sequence(tx, SequenceDef(
        code="MAN", trigger_request_type="service_schedule",
        steps=[StepDef(action="call", employee_email=LUCA)]), now=START))
    live = await store.write(lambda tx: apply_inbound(tx, request_mail(1), now=START,
                                                      settings=settings))
    old = await store.write(lambda tx: apply_inbound(
        tx, replace(request_mail(2), acknowledge=False), now=START, settings=settings))
    async with store.read() as conn:
        cases = [tuple(r) for r in await conn.execute_fetchall(
            "SELECT i.number, i.request_type, r.code FROM interventions i"
            " LEFT JOIN sequence_runs r ON r.intervention_number = i.number ORDER BY i.number")]
    assert cases == [(live.intervention_number, "service_schedule", "MAN"),
                     (old.intervention_number, "service_schedule", None)]
