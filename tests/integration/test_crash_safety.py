"""Crash safety on the real `nexusmail run` process: durable before 250, idempotent
ingest, transactional outbox.

Short runs of tests/support/crash_cycles.py; bench/crash_safety.py runs the long ones.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_cycles import (
    CrashPlan,
    DaemonProcess,
    build_mail,
    fill_up,
    half_stored,
    mounted_tmpfs,
    read_db,
    relay_sink,
    run_crash_cycles,
    send_once,
    wait_outbox_drained,
    write_config,
)
from smtp_sink import free_port
from store_choice import SQLITE, database_url_for, dialect

pytestmark = pytest.mark.timeout(90)

RELAY_CONNECTIONS = 4  # the daemon's outbox concurrency and relay connection pool


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Mail over 4 connections, SIGKILL at random moments, restart: every mail stored
    once, nothing half-stored, every acknowledgement sent under one Message-ID."""
    report = await run_crash_cycles(
        CrashPlan(cycles=5, connections=4, kill_after_s=(0.2, 0.8), sink_delay_s=0.02,
                  seed=7, database_url=database_url_for(tmp_path / "data")), tmp_path)
    assert report.problems == []
    assert report.kills == 5
    # Enough mail to land kills in the middle of it. Fewer fit in the same windows when
    # the store is a server (22 on PostgreSQL on a busy 2-vCPU machine, where SQLite
    # still passed 50).
    assert report.mails >= (50 if dialect() == SQLITE else 15)
    assert report.acks_received == report.mails + report.ack_duplicates
    # A sent row is marked before its connection carries the next mail, so a kill
    # repeats at most one mail per relay connection (the daemon uses up to 4).
    assert report.ack_duplicates <= RELAY_CONNECTIONS * report.kills


async def test_outbox_killed_mid_send_resends_the_same_message_id(tmp_path: Path) -> None:
    """Kills while the relay holds a mail it took: after the restart the acknowledgement
    is sent again with the same Message-ID (at least once, never a second ID)."""
    report = await run_crash_cycles(
        CrashPlan(cycles=3, connections=2, kill_mid_send=True, kill_after_s=(0.0, 0.1),
                  sink_delay_s=0.3, max_mails=24, seed=11,
                  database_url=database_url_for(tmp_path / "data")), tmp_path)
    assert report.problems == []
    assert report.kills_mid_send == 3
    assert report.resent_ack_ids >= 1  # copies of a held mail, same Message-ID
    assert report.acks_received == report.mails + report.ack_duplicates
    assert report.ack_duplicates <= RELAY_CONNECTIONS * report.kills


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted afterwards (skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        with mounted_tmpfs("8m") as disk:
            yield disk
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc.stderr!r}")


@pytest.mark.sqlite_only(reason="fills the disk the SQLite file is on; PostgreSQL's files "
                                "are on the server's disk")
async def test_full_disk_answers_451_then_recovers(tmp_path: Path, small_disk: Path) -> None:
    """On a filesystem that is really full, big mails and attachments get 451 and
    nothing is half-stored; once space is freed the resent mails are stored once."""
    data_dir = small_disk / "data"
    async with relay_sink() as (relay_port, sink):
        smtp_port = free_port()
        config = write_config(tmp_path / "nexusmail.toml", data_dir, smtp_port=smtp_port,
                              relay_port=relay_port)
        daemon = DaemonProcess(config, smtp_port, tmp_path / "daemon.log")
        try:
            await daemon.start()
            before = [build_mail(n) for n in range(3)]
            assert [await send_once(smtp_port, mail) for mail in before] == [250] * 3
            await wait_outbox_drained(data_dir)

            filler = fill_up(small_disk)
            during = [build_mail(10, body_lines=3000),
                      build_mail(11, attachment=os.urandom(200_000))]
            assert [await send_once(smtp_port, mail) for mail in during] == [451, 451]
            assert half_stored(data_dir) == []
            with contextlib.closing(read_db(data_dir)) as conn:
                assert conn.execute("SELECT count(*) FROM inbound").fetchone() == (3,)

            filler.unlink()
            assert [await send_once(smtp_port, mail) for mail in during] == [250, 250]
            await wait_outbox_drained(data_dir)
            assert await daemon.terminate() == 0
        finally:
            await daemon.kill()
    assert half_stored(data_dir) == []
    with contextlib.closing(read_db(data_dir)) as conn:
        stored = sorted(r[0] for r in conn.execute("SELECT message_id FROM inbound"))
        acks = {r[0] for r in conn.execute("SELECT message_id FROM outbox WHERE status = 'sent'")}
    assert stored == sorted(mail.message_id for mail in before + during)
    assert {captured.message_id for captured in sink.messages} == acks
    assert len(acks) == 5
    assert 'smtp.temporary_failure' in (tmp_path / "daemon.log").read_text()
