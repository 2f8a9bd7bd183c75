"""A cluster under chaos: several `nexusmail run` processes on one PostgreSQL database
and one S3 blob store, mail sent round-robin across them, daemons SIGKILLed and
restarted mid-run, then every promise checked.

Used by tests/integration/test_cluster_chaos.py (a few hundred mails, one kill) and
bench/cluster_chaos.py (many mails, many kills). One run:

- each daemon has its own data dir, SMTP port and config, and the same database URL,
  `[blobs]` (an s3:// bucket) and `[replies] secret_keys`: one firm, several hosts;
- one relay sink (aiosmtpd, in this process) takes every mail the outboxes send and
  holds its `250` a moment, so a kill can land after the relay has a mail but before
  the daemon marked it sent (the at-least-once window);
- a fixed corpus (some mails with an attachment) is sent by `connections` clients, each
  mail to the next daemon in turn; a 4xx or a dropped connection sends it again to the
  next daemon after a pause, as an MTA with several MX hosts would;
- after a share of the corpus is in, one daemon is SIGKILLed (process group, parse
  workers too) while the relay holds a mail if it can, kept down a moment, then
  restarted on its own data dir: it releases what its dead self held;
- at the end the outboxes drain, every daemon gets SIGTERM, and `verify` checks the
  database, the bucket and what the relay got.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from crash_cycles import (
    HALF_STORED_CHECKS,
    SUPPORT,
    DaemonProcess,
    SlowSink,
    TestMail,
    build_mail,
    make_mail,
    read_db,
    wait_outbox_drained,
    write_config,
)
from dovecot_server import ANY_USER_PASSWORD, Dovecot, new_user
from s3_server import S3Server
from smtp_sink import free_port, start_sink

from nexusmail.blobs.s3 import S3BlobStore
from nexusmail.service.predecessors import DAEMONS_DIR
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.recurrence import Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule

# The checks of mail stored whole look only at the cases a mail opened, not at the ones
# the schedules opened (no inbound row, no acknowledgement).
MAIL_CASES = "FROM (SELECT * FROM interventions WHERE source <> 'schedule') v"
BLOB_PREFIX = "blobs"
REPLY_KEY = "chaos-cluster-reply-key-" + "k" * 40  # shared by every daemon: one firm
# How many mails one daemon's outbox can have in the relay's hands at once: a kill can
# leave at most that many sent-but-unmarked, each then sent again by its successor.
OUTBOX_IN_FLIGHT = 4
SCHEDULE_ZONE = "Europe/Rome"
IMAP_ACCOUNT = "support"
CLIENT_TIMEOUT_S = 30.0   # generous: a loaded machine is slow, not broken
LOAD_TIMEOUT_S = 240.0
RETRY_PAUSE_S = 0.1


@dataclass(frozen=True)
class ChaosPlan:
    mails: int = 300
    daemons: int = 3
    connections: int = 6
    kills: int = 1
    down_s: float = 1.0          # how long a killed daemon stays down
    sink_delay_s: float = 0.05   # the relay holds each 250 this long
    lease_s: float = 2.0
    attachment_share: float = 0.2
    schedules: int = 0           # due when the daemons start: they race to open them
    imap_mails: int = 0          # appended to a Dovecot folder all daemons collect
    seed: int = 7


@dataclass
class ChaosReport:
    plan: ChaosPlan
    mails: int = 0
    with_attachment: int = 0
    schedules_opened: int = 0
    imap_collected: int = 0
    gc_output: str = ""            # what `nexusmail blobs gc --grace 0s` said at the end
    orphan_objects: int = 0        # objects in the bucket no row names, after that gc
    checkpoint_reads: int = 0      # samples of the IMAP checkpoint taken during the run
    kills: int = 0
    kills_mid_send: int = 0        # the relay held a mail at the kill
    attempts: int = 0              # SMTP transactions, retries included
    temporary_replies: int = 0     # 4xx answers
    dropped: int = 0               # connections refused or cut
    mails_resent: int = 0
    acks_expected: int = 0
    acks_received: int = 0
    ack_duplicates: int = 0        # copies beyond the first (same Message-ID)
    per_daemon_mails: dict[str, int] = field(default_factory=dict)
    takeover_s: list[float] = field(default_factory=list)  # restart until its claims sent
    load_s: float = 0.0            # first mail to last 250
    mails_per_s: float = 0.0
    daemon_cpu_ms_per_mail: float = 0.0  # every daemon process, the killed ones too
    duration_s: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "plan"}
        data["plan"] = self.plan.__dict__
        return data


def write_cluster_config(workdir: Path, name: str, *, database_url: str, relay_port: int,
                         blobs: dict[str, Any], lease_s: float,
                         imap: tuple[Dovecot, str] | None = None) -> DaemonProcess:
    """One daemon of the cluster: its own data dir and SMTP port, the shared rest."""
    smtp_port = free_port()
    config = write_config(workdir / f"{name}.toml", workdir / name, smtp_port=smtp_port,
                          relay_port=relay_port, database_url=database_url, lease_s=lease_s)
    shared = "[blobs]\n" + "".join(f'{key} = "{value}"\n' for key, value in blobs.items())
    shared += f'[replies]\nsecret_keys = ["{REPLY_KEY}"]\n'
    shared += f'[scheduler]\ntimezone = "{SCHEDULE_ZONE}"\ninterval_s = 1.0\n'
    if imap is not None:
        dovecot, user = imap
        # Quick polls and a short lease: a killed holder's folder is taken over in seconds.
        shared += ("[imap]\npoll_interval_s = 0.3\nsweep_interval_s = 0.5\n"
                   "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\nlease_s = 3.0\n"
                   f'[[imap.accounts]]\nname = "{IMAP_ACCOUNT}"\nhost = "{dovecot.host}"\n'
                   f'port = {dovecot.port}\ntls = "none"\nusername = "{user}"\n'
                   f'password = "{ANY_USER_PASSWORD}"\n')
    with config.open("a") as out:
        out.write(shared)
    return DaemonProcess(config, smtp_port, workdir / f"{name}.log")


class RoundRobinLoad:
    """`connections` clients sending a fixed corpus, each mail to the next daemon in
    turn; a mail without a 250 goes to the next daemon after a pause, until one takes it."""

    def __init__(self, ports: list[int], mails: list[TestMail], connections: int) -> None:
        self.ports = ports
        self.mails = mails
        self.connections = connections
        self.acked: Counter[str] = Counter()
        self.acked_by: Counter[int] = Counter()  # port -> mails it gave the 250 for
        self.resent: set[str] = set()
        self.attempts = 0
        self.temporary = 0
        self.dropped = 0
        self._next = 0
        self._turn = 0

    async def run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(self.connections)))

    def _take(self) -> TestMail | None:
        if self._next >= len(self.mails):
            return None
        self._next += 1
        return self.mails[self._next - 1]

    def _port(self) -> int:
        self._turn += 1
        return self.ports[self._turn % len(self.ports)]

    async def _client(self) -> None:
        while (mail := self._take()) is not None:
            tries = 0
            while True:
                port = self._port()
                tries += 1
                if tries > 1:
                    self.resent.add(mail.message_id)
                self.attempts += 1
                code = await self._send(port, mail)
                if code == 250:
                    self.acked[mail.message_id] += 1
                    self.acked_by[port] += 1
                    break
                if code >= 500:
                    raise AssertionError(f"{mail.message_id} refused for good: {code}")
                await asyncio.sleep(RETRY_PAUSE_S)

    async def _send(self, port: int, mail: TestMail) -> int:
        """One connection, one mail: the reply code, or 0 for a dropped connection."""
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=CLIENT_TIMEOUT_S)
        try:
            await client.connect()
            await client.sendmail(mail.sender, [SUPPORT], mail.raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = exc.recipients[0].code
        except aiosmtplib.SMTPResponseException as exc:
            code = exc.code
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self.dropped += 1
            return 0
        else:
            code = 250
        finally:
            if client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()
        if 400 <= code < 500:
            self.temporary += 1
        return code


async def create_due_schedules(database_url: str, count: int) -> None:
    """`count` monthly schedules, each from its own customer, due today (the store is
    migrated here, before any daemon starts)."""
    today = datetime.now(ZoneInfo(SCHEDULE_ZONE)).date()
    now = datetime.now(UTC)

    def create_all(tx: WriteTx) -> None:
        for n in range(count):
            create_schedule(tx, ScheduleSpec(
                customer_email=f"site{n}@example.net", subject=f"Boiler service {n}",
                interval=Interval.MONTHLY, first_date=today), today=today, now=now)

    async with PgStore(database_url) as store:
        await store.write(create_all)


class CheckpointWatch:
    """Reads the IMAP checkpoints every 0.1 s while the run lasts: a highest UID that
    goes down within one UIDVALIDITY is a problem (a checkpoint moved backwards)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.stop = False
        self.reads = 0
        self.problems: list[str] = []
        self._seen: dict[tuple[str, str, int], int] = {}

    async def run(self) -> None:
        while not self.stop:
            rows = await asyncio.to_thread(self._read)
            self.reads += 1
            for account, folder, validity, uid in rows:
                key = (account, folder, int(validity))
                if int(uid) < self._seen.get(key, 0):
                    self.problems.append(f"checkpoint of {account}/{folder} went back from "
                                         f"{self._seen[key]} to {uid}")
                self._seen[key] = max(int(uid), self._seen.get(key, 0))
            await asyncio.sleep(0.1)

    def _read(self) -> list[Any]:
        with contextlib.closing(read_db(Path("."), self.database_url)) as conn:
            return list(conn.execute(
                "SELECT account, folder, uidvalidity, highest_uid FROM imap_checkpoints"))


