"""Crash cycles against the real `nexusmail run` process: load, SIGKILL, restart, verify.

Used by tests/integration/test_crash_safety.py (a few cycles) and bench/crash_safety.py
(many). One run:

- a relay sink (aiosmtpd, in this process) records every mail the outbox sends; it
  takes the mail, then may hold its `250` for `sink_delay_s`, so a kill can land after
  the relay has the mail but before the daemon knows (the at-least-once window);
- `connections` SMTP clients send mails with unique Message-IDs from unique senders
  (so each opens an intervention and earns an acknowledgement); a mail that gets a 4xx
  or a connection error is sent again after the restart, as a real MTA would;
- the daemon's process group is SIGKILLed after a random delay (or, with
  `kill_mid_send`, while the sink holds a mail), the database is checked for
  half-stored mail, and the daemon is restarted on the same data dir;
- after the last cycle a clean run lets the clients finish and the outbox drain,
  then SIGTERM; `verify` checks every promise (durable before 250, idempotent
  ingest, transactional outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_sink import CaptureHandler, free_port, start_sink

SUPPORT = "support@firm.test"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 15.0


# -- the relay sink ------------------------------------------------------------------


class SlowSink(CaptureHandler):
    """A CaptureHandler that takes the mail first and answers `250` `delay_s` later.

    `holding` counts mails taken whose 250 is not written yet: a kill while it is
    above zero lands mid-send (the relay has the mail, the daemon never hears so).
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.holding = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        status = await super().handle_DATA(server, session, envelope)
        if self.delay_s <= 0:
            return status
        self.holding += 1
        try:
            await asyncio.sleep(self.delay_s)
        finally:  # cancelled when the daemon's connection drops
            self.holding -= 1
        return status


# -- the daemon process -------------------------------------------------------------


def write_config(path: Path, data_dir: Path, *, smtp_port: int, relay_port: int,
                 parse_processes: int = 0, database_url: str = "",
                 lease_s: float = 2.0) -> Path:
    """A TOML config for a daemon relaying to 127.0.0.1:relay_port with quick retries,
    its store in `data_dir` (SQLite) or at `database_url` (PostgreSQL)."""
    path.write_text(
        f'[storage]\ndata_dir = "{data_dir}"\n'
        + (f'database_url = "{database_url}"\n' if database_url else "") +
        f"[smtp]\nport = {smtp_port}\n"
        "[web]\nport = 0\n"
        f'[mail]\nsupport_addresses = ["{SUPPORT}"]\ncompany_name = "Firm"\n'
        "max_acks_per_hour = 1000000\n"
        # Thousands of customers of one domain in minutes: not a loop here.
        "max_acks_per_hour_per_domain = 1000000\nmax_acks_per_hour_total = 1000000\n"
        "mute_domain_after_new_cases = 0\n"
        f'[outbound]\nhost = "127.0.0.1"\nport = {relay_port}\nretry_base_s = 0.2\n'
        "retry_max_s = 1.0\npoll_interval_s = 0.2\ntimeout_s = 10.0\nmax_attempts = 1000\n"
        # The mails a killed daemon claimed wait out its lease before the restarted one
        # (a new incarnation) may send them: short, so the cycles stay quick.
        f"lease_s = {lease_s}\n"
        f"[ingest]\nparse_processes = {parse_processes}\n"
    )
    return path


