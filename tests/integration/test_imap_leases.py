"""Several daemons collecting one IMAP folder through one database: the folder's lease.

Real Dovecot (tests/support/dovecot_server.py) and real PostgreSQL; each "daemon" is a
collector with its own store connection to the same database and its own lease owner.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import SUPPORT, make_settings, running_daemon
from dovecot_server import ANY_USER_PASSWORD, Dovecot, dovecot_binary, new_user
from polling import eventually
from postgres_server import PostgresCluster

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.imap.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from nexusmail.ingest.imap.lease import acquire_lease, renew_lease
from nexusmail.ingest.imap.poller import ImapCollector
from nexusmail.ingest.imap.share import LiveDaemons
from nexusmail.paths import blobs_path
from nexusmail.storage.connections import Storage
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.store import Store

if dovecot_binary() is None and os.geteuid() != 0:
    pytest.skip("dovecot is not installed and we are not root to install it",
                allow_module_level=True)

LEASE_S = 3.0  # renewed every second: a loaded machine does not lose it by accident
STORED = "SELECT count(*) FROM inbound WHERE outcome != 'duplicate'"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def database(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")


def make_mail(index: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {index} <customer{index}@example.org>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Boiler {index} stopped"
    msg["Message-ID"] = f"<lease-test-{index}-{time.monotonic_ns()}@example.org>"
    msg.set_content(f"Hello, boiler number {index} shows error E{index}.\n")
    return msg.as_bytes()


def settings_for(data_dir: Path, dovecot: Dovecot, *users: str, **sections: Any) -> Settings:
    # after = "flag" leaves the mails in INBOX: a replaced holder that wakes up sees
    # them all again, the hardest case for "stored once".
    names = ["support", "service", "sales"]
    return make_settings(data_dir, imap={
        "accounts": [{"name": name, "host": dovecot.host, "port": dovecot.port,
                      "tls": "none", "username": user, "password": ANY_USER_PASSWORD,
                      "after": "flag"} for name, user in zip(names, users, strict=False)],
        "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "lease_s": LEASE_S,
        "poll_interval_s": 0.3, "sweep_interval_s": 0.3}, **sections)


@asynccontextmanager
async def daemon(settings: Settings, url: str, owner: str,
                 live_daemons: LiveDaemons | None = None) -> AsyncIterator[ImapCollector]:
    """One daemon's IMAP collection: its own connection to the shared database."""
    clock = SystemClock()
    async with PgStore(url) as store:
        ingest = Ingest(store, LocalBlobStore(blobs_path(settings)), settings, clock)
        collector = ImapCollector(settings, ingest, clock, owner=owner,
                                  live_daemons=live_daemons)
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        try:
            yield collector
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def scalar(url: str, sql: str) -> Any:
    async with PgStore(url) as store, store.read() as conn:
        return (await conn.execute_fetchall(sql, ()))[0][0]


def state(collector: ImapCollector) -> dict[str, Any]:
    return collector.states()["support"]


async def test_two_daemons_on_one_folder_only_one_collects(
        tmp_path: Path, dovecot: Dovecot, database: str) -> None:
    """Two daemons started together on one account and folder: one holds the lease and
    collects everything; the other never connects to the server, stores nothing, and
    does not take the lease while the holder renews it (several lease lengths)."""
    user = new_user()
    await asyncio.to_thread(dovecot.append, user, [make_mail(i) for i in range(5)])
    settings = settings_for(tmp_path, dovecot, user)
    async with daemon(settings, database, "daemon-a") as a, \
            daemon(settings, database, "daemon-b") as b:
        await eventually(lambda: state(a)["acknowledged"] + state(b)["acknowledged"] == 5)
        holder, other = (a, b) if state(a)["lease_epoch"] is not None else (b, a)
        connected_other = False
        deadline = time.monotonic() + 2.5 * LEASE_S
        while time.monotonic() < deadline:
            connected_other |= bool(state(other)["connected"])
            assert state(holder)["lease_epoch"] == 1
            await asyncio.sleep(0.05)
        assert not connected_other
        assert state(other)["lease_epoch"] is None
        assert (holder.held_leases(), other.held_leases()) == (1, 0)
        assert (state(other)["stored"], state(other)["duplicates"]) == (0, 0)
    assert await scalar(database, STORED) == 5
    assert await scalar(database, "SELECT count(*) FROM interventions") == 5