def _append_slowly(dovecot: Dovecot, user: str, mails: list[TestMail]) -> None:
    """Deliver the mails to the folder a few at a time while the SMTP load runs (and
    across the kill: the folder's lease may be the killed daemon's)."""
    for start in range(0, len(mails), 3):
        dovecot.append(user, [mail.raw for mail in mails[start:start + 3]])
        time.sleep(0.3)


def _stored_count(database_url: str) -> int:
    with contextlib.closing(read_db(Path("."), database_url)) as conn:
        return int(conn.execute("SELECT count(*) FROM inbound").fetchone()[0])


def _schedules_handled(database_url: str) -> int:
    with contextlib.closing(read_db(Path("."), database_url)) as conn:
        return int(conn.execute("SELECT count(*) FROM schedule_occurrences").fetchone()[0])


def build_corpus(plan: ChaosPlan) -> list[TestMail]:
    """`plan.mails` mails from distinct customers; about `attachment_share` carry a file."""
    rng = random.Random(plan.seed)
    corpus = []
    for index in range(plan.mails):
        mail = make_mail(index, rng)
        if rng.random() < plan.attachment_share and not mail.has_attachment:
            mail = build_mail(index, attachment=rng.randbytes(rng.randint(2_000, 40_000)))
        corpus.append(mail)
    return corpus


