"""Crash safety of the real `nexusmail run` process on PostgreSQL: the daemon SIGKILLed
under load, and the database server itself crashing (`pg_ctl -m immediate stop`) under
load. Durable before 250, nothing stored twice, 451 while the database is down, and
intake back when it is.

Short runs of tests/support/crash_cycles.py; bench/crash_safety.py --database-url runs
long ones.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from crash_cycles import (
    CrashPlan,
    CrashReport,
    DaemonProcess,
    Load,
    SlowSink,
    run_crash_cycles,
    verify,
    wait_outbox_drained,
    write_config,
)
from postgres_server import PostgresCluster
from smtp_sink import free_port, start_sink

pytestmark = pytest.mark.timeout(90)

RELAY_CONNECTIONS = 4  # the daemon's outbox concurrency and relay connection pool
OUTAGE_S = 2.0
# A commit that finished just before the crash may have its 250 written a moment
# after pg_ctl returns; a 250 later than this into the outage would be a lie.
LATE_250_GRACE_S = 0.5


def new_database(cluster: PostgresCluster) -> str:
    return cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")


async def test_sigkill_of_the_daemon_on_postgresql_loses_and_doubles_nothing(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """Mail over 4 connections, the daemon SIGKILLed at random moments and restarted on
    PostgreSQL: every mail stored once, nothing half-stored, each acknowledgement sent
    under one Message-ID."""
    report = await run_crash_cycles(
        CrashPlan(cycles=3, connections=4, kill_after_s=(0.3, 1.0), sink_delay_s=0.02,
                  seed=17, database_url=new_database(postgres_cluster)), tmp_path)
    assert report.problems == []
    assert report.kills == 3
    assert report.mails >= 12
    assert report.acks_received == report.mails + report.ack_duplicates
    assert report.ack_duplicates <= RELAY_CONNECTIONS * report.kills


async def test_a_database_crash_under_load_answers_451_then_intake_recovers(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """PostgreSQL stopped with `-m immediate` (a crash) while 4 clients send: no 250
    while it is down, only 451s, no dropped SMTP session; once it is back every mail
    gets its 250 and is stored exactly once, and every acknowledgement is sent."""
    url = new_database(postgres_cluster)
    data_dir = tmp_path / "data"
    sink = SlowSink()
    relay = start_sink(sink)
    smtp_port = free_port()
    config = write_config(tmp_path / "nexusmail.toml", data_dir, smtp_port=smtp_port,
                          relay_port=relay.port, database_url=url)
    daemon = DaemonProcess(config, smtp_port, tmp_path / "daemon.log")
    load = Load(smtp_port, 4, random.Random(23))
    report = CrashReport(CrashPlan(database_url=url))
    try:
        await daemon.start()
        load.up.set()
        load.start()
        await until(lambda: len(load.stats.acked) >= 10, "mails stored before the crash")
        await asyncio.to_thread(postgres_cluster.crash)
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        back_at = time.monotonic()
        await asyncio.to_thread(postgres_cluster.start)
        acked_before_back = len(load.stats.acked)
        await until(lambda: len(load.stats.acked) >= acked_before_back + 10,
                    "mails stored after the database came back", timeout_s=30)
        await asyncio.wait_for(load.finish(), 30)
        await wait_outbox_drained(data_dir, url)
        await until(lambda: sink.holding == 0, "the relay's last 250")
        report.exit_code = await daemon.terminate()
    finally:
        await load.cancel()
        await daemon.kill()
        await asyncio.to_thread(relay.stop)
    during = [t for t in load.stats.temporary_at if down_at <= t <= back_at]
    lies = [t for t in load.stats.acked_at if down_at + LATE_250_GRACE_S < t < back_at]
    assert during, "no mail was answered while the database was down"
    assert lies == [], f"{len(lies)} mails got 250 while the database was down"
    assert dict(load.stats.errors_by_phase) == {}, "an SMTP session was dropped"
    # Each mail got exactly one 250 and is stored exactly once, whole; every
    # acknowledgement was sent under the one Message-ID it was queued with.
    verify(report, load, sink, daemon, data_dir, set())
    assert report.problems == []
    assert report.mails == len(load.mails) >= 20


async def until(check: Callable[[], bool], what: str, *, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