async def test_a_stalled_holder_is_replaced_and_nothing_is_stored_twice_or_lost(
        tmp_path: Path, dovecot: Dovecot, database: str) -> None:
    """The holder stalls (its IMAP thread blocked, so it stops renewing): the other daemon
    takes the lease with epoch 2 and collects the mails that came meanwhile. When the
    stalled one wakes up its renewal and checkpoint are refused, it lets go without
    moving or flagging anything, and every mail is stored exactly once."""
    user = new_user()
    await asyncio.to_thread(dovecot.append, user, [make_mail(i) for i in range(3)])
    settings = settings_for(tmp_path, dovecot, user)
    async with daemon(settings, database, "daemon-a") as a:
        await eventually(lambda: state(a)["acknowledged"] == 3)
        async with daemon(settings, database, "daemon-b") as b:
            await asyncio.sleep(LEASE_S)
            assert state(b)["lease_epoch"] is None
            stall = threading.Event()
            # Blocks the holder's one IMAP thread: its next server call, and so its next
            # renewal, waits, as a process stopped by the kernel or a hung socket would.
            a.accounts[0]._executor.submit(stall.wait, 20)
            await asyncio.to_thread(dovecot.append, user, [make_mail(i) for i in range(3, 6)])
            await eventually(lambda: state(b)["lease_epoch"] == 2, timeout_s=4 * LEASE_S)
            await eventually(lambda: state(b)["acknowledged"] == 3)
            stall.set()
            await eventually(lambda: state(a)["lease_epoch"] is None, "the old holder to let go")
            await asyncio.to_thread(dovecot.append, user, [make_mail(6)])
            await eventually(lambda: state(b)["acknowledged"] == 4)
            await asyncio.sleep(LEASE_S)  # the old holder keeps out
            assert state(a)["acknowledged"] == 3
            assert state(a)["lease_epoch"] is None
    assert await scalar(database, STORED) == 7
    assert await scalar(database, "SELECT count(*) FROM interventions") == 7
    assert await scalar(database, "SELECT count(DISTINCT message_id) FROM inbound"
                        " WHERE outcome != 'duplicate'") == 7
    assert await scalar(database, "SELECT highest_uid FROM imap_checkpoints") == 7
    flags = await asyncio.to_thread(dovecot.folder_uids, user)
    assert len(flags) == 7
    assert all(b"$NexusProcessed" in f for f in flags.values())


async def test_a_daemon_started_later_gets_its_share_of_the_folders(
        tmp_path: Path, dovecot: Dovecot, database: str) -> None:
    """The first daemon, alone, collects both accounts; when a second one counts among
    the live daemons, the first lets go of one folder (by name: "service" is kept) and
    the second takes it. Mail sent to both accounts before and after is stored once."""
    users = [new_user(), new_user()]
    for index, user in enumerate(users):
        await asyncio.to_thread(dovecot.append, user, [make_mail(10 * index)])
    settings = settings_for(tmp_path, dovecot, *users)
    live = [1]

    async def live_daemons() -> int:
        return live[0]

    async with daemon(settings, database, "daemon-a", live_daemons) as a:
        await eventually(lambda: a.held_leases() == 2)
        await eventually(lambda: state(a)["acknowledged"] + a.states()["service"][
            "acknowledged"] == 2)
        live[0] = 2
        async with daemon(settings, database, "daemon-b", live_daemons) as b:
            await eventually(lambda: (a.held_names(), b.held_names())
                             == (["service"], ["support"]), timeout_s=4 * LEASE_S)
            for index, user in enumerate(users):
                await asyncio.to_thread(dovecot.append, user, [make_mail(10 * index + 1)])
            await eventually(lambda: state(b)["acknowledged"] == 1)
            await eventually(lambda: a.states()["service"]["acknowledged"] == 2)
            assert state(b)["lease_epoch"] == 2
    assert await scalar(database, STORED) == 4
    assert await scalar(database, "SELECT count(*) FROM interventions") == 4