class DaemonProcess:
    """`python -m nexusmail --config F run` in its own process group; logs appended to
    one file across restarts."""

    def __init__(self, config: Path, smtp_port: int, log_path: Path) -> None:
        self.config = config
        self.smtp_port = smtp_port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.start_s: list[float] = []

    @property
    def running(self) -> bool:
        return self._proc is not None

    async def start(self) -> None:
        """Start it and wait for the SMTP greeting."""
        assert self._proc is None
        began = time.monotonic()
        self._proc = self._spawn()
        self.starts += 1
        deadline = began + READY_TIMEOUT_S
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.smtp_port)
                greeting = await asyncio.wait_for(reader.readline(), 2)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                if greeting.startswith(b"220"):
                    self.start_s.append(time.monotonic() - began)
                    return
            except (OSError, TimeoutError):
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                await self.kill()
                raise RuntimeError("the daemon did not start; log: " + str(self.log_path))
            await asyncio.sleep(0.02)

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
        self._log = self.log_path.open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "nexusmail", "--config", str(self.config), "run"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    async def kill(self) -> None:
        """SIGKILL the whole process group (parse workers too) and wait until it is gone."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        await asyncio.to_thread(_wait_group_gone, self._proc)
        self._closed()

    async def terminate(self) -> int:
        """SIGTERM: the daemon drains and stops in order; return its exit code."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self._proc.wait, STOP_TIMEOUT_S)
        finally:
            await self.kill()  # anything left of the group
        return code

    def _closed(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines with this event (a line cut by SIGKILL is skipped)."""
        found = []
        for line in self.log_path.read_bytes().splitlines():
            if name.encode() not in line:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found


def _wait_group_gone(proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        proc.poll()  # reap the leader: a zombie keeps the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {proc.pid} survived SIGKILL")
        time.sleep(0.01)
    proc.wait(STOP_TIMEOUT_S)


# -- the load -----------------------------------------------------------------------


@dataclass(frozen=True)
class TestMail:
    index: int
    sender: str
    message_id: str
    raw: bytes
    has_attachment: bool


def make_mail(index: int, rng: random.Random) -> TestMail:
    """Mostly small mails, some long bodies (~10-60 KB), some with an attachment."""
    kind = rng.random()
    if kind < 0.7:
        return build_mail(index)
    if kind < 0.9:
        return build_mail(index, body_lines=rng.randint(300, 1700))
    return build_mail(index, attachment=rng.randbytes(rng.randint(20_000, 80_000)))


def build_mail(index: int, *, body_lines: int = 0, attachment: bytes = b"") -> TestMail:
    """A new request from its own customer (customer<index>@example.org)."""
    sender = f"customer{index}@example.org"
    message_id = f"crash-{index}@example.org"
    msg = EmailMessage()
    msg["From"] = f"Customer {index} <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Request {index}: the printer is broken"
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content("The printer in room 2 does not print.\n"
                    + "Details of the fault, line by line.\n" * body_lines)
    if attachment:
        msg.add_attachment(attachment, maintype="image", subtype="jpeg",
                           filename=f"photo{index}.jpg")
    return TestMail(index, sender, message_id, msg.as_bytes(), bool(attachment))


async def send_once(smtp_port: int, mail: TestMail) -> int:
    """Send one mail on a new connection; return the reply code of DATA (or RCPT)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=CLIENT_TIMEOUT_S)
    await client.connect()
    try:
        await client.sendmail(mail.sender, [SUPPORT], mail.raw)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return exc.recipients[0].code
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()
    return 250


@dataclass
class LoadStats:
    acked: dict[str, int] = field(default_factory=dict)   # Message-ID -> 250s received
    errors_by_phase: Counter[str] = field(default_factory=Counter)
    temporary_replies: int = 0      # 4xx answers (none expected without storage faults)
    resent: set[str] = field(default_factory=set)  # Message-IDs sent more than once
    acked_at: list[float] = field(default_factory=list)      # time.monotonic() of each 250
    temporary_at: list[float] = field(default_factory=list)  # and of each 4xx


