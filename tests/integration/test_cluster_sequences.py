"""Several daemons sweeping one PostgreSQL database: an action-sequence step being
mailed by one is passed by the others, not waited for and not mailed twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from postgres_server import PostgresCluster

from nexusmail.config import Settings
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.pg_store import PgStore, WriteConnection
from nexusmail.storage.postgresql import connect
from nexusmail.tickets.cases import (
    NewIntervention,
    add_employee,
    create_intervention,
    find_or_create_customer,
)
from nexusmail.tickets.models import Source
from nexusmail.tickets.sequence_plan import start_sequence
from nexusmail.tickets.sequence_steps import mail_step
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence

KEYS = [b"cluster-sequences-test-signing-key-0123"]
NOW = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def cluster_settings(tmp_path: Path, url: str) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path), "database_url": url},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})


def started_case(tx: WriteTx, *, settings: Settings) -> int:
    """A case with the one-step sequence CALL started on it; the due step's id."""
    customer = find_or_create_customer(tx, email="ana@example.ro", name="Ana", now=NOW)
    number = create_intervention(
        tx, NewIntervention(customer.customer_id, "Caldaia", "", Source.EMAIL), now=NOW)
    add_employee(tx, email="luca@firm.test", name="Luca", language="it", now=NOW)
    create_sequence(tx, SequenceDef(code="CALL", steps=[
        StepDef(action="call", employee_email="luca@firm.test")]), now=NOW)
    run_id = start_sequence(tx, number, "CALL", started_by="test", now=NOW,
                            settings=settings)
    return int(tx.execute("SELECT id FROM sequence_run_steps WHERE run_id = ?",
                          (run_id,)).fetchone()[0])


async def test_a_step_being_mailed_is_skipped_by_another_daemon(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """While one daemon's mailing of a due step is uncommitted, another daemon's mailing
    of it returns at once having done nothing; the step is mailed once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = cluster_settings(tmp_path, url)
    async with PgStore(url) as store:
        step_id = await store.write(partial(started_case, settings=settings))
        work = partial(mail_step, step_id=step_id, now=NOW, settings=settings,
                       reply_keys=KEYS)
        with connect(url) as other:
            with other.transaction():
                first = work(WriteConnection(other))
                started = time.monotonic()
                second = await asyncio.wait_for(store.write(work), 5)
                assert time.monotonic() - started < 2  # passed by, not waited for
            assert first is not None
            assert first.outcome == "mailed"
            assert second is None
        assert await store.write(work) is None  # after the commit: mailed already
        async with store.read() as conn:
            mails = list(await conn.execute_fetchall(
                "SELECT recipient FROM outbox WHERE kind = 'assignment'"))
            steps = list(await conn.execute_fetchall(
                "SELECT status FROM sequence_run_steps"))
        assert [tuple(r) for r in mails] == [("luca@firm.test",)]
        assert [tuple(r) for r in steps] == [("assigned",)]
