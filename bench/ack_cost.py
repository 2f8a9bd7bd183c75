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
  pass (the event loop's thread only) includes flattening the message into bytes again.

The sink's CPU is not counted, nor logging (only warnings are written). On a shared
machine, compare two trees alternately in one sitting (PYTHONPATH at each), several
runs each.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from corpus import DEFAULT_SEED, SUPPORT_ADDRESS
from writer_cost import bench_settings, corpus_mails

from nexusmail.clock import SystemClock
from nexusmail.config import OutboundSettings, Settings
from nexusmail.dispatch.compose import ComposedMail, Composer, OutboxRow, wire_bytes
from nexusmail.dispatch.transport import SmtpRelayTransport
from nexusmail.tickets.apply_mail import apply_inbound
from nexusmail.tickets.store import connect, migrate

BENCH_DIR = Path(__file__).resolve().parent
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONCURRENCY = 4  # the outbox worker's sends in flight


def pending_rows(count: int, seed: int, settings: Settings) -> list[OutboxRow]:
    """The outbox rows the ingest of `count` corpus mails leaves pending."""
    mails = corpus_mails(count, seed, settings)
    with tempfile.TemporaryDirectory(prefix="ack-cost-") as tmp:
        conn = connect(Path(tmp) / "nexusmail.sqlite3")
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
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = bench_settings()
    rows = pending_rows(args.mails, args.seed, settings)
    kinds = Counter(f"{row.kind}/{row.language}" for row in rows)
    print(f"{len(rows)} outbox rows: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    composer = Composer(settings.mail, clock=SystemClock())
    compose_pass(composer, rows[:50])  # warm-up: templates loaded and compiled once
    with tempfile.TemporaryDirectory(prefix="ack-cost-sink-") as tmp:
        sink, port = start_sink(Path(tmp) / "sink.json")
        try:
            figures: dict[str, list[float]] = {"compose": [], "flatten": [], "send": []}
            for _ in range(args.runs):
                compose_s, flatten_s, composed = compose_pass(composer, rows)
                send_s, opened = asyncio.run(send_pass(port, rows, composed))
                n = len(rows)
                for name, seconds in (("compose", compose_s), ("flatten", flatten_s),
                                      ("send", send_s)):
                    figures[name].append(seconds / n * 1000)
                print(f"compose {compose_s / n * 1000:.3f} + flatten {flatten_s / n * 1000:.3f}"
                      f" ms/mail; send {send_s / n * 1000:.3f} ms/mail"
                      f" (incl. flatten, {opened} connections)")
            print("min/median ms/mail: " + "; ".join(
                f"{name} {min(values):.3f}/{statistics.median(values):.3f}"
                for name, values in figures.items()))
            if args.profile:
                profile = cProfile.Profile(time.thread_time)
                _, _, composed = compose_pass(composer, rows, profile)
                print("== compose and flatten")
                pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
                profile = cProfile.Profile(time.process_time)
                asyncio.run(send_pass(port, rows, composed, profile))
                print("== send")
                pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
