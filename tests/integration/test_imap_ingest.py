"""IMAP collection against a real Dovecot (tests/support/dovecot_server.py): no mocks."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import trustme
from daemon_harness import SUPPORT, make_settings, running_daemon
from dovecot_server import ANY_USER_PASSWORD, Dovecot, dovecot_binary, new_user
from polling import eventually

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.cli.main import main
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.ingest.imap.poller import ImapCollector, check_accounts
from nexusmail.paths import blobs_path
from nexusmail.tickets.store import Store

if dovecot_binary() is None and os.geteuid() != 0:
    pytest.skip("dovecot is not installed and we are not root to install it "
                "(apt-get install dovecot-imapd, or run `make test` as root)",
                allow_module_level=True)

PROCESSED = b"$NexusProcessed"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    """A fresh, empty mailbox: any tmp-* name logs in with ANY_USER_PASSWORD."""
    return new_user()


def make_mail(index: int, *, message_id: bool = True, body_bytes: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {index} <customer{index}@example.org>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Boiler {index} stopped"
    if message_id:
        msg["Message-ID"] = f"<imap-test-{index}-{time.monotonic_ns()}@example.org>"
    msg.set_content(f"Hello, boiler number {index} shows error E{index}.\n"
                    + "x" * body_bytes)
    return msg.as_bytes()


def account(dovecot: Dovecot, user: str, **extra: Any) -> dict[str, Any]:
    return {"name": "support", "host": dovecot.host, "port": dovecot.port, "tls": "none",
            "username": user, "password": ANY_USER_PASSWORD, **extra}


def settings_for(data_dir: Path, accounts: list[dict[str, Any]], **sections: Any) -> Settings:
    imap = {"accounts": accounts, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
            **sections.pop("imap", {})}
    return make_settings(data_dir, imap=imap, **sections)


@asynccontextmanager
async def collecting(settings: Settings, store: Store) -> AsyncIterator[ImapCollector]:
    """The real collector over a real Store + Ingest, stopped by its stop event."""
    clock = SystemClock()
    ingest = Ingest(store, LocalBlobStore(blobs_path(settings)), settings, clock)
    collector = ImapCollector(settings, ingest, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        yield collector
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)




async def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with store.read() as conn:
        return [tuple(r) for r in await conn.execute_fetchall(sql, params)]


async def count(store: Store, sql: str, *params: Any) -> int:
    return int((await rows(store, sql, *params))[0][0])


STORED = "SELECT count(*) FROM inbound WHERE outcome != 'duplicate'"


async def test_new_mail_during_idle_becomes_intervention_within_2s(
        tmp_path: Path, dovecot: Dovecot, user: str) -> None:
    """A mail arriving while we IDLE is an intervention within 2 s, then moved to a
    move_to folder we created; /api/v1/health shows the account's state."""
    settings = settings_for(tmp_path, [account(dovecot, user)])
    async with running_daemon(settings) as daemon, httpx.AsyncClient() as http:
        async def idling() -> bool:
            health = (await http.get(f"{daemon.web_url}/api/v1/health")).json()
            state = health["imap"]["support"]
            return bool(state["connected"] and state["idle"] and state["last_success"])
        await eventually(idling)
        await asyncio.sleep(0.3)  # inside IDLE, not in the first sync
        started = time.monotonic()
        await asyncio.to_thread(dovecot.append, user, [make_mail(1)])

        async def intervention() -> bool:
            return bool(await daemon.query("SELECT number FROM interventions"))
        await eventually(intervention, "the intervention", timeout_s=2.0)
        assert time.monotonic() - started < 2.0
        await eventually(lambda: asyncio.to_thread(dovecot.folder_uids, user,
                                                   "nexusmail.processed"))
        state = (await http.get(f"{daemon.web_url}/api/v1/health")).json()["imap"]["support"]
    assert await asyncio.to_thread(dovecot.folder_uids, user) == {}
    assert state["stored"] == 1
    assert state["acknowledged"] == 1
    assert state["last_error"] is None
    assert await daemon.query("SELECT source FROM inbound") == [("imap:support",)]


async def test_seen_mails_are_ingested_and_flag_mode_keeps_them(
        tmp_path: Path, dovecot: Dovecot, user: str, store: Store) -> None:
    """Mails read in webmail first (\\Seen) are still collected; after = "flag" marks
    them $NexusProcessed in place, creates no folder, and never sets \\Seen itself."""
    await asyncio.to_thread(dovecot.append, user, [make_mail(1), make_mail(2)],
                            flags=(b"\\Seen",))
    await asyncio.to_thread(dovecot.append, user, [make_mail(3)])
    settings = settings_for(tmp_path, [account(dovecot, user, after="flag")])
    async with collecting(settings, store) as collector:
        await eventually(lambda: collector.states()["support"]["acknowledged"] == 3)
    assert await count(store, "SELECT count(*) FROM interventions") == 3
    flags = await asyncio.to_thread(dovecot.folder_uids, user)
    assert all(PROCESSED in f for f in flags.values())
    assert len(flags) == 3
    assert [b"\\Seen" in flags[uid] for uid in sorted(flags)] == [True, True, False]
    with dovecot.client(user) as c:
        assert [name for _f, _d, name in c.list_folders()] == ["INBOX"]


