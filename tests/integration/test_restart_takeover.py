"""A daemon restarted after a crash sends what its dead predecessor held at once.

Real daemon processes, a slow aiosmtpd relay, SQLite and PostgreSQL: the first daemon
is SIGKILLed while the relay holds a mail it claimed, under a one-minute outbox lease;
the restarted daemon (same data dir, new incarnation) sees by its lock file that its
predecessor is gone and sends everything within seconds, not after the lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from pathlib import Path

from crash_cycles import DaemonProcess, build_mail, read_db, relay_sink, send_once, write_config
from postgres_server import PostgresCluster
from smtp_sink import free_port

from nexusmail.service.predecessors import DAEMONS_DIR, dead_predecessors, hold_life_lock

LEASE_S = 60.0  # the default: what a restart would wait out without the lock files
MAILS = 8


def count_unsent(data_dir: Path, database_url: str) -> int:
    """Outgoing mails not yet marked sent in the daemon's store."""
    with contextlib.closing(read_db(data_dir, database_url)) as conn:
        return int(conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").fetchone()[0])


async def crash_then_restart(tmp_path: Path, database_url: str = "") -> None:
    data_dir = tmp_path / "data"
    async with relay_sink(delay_s=0.5) as (relay_port, sink):
        smtp_port = free_port()
        config = write_config(tmp_path / "nexusmail.toml", data_dir, smtp_port=smtp_port,
                              relay_port=relay_port, database_url=database_url,
                              lease_s=LEASE_S)
        daemon = DaemonProcess(config, smtp_port, tmp_path / "daemon.log")
        try:
            await daemon.start()
            for index in range(MAILS):
                assert await send_once(smtp_port, build_mail(index)) == 250
            deadline = time.monotonic() + 20
            while sink.holding == 0:  # the relay has a mail the daemon has not marked
                assert time.monotonic() < deadline, "the daemon never sent"
                await asyncio.sleep(0.01)
            await daemon.kill()
            assert len(list((data_dir / DAEMONS_DIR).glob("*.lock"))) == 1
            sink.delay_s = 0.0
            restarted = time.monotonic()
            await daemon.start()
            while (unsent := count_unsent(data_dir, database_url)) != 0:
                assert time.monotonic() - restarted < 20, f"{unsent} stranded mails not sent"
                await asyncio.sleep(0.1)
            took_s = time.monotonic() - restarted
            with contextlib.closing(read_db(data_dir, database_url)) as conn:
                queued = {row[0] for row in conn.execute("SELECT message_id FROM outbox")}
            assert len(queued) == MAILS  # one acknowledgement per request
            assert {m.message_id for m in sink.messages} == queued
            released = daemon.events("daemon.predecessor_released")
            assert len(released) == 1
            assert released[0]["outbox_rows"] >= 1
            # Only the restarted daemon's own lock is left.
            assert len(list((data_dir / DAEMONS_DIR).glob("*.lock"))) == 1
            assert await daemon.terminate() == 0
        finally:
            await daemon.kill()
    assert took_s < LEASE_S / 3, took_s
    assert not list((data_dir / DAEMONS_DIR).glob("*.lock"))  # a clean stop leaves none
    copies = Counter(m.message_id for m in sink.messages)
    assert max(copies.values()) <= 2  # at most the mail the relay had from the dead one


async def test_a_restart_on_sqlite_sends_the_dead_daemons_claims_at_once(
    tmp_path: Path,
) -> None:
    """SQLite: the mails a SIGKILLed daemon claimed go out seconds after its restart,
    well inside the one-minute lease, each at most twice (same Message-ID)."""
    await crash_then_restart(tmp_path)


async def test_a_restart_on_postgresql_sends_the_dead_daemons_claims_at_once(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """PostgreSQL: the same, the claims released in the shared database."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    await crash_then_restart(tmp_path, url)


async def test_a_live_daemons_lock_is_left_alone(tmp_path: Path) -> None:
    """A lock file whose daemon still runs is not taken: a second daemon on the same
    data dir releases nothing of the first's."""
    mine = hold_life_lock(tmp_path, "aaaa")
    try:
        assert dead_predecessors(tmp_path) == []
    finally:
        mine.release()
    assert not (tmp_path / DAEMONS_DIR / "aaaa.lock").exists()