async def run_cluster_chaos(plan: ChaosPlan, workdir: Path, *, database_url: str,
                            s3: S3Server, bucket: str,
                            dovecot: Dovecot | None = None) -> ChaosReport:
    """Run the plan (daemons' data dirs and logs in `workdir`); return what happened.
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY must be in this process's environment
    (the daemons inherit it)."""
    began = time.monotonic()
    children_cpu = _children_cpu_s()
    rng = random.Random(plan.seed + 1)
    report = ChaosReport(plan)
    sink = SlowSink(plan.sink_delay_s)
    relay = start_sink(sink)
    blobs = s3.blobs_section(bucket, prefix=BLOB_PREFIX)
    imap = (dovecot, new_user()) if dovecot is not None and plan.imap_mails else None
    daemons = [write_cluster_config(workdir, f"d{n}", database_url=database_url,
                                    relay_port=relay.port, blobs=blobs, lease_s=plan.lease_s,
                                    imap=imap)
               for n in range(plan.daemons)]
    corpus = build_corpus(plan)
    # The last imap_mails of the corpus arrive by IMAP, the others by SMTP.
    by_imap = corpus[len(corpus) - plan.imap_mails:] if imap is not None else []
    corpus = corpus[:len(corpus) - len(by_imap)]
    checkpoints = CheckpointWatch(database_url)
    load = RoundRobinLoad([d.smtp_port for d in daemons], corpus, plan.connections)
    sending: asyncio.Task[None] | None = None
    watching: asyncio.Task[None] | None = None
    try:
        if plan.schedules:
            await create_due_schedules(database_url, plan.schedules)
        for daemon in daemons:
            await daemon.start()
        load_began = time.monotonic()
        sending = asyncio.create_task(load.run())
        watching = asyncio.create_task(checkpoints.run())
        if imap is not None:
            appending = asyncio.create_task(asyncio.to_thread(_append_slowly, *imap, by_imap))
        for kill in range(plan.kills):
            # Spread the kills over the middle of the run.
            await _until_acked(load, (kill + 1) / (plan.kills + 1) * len(corpus), sending)
            if sending.done():
                break
            victim = daemons[rng.randrange(len(daemons))]
            await _kill_and_restart(victim, plan, report, sink, database_url)
        await asyncio.wait_for(sending, LOAD_TIMEOUT_S)
        if imap is not None:
            await asyncio.wait_for(appending, LOAD_TIMEOUT_S)
            await _until(lambda: _stored_count(database_url) >= len(corpus) + len(by_imap),
                         what="every IMAP mail to be collected")
        await _until(lambda: _schedules_handled(database_url) >= plan.schedules,
                     what="every due schedule to be opened")
        report.load_s = round(time.monotonic() - load_began, 2)
        await wait_outbox_drained(workdir, database_url)
        await _until(lambda: sink.holding == 0, what="the relay's last 250")
        for daemon in daemons:
            report.exit_codes.append(await daemon.terminate())
        # Every daemon stopped: nothing is on its way, so no grace is needed.
        report.gc_output = await asyncio.to_thread(_blobs_gc, daemons[0].config)
    finally:
        checkpoints.stop = True
        if sending is not None and not sending.done():  # a failure above: stop the clients too
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        if watching is not None:
            await asyncio.gather(watching, return_exceptions=True)
        for daemon in daemons:
            await daemon.kill()
        await asyncio.to_thread(relay.stop)
    report.duration_s = round(time.monotonic() - began, 1)
    # The daemons are this process's children, all reaped by now: their CPU time.
    report.daemon_cpu_ms_per_mail = round(
        (_children_cpu_s() - children_cpu) * 1000 / (len(corpus) + len(by_imap)), 2)
    report.mails_per_s = round(len(corpus) / report.load_s, 1) if report.load_s else 0.0
    report.per_daemon_mails = {f"d{n}": load.acked_by[d.smtp_port]
                               for n, d in enumerate(daemons)}
    report.checkpoint_reads = checkpoints.reads
    report.problems += checkpoints.problems
    await asyncio.to_thread(verify, report, load, sink, database_url, s3, bucket, by_imap)
    return report