async def test_restart_in_the_middle_of_a_batch(
        tmp_path: Path, dovecot: Dovecot, user: str, store: Store) -> None:
    """A crash after commit but before checkpoint and move (here: 10 mails committed by
    an earlier run), then a kill in the middle of a batch: every mail has exactly one
    effect after a restart, none is lost, all end up moved."""
    total = 120
    mails = [make_mail(i) for i in range(total)]
    await asyncio.to_thread(dovecot.append, user, mails)
    # 120 customers of one domain in seconds: the loop guard would mute the domain.
    settings = settings_for(tmp_path, [account(dovecot, user)],
                            mail={"mute_domain_after_new_cases": 0})
    clock = SystemClock()
    ingest = Ingest(store, LocalBlobStore(blobs_path(settings)), settings, clock)
    for raw in mails[30:40]:
        await ingest.accept(raw, Envelope(mail_from=None), source="imap:support")
    first = ImapCollector(settings, ingest, clock)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await eventually(lambda: first.states()["support"]["stored"] >= 20)
    task.cancel()  # abrupt: no checkpoint and no move for the chunk in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # writes already queued still commit, as after a real crash
    assert 0 < await count(store, STORED) < total
    async with collecting(settings, store) as second:
        await eventually(lambda: second.states()["support"]["highest_uid"] == total)
        # The checkpoint is committed before its chunk is moved: wait for the move too.
        async def inbox_empty() -> bool:
            return not await asyncio.to_thread(dovecot.folder_uids, user)
        await eventually(inbox_empty, "an empty INBOX", every_s=0.2)
        state = second.states()["support"]
    assert await count(store, STORED) == total
    assert await count(store, "SELECT count(*) FROM interventions") == total
    assert first.states()["support"]["duplicates"] + state["duplicates"] >= 10
    assert await asyncio.to_thread(dovecot.folder_uids, user) == {}
    assert len(await asyncio.to_thread(dovecot.folder_uids, user, "nexusmail.processed")) == total


async def test_uidvalidity_change_loses_and_duplicates_nothing(
        tmp_path: Path, dovecot: Dovecot, user: str, store: Store) -> None:
    """After the server renumbers (new UIDVALIDITY), known mails are recognised by
    Message-ID or content hash and only acknowledged; the new mail is collected once."""
    await asyncio.to_thread(dovecot.append, user, [make_mail(1), make_mail(2, message_id=False)])
    settings = settings_for(tmp_path, [account(dovecot, user, after="flag")])
    async with collecting(settings, store) as collector:
        await eventually(lambda: collector.states()["support"]["acknowledged"] == 2)
    old = dovecot.status(user)["uidvalidity"]
    await asyncio.to_thread(dovecot.doveadm, "mailbox", "update", "-u", user,
                            "--uid-validity", str(old + 1000), "INBOX")
    await asyncio.to_thread(dovecot.append, user, [make_mail(3)])
    with structlog.testing.capture_logs() as logs:
        async with collecting(settings, store) as collector:
            await eventually(lambda: collector.states()["support"]["highest_uid"] == 3)
            state = collector.states()["support"]
    assert state["uidvalidity"] == old + 1000
    assert await count(store, STORED) == 3
    assert await count(store, "SELECT count(*) FROM interventions") == 3
    assert state["stored"] == 1
    assert state["duplicates"] == 1
    events = [e["event"] for e in logs]
    assert events.count("imap.uidvalidity_changed") == 1
    reconciled = next(e for e in logs if e["event"] == "imap.reconciled")
    assert reconciled["known"] == 1
    assert reconciled["to_fetch"] == 2


async def test_wrong_password_is_reported_once(
        tmp_path: Path, dovecot: Dovecot, store: Store) -> None:
    """A refused login is logged once however often it is retried, and shows in the
    account's state; the password never reaches a log line."""
    settings = settings_for(tmp_path, [account(dovecot, "alice", password="not-the-pw")],
                            imap={"login_retry_s": 0.1})
    with structlog.testing.capture_logs() as logs:
        async with collecting(settings, store) as collector:
            await eventually(lambda: collector.states()["support"]["login_failures"] >= 3)
            state = collector.states()["support"]
    assert [e["event"] for e in logs].count("imap.login_failed") == 1
    assert not state["connected"]
    assert "login refused for alice" in state["last_error"]
    assert "not-the-pw" not in repr(logs)
    assert "not-the-pw" not in repr(state)


