"""Three daemons on one PostgreSQL database and one S3 blob store (moto on loopback),
a few hundred mails sent round-robin across them with MTA-like retries and schedules
due, one daemon SIGKILLed mid-run and restarted: nothing lost, nothing doubled,
nothing half-stored.

A short run of tests/support/cluster_chaos.py; bench/cluster_chaos.py runs long ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_chaos import OUTBOX_IN_FLIGHT, ChaosPlan, run_cluster_chaos
from dovecot_server import Dovecot, dovecot_binary
from postgres_server import PostgresCluster
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server

# Bounded waits inside are generous for a loaded machine; this is the last resort.
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """moto's S3 server, with the keys in the environment the daemons inherit."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    with s3_server() as server:
        yield server


@pytest.fixture
def dovecot() -> Iterator[Dovecot | None]:
    """A throwaway Dovecot when installed; without it the IMAP part is left out."""
    if dovecot_binary() is None:
        yield None
        return
    with Dovecot() as server:
        yield server


async def test_three_daemons_lose_and_double_nothing_through_a_kill(
    tmp_path: Path, postgres_cluster: PostgresCluster, s3: S3Server,
    dovecot: Dovecot | None
) -> None:
    """150 mails by SMTP (about a fifth with an attachment) over three daemons, one SIGKILLed
    while the relay holds an acknowledgement and restarted: each mail got one 250, is
    one inbound row and one intervention; each acknowledgement reached the relay under
    its one Message-ID, copies only within what the killed daemon had in flight; every
    attachment is an object in the bucket that verifies; nothing is half-stored. 200
    schedules due as the daemons start: each (schedule, occurrence) opened once. 50 more
    mails delivered to a Dovecot folder all three collect: each stored once (no UID
    skipped), and the folder's checkpoint never went backwards. After `blobs gc` no
    object in the bucket is an orphan."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    report = await run_cluster_chaos(ChaosPlan(mails=200, kills=1, schedules=200,
                                               imap_mails=50 if dovecot else 0),
                                     tmp_path, database_url=url, s3=s3,
                                     bucket=s3.new_bucket(), dovecot=dovecot)
    assert report.problems == []
    assert report.kills == 1
    assert report.mails == 200
    if dovecot is not None:
        assert report.imap_collected == 50
        assert report.checkpoint_reads > 10
    assert report.with_attachment > 20
    assert report.acks_received == report.mails + report.ack_duplicates
    assert report.ack_duplicates <= OUTBOX_IN_FLIGHT
    # Every daemon took part (the restarted one too, or its share went elsewhere).
    assert sum(1 for n in report.per_daemon_mails.values() if n) == 3
    assert report.exit_codes == [0, 0, 0]
    assert report.schedules_opened == 200
    assert "removed" in report.gc_output
    assert report.orphan_objects == 0