class Load:
    """`connections` SMTP clients sending mails one after another; a mail without a
    250 is retried (after the daemon is up again) until it gets one."""

    def __init__(self, smtp_port: int, connections: int, rng: random.Random, *,
                 max_mails: int | None = None, pace_s: float = 0.0,
                 pause_after_4xx_s: float = 0.05) -> None:
        self.smtp_port = smtp_port
        self.connections = connections
        self.rng = rng
        self.max_mails = max_mails
        self.pace_s = pace_s
        # A real MTA waits before it retries a 4xx; a tight loop would only burn CPU.
        self.pause_after_4xx_s = pause_after_4xx_s
        self.up = asyncio.Event()      # cleared just before a kill, set after the restart
        self.closing = False           # no new mails; finish the ones in hand
        self.mails: list[TestMail] = []
        self.in_data = 0               # clients between DATA and its reply right now
        self.stats = LoadStats()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.connections)]

    async def finish(self) -> None:
        """Stop taking new mails; return when every mail taken got its 250."""
        self.closing = True
        await asyncio.gather(*self._tasks)

    async def cancel(self) -> None:
        """Stop every client now. Cancelled again until each has ended: Python 3.11's
        asyncio.wait_for (inside aiosmtplib) can swallow a cancellation that meets an
        answer arriving at the same moment, and a client that lives on retries its mail
        for ever, which hung a test's teardown."""
        self.closing = True
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

    def _next_mail(self) -> TestMail | None:
        if self.closing or (self.max_mails is not None and len(self.mails) >= self.max_mails):
            return None
        mail = make_mail(len(self.mails), self.rng)
        self.mails.append(mail)
        return mail

    async def _client(self, number: int) -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while (mail := self._next_mail()) is not None:
                attempts = 0
                while True:
                    await self.up.wait()
                    if attempts:
                        self.stats.resent.add(mail.message_id)
                    attempts += 1
                    try:
                        if client is None:
                            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port,
                                                     timeout=CLIENT_TIMEOUT_S)
                            await client.connect()
                        if await self._send(client, mail):
                            break
                    except (aiosmtplib.SMTPException, OSError):
                        client = None  # the daemon is gone: reconnect after the restart
                        await asyncio.sleep(0.01)
                if self.pace_s:
                    await asyncio.sleep(self.pace_s)
        finally:
            if client is not None and client.is_connected:
                client.close()

    async def _send(self, client: aiosmtplib.SMTP, mail: TestMail) -> bool:
        """One MAIL/RCPT/DATA; True on 250, False on a 4xx (try again)."""
        phase = "mail"
        try:
            await client.mail(mail.sender)
            phase = "rcpt"
            await client.rcpt(SUPPORT)
            phase = "data"
            self.in_data += 1
            try:
                await client.data(mail.raw)
            finally:
                self.in_data -= 1
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                self.stats.temporary_replies += 1
                self.stats.temporary_at.append(time.monotonic())
                await client.rset()
                await asyncio.sleep(self.pause_after_4xx_s)
                return False
            raise
        except (aiosmtplib.SMTPException, OSError):
            self.stats.errors_by_phase[phase] += 1
            raise
        self.stats.acked[mail.message_id] = self.stats.acked.get(mail.message_id, 0) + 1
        self.stats.acked_at.append(time.monotonic())
        return True


# -- consistency of the database ----------------------------------------------------

# Each query counts rows that break "a mail is stored whole or not at all". Counts per
# key come from GROUP BY subqueries (linear), not correlated subqueries on columns
# without an index (quadratic: minutes after a few thousand mails).
HALF_STORED_CHECKS = {
    "inbound row without its raw bytes":
        "SELECT count(*) FROM inbound i WHERE NOT EXISTS"
        " (SELECT 1 FROM raw_messages r WHERE r.sha256 = i.raw_sha256)",
    "inbound row not carried through (unmatched placeholder)":
        "SELECT count(*) FROM inbound WHERE outcome != 'new_request'",
    "new request without its intervention":
        "SELECT count(*) FROM inbound i WHERE i.intervention_number IS NULL OR NOT EXISTS"
        " (SELECT 1 FROM interventions v WHERE v.number = i.intervention_number)",
    "inbound row without exactly one thread message":
        "SELECT count(*) FROM inbound i LEFT JOIN (SELECT inbound_id, count(*) AS n"
        " FROM messages WHERE inbound_id IS NOT NULL GROUP BY inbound_id) m"
        " ON m.inbound_id = i.id WHERE coalesce(m.n, 0) != 1",
    "intervention without exactly one inbound row":
        "SELECT count(*) FROM interventions v LEFT JOIN (SELECT intervention_number, count(*)"
        " AS n FROM inbound GROUP BY intervention_number) i"
        " ON i.intervention_number = v.number WHERE coalesce(i.n, 0) != 1",
    "intervention without exactly one acknowledgement in the outbox":
        "SELECT count(*) FROM interventions v LEFT JOIN (SELECT intervention_number, count(*)"
        " AS n FROM outbox WHERE kind = 'acknowledgement' GROUP BY intervention_number) o"
        " ON o.intervention_number = v.number WHERE coalesce(o.n, 0) != 1",
    "outbox row without its intervention":
        "SELECT count(*) FROM outbox o WHERE NOT EXISTS"
        " (SELECT 1 FROM interventions v WHERE v.number = o.intervention_number)",
    "customer message without an inbound row":
        "SELECT count(*) FROM messages m WHERE m.kind = 'customer_mail' AND NOT EXISTS"
        " (SELECT 1 FROM inbound i WHERE i.id = m.inbound_id)",
    "Message-ID stored more than once":
        "SELECT count(*) FROM (SELECT message_id FROM inbound GROUP BY message_id"
        " HAVING count(*) > 1) AS doubled",
}


