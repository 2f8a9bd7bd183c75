"""Several daemons ticking one PostgreSQL database: a schedule being opened, or an SLA
step being carried out, by one is passed by the others, not waited for and not done
twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

from postgres_server import PostgresCluster

from nexusmail.config import Settings
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.pg_store import PgStore, WriteConnection
from nexusmail.storage.postgresql import connect
from nexusmail.tickets.cases import NewIntervention, create_intervention, find_or_create_customer
from nexusmail.tickets.deadlines import run_step
from nexusmail.tickets.models import Source
from nexusmail.tickets.recurrence import CatchUp, Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule, open_due

KEYS = [b"cluster-scheduler-test-signing-key-0123"]
NOW = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 9)


def cluster_settings(tmp_path: Path, url: str) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path), "database_url": url},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})


async def test_a_schedule_being_opened_is_skipped_by_another_daemon(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """While one daemon's opening of a schedule is uncommitted, another daemon's opening
    of the same schedule returns at once having opened nothing; after the first
    commits, the occurrence was opened exactly once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = cluster_settings(tmp_path, url)
    spec = ScheduleSpec(customer_email="condominio@example.it",
                        customer_name="Condominio Aurora", subject="Manutenzione caldaia",
                        description="Controllo annuale fumi.", interval=Interval.MONTHLY,
                        first_date=date(2026, 3, 10), lead_days=3)
    async with PgStore(url) as store:
        schedule_id = await store.write(
            lambda tx: create_schedule(tx, spec, today=date(2026, 3, 1), now=NOW))
        work = partial(open_due, schedule_id=schedule_id, today=TODAY, now=NOW,
                       settings=settings, reply_keys=KEYS, catch_up=CatchUp.LATEST)
        with connect(url) as other:
            with other.transaction():
                first = work(WriteConnection(other))
                started = time.monotonic()
                second = await asyncio.wait_for(store.write(work), 5)
                assert time.monotonic() - started < 2  # passed by, not waited for
            assert len(first.opened) == 1
            assert second.opened == ()
        third = await store.write(work)  # after the commit: no longer due
        assert third.opened == ()
        async with store.read() as conn:
            counted = list(await conn.execute_fetchall(
                "SELECT COUNT(*) FROM interventions"))
        assert counted[0][0] == 1


def due_step(tx: WriteTx) -> int:
    """A resolved case with a resolution warning due (carried out as moot: no mail)."""
    customer = find_or_create_customer(tx, email="ana@example.ro", name="Ana", now=NOW)
    number = create_intervention(
        tx, NewIntervention(customer.customer_id, "Caldaia", "", Source.EMAIL), now=NOW)
    tx.execute("UPDATE interventions SET status = 'resolved' WHERE number = ?", (number,))
    return int(tx.execute(
        "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
        " VALUES (?, 0, 'resolution_warning', ?) RETURNING id",
        (number, "2026-03-09T08:00:00+00:00")).fetchone()[0])


async def test_an_sla_step_being_carried_out_is_skipped_by_another_daemon(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """While one daemon's run of a due SLA step is uncommitted, another daemon's run of
    it returns at once having done nothing; the step is done once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = cluster_settings(tmp_path, url)
    async with PgStore(url) as store:
        step_id = await store.write(due_step)
        work = partial(run_step, step_id=step_id, now=NOW, settings=settings)
        with connect(url) as other:
            with other.transaction():
                first = work(WriteConnection(other))
                started = time.monotonic()
                second = await asyncio.wait_for(store.write(work), 5)
                assert time.monotonic() - started < 2  # passed by, not waited for
            assert first is not None
            assert second is None
        assert await store.write(work) is None  # after the commit: done already
        async with store.read() as conn:
            done = list(await conn.execute_fetchall("SELECT outcome FROM sla_steps"))
        assert [tuple(r) for r in done] == [("moot",)]
