"""Several daemons ticking one PostgreSQL database: a schedule being opened by one is
passed by the others, not waited for and not opened twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

from postgres_server import PostgresCluster

from nexusmail.config import Settings
from nexusmail.storage.pg_store import PgStore, WriteConnection
from nexusmail.storage.postgresql import connect
from nexusmail.tickets.recurrence import CatchUp, Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule, open_due

KEYS = [b"cluster-scheduler-test-signing-key-0123"]
NOW = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 9)


async def test_a_schedule_being_opened_is_skipped_by_another_daemon(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """While one daemon's opening of a schedule is uncommitted, another daemon's opening
    of the same schedule returns at once having opened nothing; after the first
    commits, the occurrence was opened exactly once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path), "database_url": url},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})
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