def read_db(data_dir: Path, database_url: str = "") -> Any:
    """A connection that reads the daemon's store: its SQLite file (read-only), or its
    PostgreSQL database (autocommit: each query sees the latest commit). Both answer
    `execute(sql)` with a cursor to iterate or `fetchone()`."""
    if database_url:
        import psycopg

        return psycopg.connect(database_url, autocommit=True, connect_timeout=10)
    conn = sqlite3.connect(f"file:{data_dir / 'nexusmail.sqlite3'}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def half_stored(data_dir: Path, database_url: str = "") -> list[str]:
    """What is stored only in part (empty: every mail is whole), blobs included."""
    if not database_url and not (data_dir / "nexusmail.sqlite3").exists():
        return []
    problems = []
    with contextlib.closing(read_db(data_dir, database_url)) as conn:
        for name, sql in HALF_STORED_CHECKS.items():
            count = conn.execute(sql).fetchone()[0]
            if count:
                problems.append(f"{name}: {count}")
        for sha256, size in conn.execute("SELECT sha256, size FROM attachments"):
            blob = data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256
            if not blob.exists() or blob.stat().st_size != size:
                problems.append(f"attachment blob missing or short: {sha256}")
    return problems


def stored_message_ids(data_dir: Path, database_url: str = "") -> set[str]:
    with contextlib.closing(read_db(data_dir, database_url)) as conn:
        return {row[0] for row in conn.execute("SELECT message_id FROM inbound")}


# -- one run ------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashPlan:
    cycles: int = 5
    connections: int = 4
    kill_after_s: tuple[float, float] = (0.2, 0.8)   # random delay from ready to SIGKILL
    kill_mid_send: bool = False   # kill only while the sink holds a mail (then + delay)
    sink_delay_s: float = 0.0
    max_mails: int | None = None
    pace_s: float = 0.0
    parse_processes: int = 0
    seed: int = 1
    database_url: str = ""   # the daemon's PostgreSQL database; empty: SQLite in the data dir


@dataclass
class CrashReport:
    plan: CrashPlan
    mails: int = 0
    kills: int = 0
    kills_mid_data: int = 0          # a client was inside DATA at the kill
    kills_mid_send: int = 0          # the sink held a mail it had taken, 250 not yet sent
    client_errors: dict[str, int] = field(default_factory=dict)
    mails_resent: int = 0            # mails the clients had to send again
    stored_without_250: int = 0      # committed, the 250 lost to the kill; resent = duplicate
    duplicates_acked_at_ingest: int = 0
    acks_expected: int = 0
    acks_received: int = 0           # at the sink, copies included
    ack_duplicates: int = 0          # copies beyond the first (same Message-ID)
    resent_ack_ids: int = 0          # acknowledgements that arrived more than once
    start_s_mean: float = 0.0
    duration_s: float = 0.0
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "plan"}
        data["plan"] = self.plan.__dict__
        return data