async def test_two_daemons_share_two_accounts_and_show_what_they_hold(
        tmp_path: Path, dovecot: Dovecot, database: str) -> None:
    """Two whole daemons on one PostgreSQL with the same two accounts: counting each
    other by their heartbeats, each ends up collecting one account, says so in its
    heartbeat (health: holds.imap; /metrics), and every mail is stored once."""
    users = [new_user(), new_user()]
    for index, user in enumerate(users):
        await asyncio.to_thread(dovecot.append, user, [make_mail(20 + index)])
    # A short outbox lease: heartbeats every second, so each soon counts the other.
    first, second = (settings_for(tmp_path / name, dovecot, *users,
                                  storage={"database_url": database}, outbound={"lease_s": 3})
                     for name in ("a", "b"))
    async with running_daemon(first) as a, running_daemon(second) as b, \
            httpx.AsyncClient() as http:
        async def spread() -> bool:
            holds = []
            for d in (a, b):
                health = (await http.get(d.web_url + "/api/v1/health")).json()
                mine = [x for x in health["cluster"]["daemons"]
                        if x["id"] == health["cluster"]["self"]]
                holds.append(mine[0]["holds"].get("imap") if mine else None)
            return holds == [1, 1]
        await eventually(spread, "one account each", timeout_s=15)

        async def in_metrics() -> bool:  # as of a's latest snapshot of the cluster
            metrics = (await http.get(a.web_url + "/metrics")).text
            return re.findall(r'^nexusmail_cluster_imap_held\{daemon="\w+"\} (\S+)$',
                              metrics, re.MULTILINE) == ["1.0", "1.0"]
        await eventually(in_metrics, "both daemons' folders in /metrics", timeout_s=15)
        for index, user in enumerate(users):
            await asyncio.to_thread(dovecot.append, user, [make_mail(30 + index)])

        async def all_stored() -> bool:
            return await a.query(STORED) == [(4,)]
        await eventually(all_stored, "four mails stored")
        # While both run: once the second stops it gives its lease back, and the first
        # may take that account over before it stops too.
        assert await scalar(database, "SELECT count(DISTINCT owner) FROM imap_leases") == 2
    assert await scalar(database, "SELECT count(*) FROM interventions") == 4


async def fencing(store: Storage, wait_past_lease: Any) -> None:
    now = SystemClock().now
    lease_s = 0.3
    old = await store.write(lambda tx: acquire_lease(tx, "acct", "INBOX", "daemon-a",
                                                     lease_s, now()))
    assert old is not None
    assert old.epoch == 1
    assert await store.write(lambda tx: acquire_lease(tx, "acct", "INBOX", "daemon-b",
                                                      lease_s, now())) is None
    assert await store.write(lambda tx: save_checkpoint(tx, Checkpoint(7, 10), old, now()))
    await wait_past_lease()
    new = await store.write(lambda tx: acquire_lease(tx, "acct", "INBOX", "daemon-b",
                                                     60, now()))
    assert new is not None
    assert new.epoch == 2
    # The replaced holder: neither its renewal nor its checkpoint changes anything.
    assert not await store.write(lambda tx: renew_lease(tx, old, 60, now()))
    assert not await store.write(lambda tx: save_checkpoint(tx, Checkpoint(7, 50), old, now()))
    assert await store.write(lambda tx: save_checkpoint(tx, Checkpoint(7, 20), new, now()))
    # Never backwards within one UIDVALIDITY, even by the holder; a new one starts over.
    assert not await store.write(lambda tx: save_checkpoint(tx, Checkpoint(7, 15), new, now()))
    saved = await store.write(lambda tx: load_checkpoint(tx, "acct", "INBOX"))
    assert saved == Checkpoint(7, 20)
    assert await store.write(lambda tx: save_checkpoint(tx, Checkpoint(8, 3), new, now()))
    assert await store.write(lambda tx: load_checkpoint(tx, "acct", "INBOX")) == Checkpoint(8, 3)


async def test_checkpoint_fencing_on_postgresql(database: str) -> None:
    """On PostgreSQL (lease time from the database's now()): a replaced holder's renewal
    and checkpoint save are refused, and the checkpoint never moves backwards within one
    UIDVALIDITY."""
    async with PgStore(database) as store:
        await fencing(store, lambda: asyncio.sleep(0.4))


async def test_checkpoint_fencing_on_sqlite(tmp_path: Path) -> None:
    """The same fencing on SQLite, where lease time is the daemon's clock."""
    async with Store(tmp_path / "nexusmail.sqlite3") as store:
        await fencing(store, lambda: asyncio.sleep(0.4))
