"""Operator tooling against real stores: quarantine list/show/retry, mbox import,
backup and restore (also while a running daemon takes mail)."""

from __future__ import annotations

import asyncio
import io
import json
import mailbox
import os
import sqlite3
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon
from mail_corpus import load

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.cli.main import main
from nexusmail.clock import SystemClock
from nexusmail.config import Settings, load_settings
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.ingest.mbox_import import ProgressBar
from nexusmail.mail.parsed import ParsedMail
from nexusmail.paths import blobs_path, database_path
from nexusmail.service.backup import MANIFEST_NAME
from nexusmail.tickets.apply_mail import InboundMail, quarantine
from nexusmail.tickets.store import Store


def write_config(path: Path, data_dir: Path) -> Path:
    path.write_text(f'[storage]\ndata_dir = "{data_dir.as_posix()}"\n'
                    f'[mail]\nsupport_addresses = ["{SUPPORT}"]\n', encoding="utf-8")
    return path


def query(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database_path(settings))
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def customer_mail(n: int, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{n}@example.org"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Boiler {n} does not start"
    msg["Message-ID"] = f"<case-{n}@example.org>"
    msg.set_content(f"Hello, boiler number {n} stopped this morning.\n")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename=f"photo-{n}.bin")
    return msg.as_bytes()


async def ingest_one(settings: Settings, raw: bytes) -> str:
    async with Store(database_path(settings)) as store:
        ingest = Ingest(store, LocalBlobStore(blobs_path(settings)), settings, SystemClock())
        result = await ingest.accept(raw, Envelope("customer@example.org", [SUPPORT]), "smtp")
    return str(result.outcome)