async def test_oversized_mail_stays_on_the_server(
        tmp_path: Path, dovecot: Dovecot, user: str, store: Store) -> None:
    """A mail above max_message_bytes (by RFC822.SIZE) is left in the folder, recorded,
    reported once across many polls; the others are collected."""
    await asyncio.to_thread(dovecot.append, user, [make_mail(1, body_bytes=8000), make_mail(2)])
    settings = settings_for(tmp_path, [account(dovecot, user, use_idle=False)],
                            imap={"poll_interval_s": 0.05}, limits={"max_message_bytes": 4096})
    with structlog.testing.capture_logs() as logs:
        async with collecting(settings, store) as collector:
            await eventually(lambda: collector.states()["support"]["acknowledged"] == 1)
            await asyncio.sleep(0.5)  # several more polls
            state = collector.states()["support"]
    assert state["oversize_left"] == 1
    assert not state["idle"]
    reports = [e for e in logs if e["event"] == "imap.oversize_left"]
    assert len(reports) == 1
    assert reports[0]["size"] > 8000
    assert reports[0]["uid"] == 1
    assert reports[0]["sender"] == "customer1@example.org"
    assert list(await asyncio.to_thread(dovecot.folder_uids, user)) == [1]
    assert await rows(store, "SELECT uid, subject FROM imap_oversize") == [(1, "Boiler 1 stopped")]
    assert await count(store, STORED) == 1


async def test_check_accounts_reports_without_changing_anything(
        tmp_path: Path, dovecot: Dovecot, user: str) -> None:
    """check-config's probe: capabilities, folder, message count; a bad account names
    its error; the mailbox keeps its mails unseen and gets no folder."""
    await asyncio.to_thread(dovecot.append, user, [make_mail(1), make_mail(2)])
    settings = settings_for(tmp_path, [
        account(dovecot, user),
        {**account(dovecot, "alice", password="wrong"), "name": "bad"},
        {**account(dovecot, user, folder="Nope"), "name": "nofolder"},
    ])
    good, bad, nofolder = await check_accounts(settings)
    assert good.ok
    assert "IDLE" in good.capabilities
    assert good.messages == 2
    assert good.move_to_exists is False
    assert not bad.ok
    assert "login refused" in (bad.error or "")
    assert not nofolder.ok
    assert not nofolder.folder_exists
    flags = await asyncio.to_thread(dovecot.folder_uids, user)
    assert all(b"\\Seen" not in f for f in flags.values())
    assert len(flags) == 2
    assert await asyncio.to_thread(dovecot.folder_uids, user, "nexusmail.processed") == {}


async def test_oauth2_token_command_is_run_and_failures_are_clear(
        tmp_path: Path, dovecot: Dovecot, user: str) -> None:
    """The XOAUTH2 token command runs (a refusal is reported, never the token); a failing
    command is reported with its exit status and stderr."""
    marker = tmp_path / "ran"
    good = tmp_path / "token.sh"
    good.write_text(f"#!/bin/sh\ntouch {marker}\necho secret-token-123\n")
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho 'no refresh token' >&2\nexit 3\n")
    for script in (good, failing):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    settings = settings_for(tmp_path, [
        {**account(dovecot, user, password=""), "oauth2_token_command": str(good)},
        {**account(dovecot, user, password=""), "name": "broken",
         "oauth2_token_command": str(failing)},
    ])
    with structlog.testing.capture_logs() as logs:
        refused, broken = await check_accounts(settings)
    assert marker.exists()
    assert not refused.ok
    assert "login refused" in (refused.error or "")
    assert "secret-token-123" not in repr(refused) + repr(logs)
    assert not broken.ok
    assert "oauth2_token_command failed (exit 3): no refresh token" in (broken.error or "")


def test_check_config_prints_each_account(tmp_path: Path, dovecot: Dovecot, user: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`nexusmail check-config` reports every account and fails when one cannot be used."""
    dovecot.append(user, [make_mail(1)])
    path = tmp_path / "n.toml"
    base = (f'[storage]\ndata_dir = "{tmp_path}"\n[[imap.accounts]]\nname = "support"\n'
            f'host = "127.0.0.1"\nport = {dovecot.port}\ntls = "none"\nusername = "{user}"\n')
    path.write_text(base + f'password = "{ANY_USER_PASSWORD}"\n')
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "# support (127.0.0.1): OK" in out
    assert "folder 'INBOX': 1 messages" in out
    assert "IDLE" in out
    path.write_text(base + 'password = "wrong"\n')
    assert main(["--config", str(path), "check-config"]) == 1
    assert "FAILED: login refused" in capsys.readouterr().out


async def test_tls_modes_verify_the_server_certificate(tmp_path: Path) -> None:
    """STARTTLS and implicit TLS log in when the certificate is trusted; an untrusted
    one is refused with a clear error, before any password is sent."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    with Dovecot(tls_pem=leaf.private_key_and_cert_chain_pem.bytes()) as server:
        user = new_user()
        settings = settings_for(tmp_path, [
            {**account(server, user), "name": "starttls", "tls": "starttls"},
            {**account(server, user), "name": "implicit", "tls": "implicit",
             "port": server.imaps_port},
        ])
        starttls, implicit = await check_accounts(settings, ssl_context=trusted)
        untrusted, _ = await check_accounts(settings)
    assert starttls.ok
    assert implicit.ok
    assert not untrusted.ok
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")