async def run_crash_cycles(plan: CrashPlan, workdir: Path) -> CrashReport:
    """Run the plan in `workdir` (data dir, config, log); return what happened."""
    began = time.monotonic()
    rng = random.Random(plan.seed)
    report = CrashReport(plan)
    data_dir = workdir / "data"
    sink = SlowSink(plan.sink_delay_s)
    relay = start_sink(sink)
    smtp_port = free_port()
    config = write_config(workdir / "nexusmail.toml", data_dir, smtp_port=smtp_port,
                          relay_port=relay.port, parse_processes=plan.parse_processes,
                          database_url=plan.database_url)
    daemon = DaemonProcess(config, smtp_port, workdir / "daemon.log")
    load = Load(smtp_port, plan.connections, rng, max_mails=plan.max_mails,
                pace_s=plan.pace_s)
    stored_unacked: set[str] = set()
    try:
        await daemon.start()
        load.up.set()
        load.start()
        for _cycle in range(plan.cycles):
            if plan.kill_mid_send:
                await _until(lambda: sink.holding > 0, what="a mail held by the sink")
            await asyncio.sleep(rng.uniform(*plan.kill_after_s))
            load.up.clear()
            report.kills_mid_data += load.in_data > 0
            held = sink.holding
            await daemon.kill()
            report.kills += 1
            report.kills_mid_send += held > 0
            await asyncio.sleep(0.02)  # let the clients see their connections drop
            found = await asyncio.to_thread(half_stored, data_dir, plan.database_url)
            report.problems += [f"after kill {report.kills}: {p}" for p in found]
            acked = set(load.stats.acked)
            stored_unacked |= await asyncio.to_thread(
                stored_message_ids, data_dir, plan.database_url) - acked
            await daemon.start()
            load.up.set()
        await asyncio.wait_for(load.finish(), DRAIN_TIMEOUT_S)
        await wait_outbox_drained(data_dir, plan.database_url)
        await _until(lambda: sink.holding == 0, what="the sink's last 250")
        report.exit_code = await daemon.terminate()
    finally:
        await load.cancel()
        await daemon.kill()
        await asyncio.to_thread(relay.stop)
    report.duration_s = round(time.monotonic() - began, 1)
    report.start_s_mean = round(sum(daemon.start_s) / len(daemon.start_s), 3)
    verify(report, load, sink, daemon, data_dir, stored_unacked)
    return report