def set_fault(settings: Settings, message: str | None) -> None:
    """A database trigger failing every new intervention: a fault outside our code."""
    conn = sqlite3.connect(database_path(settings), isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS injected_fault")
        if message is not None:
            conn.execute("CREATE TRIGGER injected_fault BEFORE INSERT ON interventions "
                         f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
    finally:
        conn.close()


async def test_quarantine_list_show_and_retry_until_it_works_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mail quarantined by a failure is listed and shown with its reason and headers;
    a retry that fails again keeps it with the new reason; once the cause is gone the
    retry processes it in place (one case, one acknowledgement), and again does nothing."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    settings = load_settings(config)
    await ingest_one(settings, customer_mail(0))          # creates the store
    set_fault(settings, "first fault")
    assert await ingest_one(settings, customer_mail(1)) == "quarantined"
    [(qid,)] = query(settings, "SELECT id FROM inbound WHERE outcome = 'quarantined'")
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["quarantine", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "first fault" in listing
    assert "customer1@example.org" in listing
    assert await asyncio.to_thread(main, ["quarantine", "show", str(qid),
                                          "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "Subject: Boiler 1 does not start" in shown
    assert "first fault" in shown

    set_fault(settings, "second fault")
    assert await asyncio.to_thread(main, ["quarantine", "retry", str(qid),
                                          "--config", str(config)]) == 1
    assert "still quarantined" in capsys.readouterr().out
    assert query(settings, "SELECT outcome, reason LIKE '%second fault%' FROM inbound"
                           " WHERE id = ?", qid) == [("quarantined", 1)]

    set_fault(settings, None)
    assert await asyncio.to_thread(main, ["quarantine", "retry", "--all",
                                          "--config", str(config)]) == 0
    assert "now new_request" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["quarantine", "retry", str(qid),
                                          "--config", str(config)]) == 0
    assert "not quarantined" in capsys.readouterr().out
    assert query(settings, "SELECT outcome, intervention_number IS NOT NULL FROM inbound"
                           " WHERE id = ?", qid) == [("new_request", 1)]
    assert query(settings, "SELECT count(*) FROM interventions") == [(2,)]
    assert query(settings, "SELECT count(*) FROM outbox WHERE recipient ="
                           " 'customer1@example.org'") == [(1,)]
    assert query(settings, "SELECT count(*) FROM inbound") == [(2,)]


async def test_redelivery_of_a_quarantined_mail_then_retry_has_one_effect(
        tmp_path: Path) -> None:
    """A quarantined mail delivered again (other bytes, same Message-ID) is a duplicate
    of the quarantined one; the retry then opens one case."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    settings = load_settings(config)
    await ingest_one(settings, customer_mail(0))
    set_fault(settings, "fault")
    assert await ingest_one(settings, customer_mail(1)) == "quarantined"
    set_fault(settings, None)
    assert await ingest_one(settings, customer_mail(1).replace(b"\n", b"\r\n")) == "duplicate"
    assert await asyncio.to_thread(main, ["quarantine", "retry", "--all",
                                          "--config", str(config)]) == 0
    assert query(settings, "SELECT outcome FROM inbound ORDER BY id") == [
        ("new_request",), ("new_request",)]
    assert query(settings, "SELECT count(*) FROM interventions") == [(2,)]


async def test_quarantine_leaves_an_already_processed_mail_alone(tmp_path: Path) -> None:
    """Quarantining bytes that were already processed (a redelivery whose parse failed
    only this time) keeps the first result instead of overwriting it."""
    settings = load_settings(write_config(tmp_path / "nm.toml", tmp_path / "data"))
    raw = customer_mail(1)
    assert await ingest_one(settings, raw) == "new_request"
    empty = ParsedMail(message_id=None, in_reply_to=(), references=(), subject="",
                       from_addr="", from_name="", to_addrs=(), cc_addrs=(), reply_to=(),
                       date=None, body_text="", body_html=None, attachments=())
    inbound = InboundMail(raw=raw, raw_sha256=sha256_hex(raw), mail=empty, source="smtp",
                          envelope_from=None, envelope_to=(), noise_reason=None,
                          attachments=())
    async with Store(database_path(settings)) as store:
        result = await store.write(partial(quarantine, inbound=inbound, reason="parse failed",
                                           now=SystemClock().now()))
    assert result.outcome == "duplicate"
    assert query(settings, "SELECT outcome, intervention_number FROM inbound") == [
        ("new_request", 1)]


def test_import_mbox_twice_opens_cases_once_and_acknowledges_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An mbox goes through ingest as history: cases open, no acknowledgement is queued,
    a second run finds only duplicates; the progress bar reports count and rate."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    box_path = tmp_path / "old support.mbox"
    box = mailbox.mbox(box_path)
    for name in ("01", "03", "05", "21", "27", "28"):
        box.add(load(name))
    for n in range(5):
        box.add(customer_mail(n, attachment=bytes([n]) * 100))
    box.close()

    assert main(["import", "mbox", str(box_path), "--config", str(config)]) == 0
    first = capsys.readouterr()
    assert "11/11 100%" in first.err
    assert "mail/s" in first.err
    settings = load_settings(config)
    sources = query(settings, "SELECT DISTINCT source FROM inbound")
    assert sources == [("import:old support.mbox",)]
    assert query(settings, "SELECT count(*) FROM inbound") == [(11,)]
    opened = query(settings, "SELECT count(*) FROM interventions")[0][0]
    assert isinstance(opened, int)
    assert opened >= 5
    assert query(settings, "SELECT count(*) FROM outbox") == [(0,)]
    assert query(settings, "SELECT count(*) FROM messages WHERE kind = 'acknowledgement'") == [
        (0,)]

    assert main(["import", "mbox", str(box_path), "--source", "again",
                 "--config", str(config)]) == 0
    assert "11 duplicate" in capsys.readouterr().out
    assert query(settings, "SELECT count(*) FROM inbound") == [(11,)]
    assert query(settings, "SELECT count(*) FROM interventions") == [(opened,)]


def test_progress_bar_draws_count_total_and_rate() -> None:
    """The progress line shows count/total, percentage and rate."""
    out = io.StringIO()
    bar = ProgressBar(4, stream=out, plain_every_s=0.0)
    for _ in range(4):
        bar.advance()
    bar.finish()
    last = out.getvalue().splitlines()[-1]
    assert "4/4 100%" in last
    assert "mail/s" in last


async def test_backup_while_the_daemon_writes_then_restore_has_mails_and_attachments(
        tmp_path: Path, relay: Controller) -> None:
    """A backup taken while mails with attachments stream in is consistent; restored into a
    new data dir it holds every mail acknowledged before it began, with attachment bytes;
    a second backup into the same place copies only the new attachment files."""
    settings = make_settings(tmp_path / "live", relay_port=relay.port)
    config = write_config(tmp_path / "nm.toml", settings.storage.data_dir)
    payloads = {n: os.urandom(3000 + n) for n in range(40)}
    acked: list[int] = []
    enough = asyncio.Event()
    async with running_daemon(settings) as daemon:

        async def sender(start: int) -> None:
            for n in range(start, 40, 4):
                code, _ = await daemon.send(customer_mail(n, payloads[n]),
                                            sender=f"customer{n}@example.org")
                assert code == 250
                acked.append(n)
                if len(acked) >= 12:
                    enough.set()

        senders = [asyncio.create_task(sender(s)) for s in range(4)]
        await enough.wait()
        before = list(acked)
        dest = tmp_path / "backup"
        assert await asyncio.to_thread(main, ["backup", str(dest), "--config", str(config)]) == 0
        await asyncio.gather(*senders)
        first_manifest = json.loads((dest / MANIFEST_NAME).read_text("utf-8"))
        assert await asyncio.to_thread(main, ["backup", str(dest), "--config", str(config)]) == 0
    manifest = json.loads((dest / MANIFEST_NAME).read_text("utf-8"))
    assert manifest["blobs"]["files"] == 40
    assert first_manifest["blobs"]["files"] >= len(before)
    assert (dest / "nexusmail.toml").is_file()
    assert (dest / "reply-signing.key").stat().st_mode & 0o077 == 0

    restored = load_settings(write_config(tmp_path / "r.toml", tmp_path / "restored"))
    assert await asyncio.to_thread(main, ["restore", str(dest), "--config",
                                          str(tmp_path / "r.toml")]) == 0
    ids = {r[0] for r in query(restored, "SELECT message_id FROM inbound")}
    assert {f"case-{n}@example.org" for n in range(40)} <= ids
    blobs = LocalBlobStore(blobs_path(restored))
    for n, data in payloads.items():
        [(digest,)] = query(restored, "SELECT a.sha256 FROM attachments a JOIN messages m"
                                      " ON m.id = a.message_id WHERE m.message_id = ?",
                            f"case-{n}@example.org")
        assert blobs.get(str(digest)) == data
    assert query(restored, "SELECT count(*) FROM interventions") == [(40,)]


async def test_backup_snapshot_taken_mid_stream_restores_consistently(
        tmp_path: Path, relay: Controller) -> None:
    """The backup taken while mails stream in restores to a store holding every mail
    acknowledged before it began, whose attachments' files are all there."""
    settings = make_settings(tmp_path / "live", relay_port=relay.port)
    config = write_config(tmp_path / "nm.toml", settings.storage.data_dir)
    payloads = {n: os.urandom(2000 + n) for n in range(24)}
    acked: list[int] = []
    enough = asyncio.Event()
    dest = tmp_path / "backup"
    async with running_daemon(settings) as daemon:

        async def sender(start: int) -> None:
            for n in range(start, 24, 3):
                code, _ = await daemon.send(customer_mail(n, payloads[n]),
                                            sender=f"customer{n}@example.org")
                assert code == 250
                acked.append(n)
                if len(acked) >= 6:
                    enough.set()

        senders = [asyncio.create_task(sender(s)) for s in range(3)]
        await enough.wait()
        before = list(acked)
        assert await asyncio.to_thread(main, ["backup", str(dest), "--config", str(config)]) == 0
        await asyncio.gather(*senders)
    restored = load_settings(write_config(tmp_path / "r.toml", tmp_path / "restored"))
    assert await asyncio.to_thread(main, ["restore", str(dest), "--config",
                                          str(tmp_path / "r.toml")]) == 0
    ids = {r[0] for r in query(restored, "SELECT message_id FROM inbound")}
    assert {f"case-{n}@example.org" for n in before} <= ids
    blobs = LocalBlobStore(blobs_path(restored))
    for digest, in query(restored, "SELECT sha256 FROM attachments"):
        assert blobs.path_for(str(digest)).is_file()
    assert query(restored, "PRAGMA integrity_check") == [("ok",)]


def test_restore_refuses_an_occupied_data_dir_and_a_damaged_backup(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Restore refuses a data dir holding a store unless --force, and a backup whose
    database no longer matches its manifest."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    settings = load_settings(config)
    assert asyncio.run(ingest_one(settings, customer_mail(1, b"x" * 50))) == "new_request"
    dest = tmp_path / "backup"
    assert main(["backup", str(dest), "--config", str(config)]) == 0
    assert main(["restore", str(dest), "--config", str(config)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["restore", str(dest), "--force", "--config", str(config)]) == 0
    assert query(settings, "SELECT count(*) FROM interventions") == [(1,)]

    with (dest / "nexusmail.sqlite3").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"damage")
    other = write_config(tmp_path / "o.toml", tmp_path / "other")
    assert main(["restore", str(dest), "--config", str(other)]) == 1
    assert "does not match" in capsys.readouterr().err
    assert not (tmp_path / "other" / "nexusmail.sqlite3").exists()


def test_backup_and_restored_data_dirs_are_private(tmp_path: Path) -> None:
    """A backup holds every customer's mail: the directory it creates, and a data dir a
    restore creates, are readable by their owner only, whatever the umask."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    settings = load_settings(config)
    assert asyncio.run(ingest_one(settings, customer_mail(1, b"x" * 50))) == "new_request"
    dest = tmp_path / "backup"
    assert main(["backup", str(dest), "--config", str(config)]) == 0
    assert dest.stat().st_mode & 0o777 == 0o700
    other = write_config(tmp_path / "o.toml", tmp_path / "restored")
    assert main(["restore", str(dest), "--config", str(other)]) == 0
    assert (tmp_path / "restored").stat().st_mode & 0o777 == 0o700


def dated_mail(n: int, date: str, *, in_reply_to: int | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "ana@example.org"
    msg["To"] = SUPPORT
    msg["Subject"] = "Boiler" if in_reply_to is None else "Re: Boiler"
    msg["Message-ID"] = f"<old-{n}@example.org>"
    if in_reply_to is not None:
        msg["In-Reply-To"] = f"<old-{in_reply_to}@example.org>"
    msg["Date"] = date
    msg.set_content(f"Mail {n} about the boiler.\n")
    return msg.as_bytes()


def test_import_mbox_keeps_each_mails_date_and_closes_old_cases_on_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Imported mail is dated by its own Date: (a future one by the import's time), and
    --closed closes each case the import opened on the date of its last mail."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    box_path = tmp_path / "2019.mbox"
    box = mailbox.mbox(box_path)
    box.add(dated_mail(1, "Mon, 04 Mar 2019 09:15:00 +0100"))
    box.add(dated_mail(2, "Tue, 05 Mar 2019 17:40:00 +0100", in_reply_to=1))
    box.add(dated_mail(3, "Fri, 01 Jan 2100 10:00:00 +0000"))
    box.close()

    assert main(["import", "mbox", str(box_path), "--closed", "--config", str(config)]) == 0
    assert "2 closed" in capsys.readouterr().out
    settings = load_settings(config)
    rows = query(settings, "SELECT number, created_at, status, closed_at FROM interventions"
                           " ORDER BY number")
    assert rows[0] == (1, "2019-03-04T08:15:00+00:00", "closed", "2019-03-05T16:40:00+00:00")
    _, created_at, status, _ = rows[1]
    assert str(created_at) < "2100"  # never dated in the future
    assert status == "closed"
    assert query(settings, "SELECT created_at FROM messages WHERE intervention_number = 1"
                           " AND kind = 'customer_mail' ORDER BY id") == [
        ("2019-03-04T08:15:00+00:00",), ("2019-03-05T16:40:00+00:00",)]


def test_import_of_a_file_that_is_not_an_mbox_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A single saved mail is not an mbox: the import fails (exit 1) saying so, instead
    of reporting "0 mails", and creates no store."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "data")
    eml = tmp_path / "one.eml"
    eml.write_bytes(customer_mail(1))
    assert main(["import", "mbox", str(eml), "--config", str(config)]) == 1
    assert "is not an mbox file" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv", [
    ["employee", "list"], ["token", "list"], ["intervention", "show", "1"],
    ["quarantine", "list"], ["schedule", "list"], ["operator", "list"],
])
def test_read_only_commands_outside_the_data_dir_refuse_and_create_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Run where there is no store, a command that only reads says which data dir it
    looked in and exits 1, leaving no empty database behind."""
    config = write_config(tmp_path / "nm.toml", tmp_path / "nowhere")
    assert main([*argv, "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "there is no nexusmail database" in err
    assert str(tmp_path / "nowhere") in err
    assert not (tmp_path / "nowhere" / "nexusmail.sqlite3").exists()