def verify(report: ChaosReport, load: RoundRobinLoad, sink: SlowSink, database_url: str,
           s3: S3Server, bucket: str, by_imap: list[TestMail]) -> None:
    """Check the end state against every promise; what breaks one goes to
    `report.problems`."""
    problems = report.problems
    mails = {mail.message_id: mail for mail in load.mails + by_imap}
    report.mails = len(mails)
    report.with_attachment = sum(1 for m in mails.values() if m.has_attachment)
    report.attempts, report.temporary_replies = load.attempts, load.temporary
    report.dropped, report.mails_resent = load.dropped, len(load.resent)
    if load.acked != Counter({mail.message_id for mail in load.mails}):
        problems.append("not every mail got exactly one 250 at its client")
    if any(code != 0 for code in report.exit_codes):
        problems.append(f"a clean stop failed: exit codes {report.exit_codes}")
    with contextlib.closing(read_db(Path("."), database_url)) as conn:
        for name, sql in HALF_STORED_CHECKS.items():
            count = conn.execute(sql.replace("FROM interventions v", MAIL_CASES)).fetchone()[0]
            if count:
                problems.append(f"{name}: {count}")
        stored = Counter(r[0] for r in conn.execute("SELECT message_id FROM inbound"))
        interventions = conn.execute(
            f"SELECT count(*) {MAIL_CASES}").fetchone()[0]
        _verify_schedules(report, conn)
        outbox = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT message_id, recipient, status FROM outbox WHERE kind = 'acknowledgement'")}
        attached = conn.execute(
            "SELECT i.message_id, a.sha256, a.size FROM inbound i"
            " JOIN messages m ON m.inbound_id = i.id"
            " JOIN attachments a ON a.message_id = m.id").fetchall()
        raw = conn.execute("SELECT sha256, in_blobs FROM raw_messages").fetchall()
    # Each mail: one inbound row, one intervention.
    report.imap_collected = sum(1 for mail in by_imap if mail.message_id in stored)
    if stored != Counter(set(mails)):
        problems.append(f"stored mails differ: {len(set(mails) - set(stored))} missing, "
                        f"{len(set(stored) - set(mails))} unknown, "
                        f"{sum(1 for n in stored.values() if n > 1)} doubled")
    if interventions != len(mails):
        problems.append(f"{interventions} interventions for {len(mails)} mails")
    _verify_blobs(problems, mails, attached, raw, s3, bucket)
    if report.gc_output.startswith("failed"):
        problems.append(f"blobs gc {report.gc_output}")
    named = {row[1] for row in attached} | {sha256 for sha256, in_blobs in raw if in_blobs}
    listing = s3.client().get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=BLOB_PREFIX + "/")
    keys = {obj["Key"].rpartition("/")[2] for page in listing for obj in page.get("Contents", [])}
    report.orphan_objects = len(keys - named)
    if report.orphan_objects:
        problems.append(f"{report.orphan_objects} orphan objects left after blobs gc")
    _verify_acknowledgements(report, outbox, sink)