def verify(report: CrashReport, load: Load, sink: SlowSink, daemon: DaemonProcess,
           data_dir: Path, stored_unacked: set[str]) -> None:
    """Check the run's end state against every promise; add what breaks one to
    `report.problems` (and fill in the report's counts)."""
    problems = report.problems
    mails = {mail.message_id: mail for mail in load.mails}
    report.mails = len(mails)
    report.client_errors = dict(load.stats.errors_by_phase)
    report.mails_resent = len(load.stats.resent)
    # Committed, but the kill came before the client read its 250: resent, then a duplicate.
    report.stored_without_250 = len(stored_unacked & load.stats.resent)
    duplicates = [e for e in daemon.events("mail.accepted") if e.get("outcome") == "duplicate"]
    report.duplicates_acked_at_ingest = len(duplicates)
    # Every mail got exactly one 250 at the client, in the end.
    if set(load.stats.acked) != set(mails) or any(n != 1 for n in load.stats.acked.values()):
        problems.append("not every mail got exactly one 250 at the client")
    if report.exit_code != 0:
        problems.append(f"the clean stop exited with {report.exit_code}")
    problems.extend(half_stored(data_dir, report.plan.database_url))
    with contextlib.closing(read_db(data_dir, report.plan.database_url)) as conn:
        stored = Counter(r[0] for r in conn.execute("SELECT message_id FROM inbound"))
        outbox = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT message_id, recipient, status FROM outbox WHERE kind = 'acknowledgement'")}
        with_attachment = {r[0] for r in conn.execute(
            "SELECT i.message_id FROM inbound i JOIN messages m ON m.inbound_id = i.id"
            " JOIN attachments a ON a.message_id = m.id")}
    if stored != Counter(set(mails)):
        missing = set(mails) - set(stored)
        extra = set(stored) - set(mails)
        problems.append(f"stored mails differ: {len(missing)} missing, {len(extra)} unknown, "
                        f"{sum(1 for n in stored.values() if n > 1)} doubled")
    if with_attachment != {m for m, mail in mails.items() if mail.has_attachment}:
        problems.append("attachments do not match the mails that carried one")
    # The acknowledgements: every one sent, each under the one Message-ID it was given.
    report.acks_expected = len(outbox)
    if report.acks_expected != len(mails):
        problems.append(f"{report.acks_expected} acknowledgements queued for {len(mails)} mails")
    unsent = [mid for mid, (_, status) in outbox.items() if status != "sent"]
    if unsent:
        problems.append(f"{len(unsent)} acknowledgements not marked sent")
    received = Counter(captured.message_id for captured in sink.messages)
    report.acks_received = sum(received.values())
    report.ack_duplicates = sum(n - 1 for n in received.values())
    report.resent_ack_ids = sum(1 for n in received.values() if n > 1)
    if set(received) != set(outbox):
        problems.append(f"sink Message-IDs differ from the outbox: "
                        f"{len(set(outbox) - set(received))} never arrived, "
                        f"{len(set(received) - set(outbox))} unknown")
    ids_per_recipient: dict[str, set[str]] = {}
    for captured in sink.messages:
        for rcpt in captured.rcpt_tos:
            ids_per_recipient.setdefault(rcpt, set()).add(captured.message_id)
    split = [r for r, ids in ids_per_recipient.items() if len(ids) > 1]
    if split:
        problems.append(f"{len(split)} customers got acknowledgements with different "
                        "Message-IDs")
    for mid, (recipient, _) in outbox.items():
        if mid in received and ids_per_recipient.get(recipient) != {mid}:
            problems.append(f"acknowledgement {mid} did not reach {recipient}")
            break


async def wait_outbox_drained(data_dir: Path, database_url: str = "") -> None:
    """Until no outbox row is pending (sent or failed, each marked in the database)."""
    await _until(lambda: _outbox_drained(data_dir, database_url),
                 what="the outbox to drain", timeout_s=DRAIN_TIMEOUT_S)


def _outbox_drained(data_dir: Path, database_url: str = "") -> bool:
    with contextlib.closing(read_db(data_dir, database_url)) as conn:
        pending = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return bool(pending.fetchone()[0] == 0)


async def _until(check: Any, *, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- a small filesystem that can fill up --------------------------------------------


@contextlib.contextmanager
def mounted_tmpfs(size: str = "8m") -> Iterator[Path]:
    """A fresh tmpfs of `size` (root only); unmounted and removed on the way out."""
    mount_point = Path(tempfile.mkdtemp(prefix="nm-tmpfs-"))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(mount_point)], check=True, capture_output=True)
        try:
            yield mount_point
        finally:
            _unmount(mount_point)
    finally:
        mount_point.rmdir()


def _unmount(mount_point: Path) -> None:
    for _ in range(50):  # a process we stopped may hold a file for a moment
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(mount_point)], check=True, capture_output=True)


def fill_up(folder: Path) -> Path:
    """Write a file in `folder` until the filesystem is full; return it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 12):  # big writes, then the last pages
            with contextlib.suppress(OSError):  # ENOSPC: full
                while out.write(b"\0" * size):
                    pass
    return filler


@contextlib.asynccontextmanager
async def relay_sink(delay_s: float = 0.0) -> AsyncIterator[tuple[int, SlowSink]]:
    """A started SlowSink: (port, handler); stopped on the way out."""
    sink = SlowSink(delay_s)
    relay = start_sink(sink)
    try:
        yield relay.port, sink
    finally:
        await asyncio.to_thread(relay.stop)
