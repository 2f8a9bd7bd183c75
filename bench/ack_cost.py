"""Benchmark (not a test): the daemon's CPU per outbox mail, composing and sending.

    python bench/ack_cost.py                        # the acks of 1,000 corpus mails
    python bench/ack_cost.py --runs 5               # more timed passes
    python bench/ack_cost.py --profile 30           # and a cProfile of one more pass each

The SMTP ingest benchmark's corpus goes into a fresh SQLite store through the real
`apply_inbound` (not measured), which leaves one pending acknowledgement per new
request in the outbox, in the customers' languages. Then, per pass:

- compose: the outbox worker's `Composer.compose` of every row, and the bytes the relay
  transport hands to SMTP (`wire_bytes`), timed apart (thread CPU);
- send: the relay transport (`SmtpRelayTransport`, as the daemon builds it) sends the
  composed mails over loopback to `sink.py`, a stock aiosmtpd server in its own
  process, with the worker's four sends in flight at once. The process's CPU for the
  pass (the event loop's thread only) includes flattening the message into bytes again;
- worker: the whole outbox worker (`OutboxWorker.send_due` in batches, as its loop
  runs it) on a copy of the store with every row pending: claim, compose in a thread,
  send, mark sent with the thread message, its JSON log lines at info (written to
  /dev/null). The process's CPU, the store's writer thread included.

The sink's CPU is not counted. On a shared machine, compare two trees alternately in
one sitting (PYTHONPATH at each), several runs each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from corpus import DEFAULT_SEED, SUPPORT_ADDRESS
from writer_cost import bench_settings, corpus_mails

from nexusmail.clock import SystemClock
from nexusmail.config import OutboundSettings, Settings
from nexusmail.dispatch.compose import ComposedMail, Composer, OutboxRow, wire_bytes
from nexusmail.dispatch.outbox_worker import CLAIM_BATCH, OutboxWorker
from nexusmail.dispatch.transport import SmtpRelayTransport
from nexusmail.logs import configure_logging
from nexusmail.tickets.apply_mail import apply_inbound
from nexusmail.tickets.store import Store, connect, migrate

BENCH_DIR = Path(__file__).resolve().parent
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONCURRENCY = 4  # the outbox worker's sends in flight


def pending_rows(db_file: Path, count: int, seed: int, settings: Settings) -> list[OutboxRow]:
    """Ingest `count` corpus mails into a new store at `db_file`; the outbox rows they
    leave pending."""
    mails = corpus_mails(count, seed, settings)
    conn = connect(db_file)
    migrate(conn)
    conn.execute("BEGIN IMMEDIATE")
    for number, inbound in enumerate(mails):
        apply_inbound(conn, inbound, now=START + timedelta(seconds=number * 0.2),
                      settings=settings)
    conn.execute("COMMIT")
    rows = [OutboxRow.from_db(raw) for raw in conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' ORDER BY id")]
    conn.close()
    return rows


def compose_pass(composer: Composer, rows: list[OutboxRow],
                 profile: cProfile.Profile | None = None
                 ) -> tuple[float, float, list[ComposedMail]]:
    """Compose every row, then flatten each; thread CPU seconds of both."""
    if profile is not None:
        profile.enable()
    started = time.thread_time()
    composed = [composer.compose(row) for row in rows]
    middle = time.thread_time()
    for mail in composed:
        wire_bytes(mail.message)
    ended = time.thread_time()
    if profile is not None:
        profile.disable()
    return middle - started, ended - middle, composed


async def send_pass(port: int, rows: list[OutboxRow], composed: list[ComposedMail],
                    profile: cProfile.Profile | None = None) -> tuple[float, int]:
    """Send every mail through a fresh relay transport; (process CPU seconds,
    connections opened). The transport is built and closed outside the timing."""
    transport = SmtpRelayTransport(OutboundSettings(host="127.0.0.1", port=port),
                                   max_connections=CONCURRENCY)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def send(row: OutboxRow, mail: ComposedMail) -> None:
        async with slots:
            await transport.send(mail.message, sender=SUPPORT_ADDRESS,
                                 recipients=[row.recipient])

    # Open the connections first: EHLO once per connection is not the per-mail cost.
    await asyncio.gather(*(send(r, m) for r, m in zip(rows[:CONCURRENCY],
                                                      composed[:CONCURRENCY], strict=True)))
    if profile is not None:
        profile.enable()
    started = time.process_time()
    await asyncio.gather(*(send(r, m) for r, m in zip(rows, composed, strict=True)))
    elapsed = time.process_time() - started
    if profile is not None:
        profile.disable()
    await transport.close()
    return elapsed, transport.connections_opened


async def worker_pass(db_file: Path, port: int, settings: Settings,
                      profile: cProfile.Profile | None = None) -> tuple[float, int]:
    """The outbox worker as the daemon runs it, on a store with the rows pending: claim,
    compose (in a thread), send, mark sent, log; (process CPU seconds, rows sent). The
    store's writer thread and the JSON log lines (to /dev/null) are counted too."""
    outbound = OutboundSettings(host="127.0.0.1", port=port)
    async with Store(db_file) as store:
        worker = OutboxWorker(store, SmtpRelayTransport(outbound), Composer(settings.mail),
                              SystemClock(), outbound, envelope_sender=SUPPORT_ADDRESS,
                              concurrency=CONCURRENCY)
        if profile is not None:
            profile.enable()
        started = time.process_time()
        sent = 0
        while handled := await worker.send_due(CLAIM_BATCH):
            sent += handled
        elapsed = time.process_time() - started
        if profile is not None:
            profile.disable()
        await worker.transport.close()
    return elapsed, sent