def _verify_schedules(report: ChaosReport, conn: Any) -> None:
    """Each (schedule, occurrence) opened once: one occurrence row a schedule, each
    with its own intervention, and no scheduled intervention without one."""
    rows = conn.execute("SELECT schedule_id, outcome, intervention_number"
                        " FROM schedule_occurrences").fetchall()
    report.schedules_opened = sum(1 for _, outcome, _ in rows if outcome == "opened")
    per_schedule = Counter(row[0] for row in rows)
    if len(per_schedule) != report.plan.schedules or any(
            n != 1 for n in per_schedule.values()):
        report.problems.append(f"{len(rows)} occurrences for {report.plan.schedules} "
                               f"schedules due once")
    opened = [row[2] for row in rows if row[2] is not None]
    scheduled = conn.execute(
        "SELECT count(*) FROM interventions WHERE source = 'schedule'").fetchone()[0]
    if len(set(opened)) != len(opened) or scheduled != len(opened):
        report.problems.append(f"{scheduled} scheduled interventions for {len(opened)}"
                               " occurrences opened")


def _verify_blobs(problems: list[str], mails: dict[str, TestMail], attached: list[Any],
                  raw: list[Any], s3: S3Server, bucket: str) -> None:
    """Every attachment (and raw mail) an object in the bucket whose bytes match its
    digest: the store's own read verifies it."""
    if {row[0] for row in attached} != {m for m, mail in mails.items() if mail.has_attachment}:
        problems.append("attachments do not match the mails that carried one")
    store = S3BlobStore(s3.client(), bucket, BLOB_PREFIX)
    bad = 0
    for _, sha256, size in attached:
        try:
            bad += len(store.get(sha256)) != size
        except Exception:  # missing or failing its digest: both a broken promise
            bad += 1
    if bad:
        problems.append(f"{bad} attachment objects missing, short or not verifying")
    not_in_bucket = 0
    for sha256, in_blobs in raw:
        if in_blobs:
            try:
                store.get(sha256)
            except Exception:
                not_in_bucket += 1
    if not_in_bucket:
        problems.append(f"{not_in_bucket} raw mails missing from the bucket")


