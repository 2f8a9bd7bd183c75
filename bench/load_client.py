"""SMTP load client: sends the corpus over C persistent connections and times each 250.

Runs in its own process so its CPU is not charged to the server. Each connection
sends its share of the corpus one message after another (MAIL, RCPT, DATA on the same
session); a thread (a mail and its replies) stays on one connection so a reply is
sent only after its original was accepted, as it would be in real life.

The time recorded per mail is from writing the DATA payload (after the 354) to
reading the final reply: what the server spends on the message, plus the loopback
transfer. The default client is a small asyncio-streams one because it measures
exactly that and costs little CPU on a 2-core machine; `--client aiosmtplib` times
`SMTP.data()` instead (includes the DATA/354 round trip).

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, so this file's directory is on sys.path and corpus imports directly.
from corpus import SUPPORT_ADDRESS, MailMeta, read_index

REPLY_TIMEOUT_S = 120.0
PROGRESS_INTERVAL_S = 2.0
MAX_ERROR_SAMPLES = 10


@dataclass(frozen=True)
class Outgoing:
    sender: str
    payload: bytes  # dot-stuffed, ends with CRLF "." CRLF
    size: int


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(what)


class SmtpProtocolError(Exception):
    pass


def dot_stuff(raw: bytes) -> bytes:
    """RFC 5321 section 4.5.2: a line starting with '.' gets one more; then the end mark."""
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", raw) + b".\r\n"


def partition(metas: Sequence[MailMeta], connections: int) -> list[list[int]]:
    """Whole threads per connection, balanced by bytes, corpus order within each."""
    thread_bytes: dict[int, int] = {}
    for m in metas:
        thread_bytes[m.thread] = thread_bytes.get(m.thread, 0) + m.size
    load = [0] * connections
    owner: dict[int, int] = {}
    for thread, size in thread_bytes.items():  # insertion order = first appearance
        conn = min(range(connections), key=load.__getitem__)
        owner[thread] = conn
        load[conn] += size
    shares: list[list[int]] = [[] for _ in range(connections)]
    for i, m in enumerate(metas):
        shares[owner[m.thread]].append(i)
    return shares


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    lines: list[str] = []
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT_S)
        if not line:
            raise SmtpProtocolError("connection closed by server")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            return int(text[:3]), "\n".join(lines)


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   line: str) -> tuple[int, str]:
    writer.write(line.encode() + b"\r\n")
    return await _read_reply(reader)


async def run_raw_connection(host: str, port: int, mails: Sequence[Outgoing], tally: Tally,
                             ready: asyncio.Event, start: asyncio.Event) -> None:
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        code, text = await _read_reply(reader)
        if code != 220:
            raise SmtpProtocolError(f"greeting: {text}")
        code, text = await _command(reader, writer, "EHLO load.bench.localhost")
        if code != 250:
            raise SmtpProtocolError(f"EHLO: {text}")
        ready.set()
        await start.wait()
        for mail in mails:
            mail_from = f"MAIL FROM:<{mail.sender}> SIZE={mail.size}"
            code, text = await _command(reader, writer, mail_from)
            if code != 250:
                tally.error(f"MAIL: {text}")
                await _command(reader, writer, "RSET")
                continue
            code, text = await _command(reader, writer, f"RCPT TO:<{SUPPORT_ADDRESS}>")
            if code != 250:
                tally.error(f"RCPT: {text}")
                await _command(reader, writer, "RSET")
                continue
            code, text = await _command(reader, writer, "DATA")
            if code != 354:
                tally.error(f"DATA: {text}")
                await _command(reader, writer, "RSET")
                continue
            started = time.perf_counter()
            writer.write(mail.payload)
            code, text = await _read_reply(reader)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if code == 250:
                tally.ok += 1
                tally.latencies_ms.append(elapsed_ms)
            else:
                tally.error(f"end of DATA: {text}")
        await _command(reader, writer, "QUIT")
    finally:
        ready.set()  # a failed connection must not block the others' start
        if writer is not None:
            writer.close()
            await writer.wait_closed()


async def run_aiosmtplib_connection(host: str, port: int, mails: Sequence[Outgoing],
                                    tally: Tally, ready: asyncio.Event,
                                    start: asyncio.Event) -> None:
    import aiosmtplib

    smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=REPLY_TIMEOUT_S,
                           local_hostname="load.bench.localhost")
    try:
        await smtp.connect()
        await smtp.ehlo()
        ready.set()
        await start.wait()
        for mail in mails:
            try:
                await smtp.mail(mail.sender)
                await smtp.rcpt(SUPPORT_ADDRESS)
                started = time.perf_counter()
                # aiosmtplib dot-stuffs itself: give it the message without our end mark.
                await smtp.data(_unstuff(mail.payload))
                tally.latencies_ms.append((time.perf_counter() - started) * 1000.0)
                tally.ok += 1
            except aiosmtplib.SMTPResponseException as exc:
                tally.error(f"{exc.code} {exc.message}")
                await smtp.rset()
        await smtp.quit()
    finally:
        ready.set()
        smtp.close()


def _unstuff(payload: bytes) -> bytes:
    return re.sub(rb"(?m)^\.\.", b".", payload[:-3])


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _progress(tallies: Sequence[Tally], total: int, done: asyncio.Event) -> None:
    started = time.perf_counter()
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), timeout=PROGRESS_INTERVAL_S)
        except TimeoutError:
            sent = sum(t.ok + t.errors for t in tallies)
            rate = sent / (time.perf_counter() - started)
            print(f"  load: {sent}/{total} mails, {rate:.0f}/s", file=sys.stderr, flush=True)


async def run_load(host: str, ports: Sequence[int], shares: Sequence[Sequence[Outgoing]],
                   client: str) -> dict[str, object]:
    runner = run_raw_connection if client == "raw" else run_aiosmtplib_connection
    tallies = [Tally() for _ in shares]
    readies = [asyncio.Event() for _ in shares]
    start = asyncio.Event()
    # Several ports (daemons of one cluster): connection i goes to port i mod n, so the
    # threads, and so the mails, are spread round-robin over the servers.
    tasks = [asyncio.create_task(runner(host, ports[i % len(ports)], share, tally, ready,
                                        start))
             for i, (share, tally, ready) in enumerate(zip(shares, tallies, readies,
                                                           strict=True))]
    # Connections are opened first, so the rate measures mail, not TCP/EHLO setup.
    await asyncio.gather(*(r.wait() for r in readies))
    done = asyncio.Event()
    total = sum(len(s) for s in shares)
    progress = asyncio.create_task(_progress(tallies, total, done))
    started = time.perf_counter()
    cpu_before = time.process_time()
    start.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed_s = time.perf_counter() - started
    client_cpu_s = time.process_time() - cpu_before
    done.set()
    await progress
    failures: list[str] = []
    for share, tally, outcome in zip(shares, tallies, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # Every mail this connection did not get an answer for counts as an error.
            unanswered = len(share) - tally.ok - tally.errors
            tally.errors += unanswered
            failures.append(f"{type(outcome).__name__}: {outcome}")
    latencies = sorted(x for t in tallies for x in t.latencies_ms)
    ok = sum(t.ok for t in tallies)
    return {
        "client": client,
        "connections": len(shares),
        "mails": total,
        "ok": ok,
        "errors": sum(t.errors for t in tallies),
        "error_samples": [s for t in tallies for s in t.error_samples][:MAX_ERROR_SAMPLES],
        "connection_failures": failures[:MAX_ERROR_SAMPLES],
        "bytes": sum(o.size for s in shares for o in s),
        "elapsed_s": round(elapsed_s, 3),
        # If this nears elapsed_s the client, not the server, is the bottleneck.
        "client_cpu_s": round(client_cpu_s, 3),
        "msgs_per_s": round(ok / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="corpus index (.json)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, nargs="+", required=True,
                        help="several: the connections are spread over them in turn")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--client", choices=["raw", "aiosmtplib"], default="raw")
    args = parser.parse_args(argv)

    corpus = read_index(args.index)
    raws = corpus.load()
    # All encoding is done before the clock starts, so the client stays cheap while timed.
    outgoing = [Outgoing(m.sender, dot_stuff(raw), len(raw))
                for m, raw in zip(corpus.metas, raws, strict=True)]
    shares = [[outgoing[i] for i in share]
              for share in partition(corpus.metas, args.connections)]
    result = asyncio.run(run_load(args.host, args.port, shares, args.client))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