def fresh_copy(db_file: Path, name: str) -> Path:
    """A copy of the store with every row still pending."""
    copy = db_file.with_name(name)
    for suffix in ("", "-wal", "-shm"):
        copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(db_file, copy)
    return copy


def start_sink(count_file: Path) -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "sink.py"), "--port", "0",
         "--count-file", str(count_file)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    started = json.loads(sink.stdout.readline())
    return sink, int(started["port"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000, help="corpus mails ingested")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="TOP")
    args = parser.parse_args(argv)
    settings = bench_settings()
    with tempfile.TemporaryDirectory(prefix="ack-cost-") as tmp:
        db_file = Path(tmp) / "pending.sqlite3"
        rows = pending_rows(db_file, args.mails, args.seed, settings)
        kinds = Counter(f"{row.kind}/{row.language}" for row in rows)
        print(f"{len(rows)} outbox rows: "
              + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        # The daemon's log lines at info, written to nowhere: their CPU is counted.
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            configure_logging("info", "json")
            return measure(args, settings, rows, db_file)


def measure(args: argparse.Namespace, settings: Settings, rows: list[OutboxRow],
            db_file: Path) -> int:
    composer = Composer(settings.mail, clock=SystemClock())
    compose_pass(composer, rows[:50])  # warm-up: templates loaded and compiled once
    report = sys.__stdout__
    assert report is not None
    sink, port = start_sink(db_file.with_name("sink.json"))
    try:
        figures: dict[str, list[float]] = {"compose": [], "flatten": [], "send": [],
                                           "worker": []}
        for _ in range(args.runs):
            compose_s, flatten_s, composed = compose_pass(composer, rows)
            send_s, opened = asyncio.run(send_pass(port, rows, composed))
            worker_s, sent = asyncio.run(worker_pass(fresh_copy(db_file, "run.sqlite3"),
                                                     port, settings))
            n = len(rows)
            assert sent == n, f"the worker sent {sent} of {n}"
            for name, seconds in (("compose", compose_s), ("flatten", flatten_s),
                                  ("send", send_s), ("worker", worker_s)):
                figures[name].append(seconds / n * 1000)
            print(f"compose {compose_s / n * 1000:.3f} + flatten {flatten_s / n * 1000:.3f}"
                  f" ms/mail; send {send_s / n * 1000:.3f} ms/mail"
                  f" (incl. flatten, {opened} connections);"
                  f" worker {worker_s / n * 1000:.3f} ms/mail", file=report, flush=True)
        print("min/median ms/mail: " + "; ".join(
            f"{name} {min(values):.3f}/{statistics.median(values):.3f}"
            for name, values in figures.items()), file=report)
        if args.profile:
            profile = cProfile.Profile(time.thread_time)
            _, _, composed = compose_pass(composer, rows, profile)
            show_profile("compose and flatten", profile, args.profile, report)
            profile = cProfile.Profile(time.process_time)
            asyncio.run(send_pass(port, rows, composed, profile))
            show_profile("send (the event loop's thread)", profile, args.profile, report)
            profile = cProfile.Profile(time.thread_time)
            asyncio.run(worker_pass(fresh_copy(db_file, "run.sqlite3"), port, settings,
                                    profile))
            show_profile("worker (the event loop's thread)", profile, args.profile, report)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return 0


def show_profile(title: str, profile: cProfile.Profile, top: int, out: TextIO) -> None:
    print(f"== {title}", file=out)
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    raise SystemExit(main())