def _verify_acknowledgements(report: ChaosReport, outbox: dict[str, tuple[str, str]],
                             sink: SlowSink) -> None:
    """Each acknowledgement sent at least once under its one Message-ID; copies only
    within what the killed daemons could have had in the relay's hands."""
    problems = report.problems
    report.acks_expected = len(outbox)
    if report.acks_expected != report.mails:
        problems.append(f"{report.acks_expected} acknowledgements queued for "
                        f"{report.mails} mails")
    unsent = [mid for mid, (_, status) in outbox.items() if status != "sent"]
    if unsent:
        problems.append(f"{len(unsent)} acknowledgements not marked sent")
    received = Counter(captured.message_id for captured in sink.messages)
    report.acks_received = sum(received.values())
    report.ack_duplicates = sum(n - 1 for n in received.values())
    if set(received) != set(outbox):
        problems.append(f"relay Message-IDs differ from the outbox: "
                        f"{len(set(outbox) - set(received))} never arrived, "
                        f"{len(set(received) - set(outbox))} unknown")
    if report.ack_duplicates > OUTBOX_IN_FLIGHT * report.kills:
        problems.append(f"{report.ack_duplicates} duplicate acknowledgements for "
                        f"{report.kills} kills (bound {OUTBOX_IN_FLIGHT} a kill)")
    ids_per_recipient: dict[str, set[str]] = {}
    for captured in sink.messages:
        for rcpt in captured.rcpt_tos:
            ids_per_recipient.setdefault(rcpt, set()).add(captured.message_id)
    split = sum(1 for ids in ids_per_recipient.values() if len(ids) > 1)
    if split:
        problems.append(f"{split} customers got acknowledgements with different Message-IDs")
    for mid, (recipient, _) in outbox.items():
        if mid in received and ids_per_recipient.get(recipient) != {mid}:
            problems.append(f"acknowledgement {mid} did not reach {recipient}")
            break


async def _until_acked(load: RoundRobinLoad, target: float, sending: asyncio.Task[None]) -> None:
    """Until `target` mails got their 250 (or the load ended early)."""
    await _until(lambda: sum(load.acked.values()) >= target or sending.done(),
                 what="the load to reach a kill point")


async def _kill_and_restart(victim: DaemonProcess, plan: ChaosPlan, report: ChaosReport,
                            sink: SlowSink, database_url: str) -> None:
    """SIGKILL `victim` (while the relay holds a mail, if one comes within 2 s), keep it
    down `plan.down_s`, restart it; record how long until the rows it held at the kill
    were all sent (by it or by another daemon)."""
    with contextlib.suppress(TimeoutError):
        await _until(lambda: sink.holding > 0, what="a held mail", timeout_s=2.0)
    report.kills_mid_send += sink.holding > 0
    await victim.kill()
    killed = time.monotonic()
    report.kills += 1
    # Its incarnation id is the name of the lock file it left in its data dir.
    dead = {lock.stem for lock in (victim.config.with_suffix("") / DAEMONS_DIR).glob("*.lock")}
    held = await asyncio.to_thread(_held_by, database_url, dead)
    await asyncio.sleep(plan.down_s)
    await victim.start()
    await _until(lambda: not _pending(database_url) & held,
                 what="the killed daemon's claims to be sent")
    report.takeover_s.append(round(time.monotonic() - killed, 2))


def _blobs_gc(config: Path) -> str:
    """`nexusmail blobs gc --grace 0s` on the shared store; its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
    done = subprocess.run(
        [sys.executable, "-m", "nexusmail", "blobs", "gc", "--grace", "0s",
         "--config", str(config)], capture_output=True, env=env, timeout=120, check=False)
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"failed ({done.returncode}): {done.stderr.decode()[-500:]}"
    return lines[-1]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _held_by(database_url: str, owners: set[str]) -> set[int]:
    """Pending outbox rows these daemons hold under a lease (not given back)."""
    with contextlib.closing(read_db(Path("."), database_url)) as conn:
        return {int(r[0]) for r in conn.execute(
            "SELECT id, claimed_by FROM outbox WHERE status = 'pending'"
            " AND lease_until IS NOT NULL") if r[1] in owners}


def _pending(database_url: str) -> set[int]:
    with contextlib.closing(read_db(Path("."), database_url)) as conn:
        return {int(r[0]) for r in conn.execute(
            "SELECT id FROM outbox WHERE status = 'pending'")}


async def _until(check: Any, *, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
