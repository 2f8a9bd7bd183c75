"""The operators' desk at scale: the admin list in last-activity order with the unread
state and the counts per filter, thread pages, and the assign form's load figures.

Builds on bench/admin_pages.py's store (100,000 interventions, 1,000,000 messages by
default, written in bulk through the real migrations), then makes it look like a desk
in use: last activity spread over the 30 days after each case opened, the operator
has opened 70% of the cases since their last mail, 200 technicians share the
assignments, 20 of them with an absence, and the open cases have a desired period.
Starts the real daemon on it, logs in and times sequential GETs over loopback. Prints
p50/p95/max per request kind and the daemon's CPU time per request (Linux /proc; what
compares on a loaded machine), the machine, its load average and the command.
Target: p95 <= 50 ms.

    python bench/admin_list.py                          # 100k / 1M, 200 requests per kind
    python bench/admin_list.py --interventions 20000 --requests 100
    python bench/admin_list.py --keep                   # reuse the generated store

The store is cached in bench/out/desk-<interventions>x<messages per>/ (not committed).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import httpx
from admin_pages import (
    BIG_THREAD,
    OUT,
    cycle,
    free_port,
    generate,
    log_in,
    start_daemon,
    stop_daemon,
    timed,
)
from machine import cpu_model

from nexusmail.tickets.store import connect

TECHNICIANS = 200
OPERATOR_ID = 1      # the one operator admin_pages creates
_STAMP = "strftime('%Y-%m-%dT%H:%M:%S+00:00', {0}, '+' || {1} || ' seconds')"


def make_desk(db: Path, interventions: int) -> None:
    """Activity times, read marks, 200 technicians, absences and desired periods."""
    conn = connect(db)
    conn.execute("PRAGMA synchronous = OFF")  # a bench fixture: durability not needed
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO employees (id, email, name, language, created_at)"
        " VALUES (?, ?, ?, 'it', '2024-01-01T00:00:00+00:00')",
        [(e, f"tecnico{e}@firm.it", f"Tecnico {e}") for e in range(31, TECHNICIANS + 1)])
    conn.execute(f"UPDATE assignments SET employee_id = abs(random()) % {TECHNICIANS} + 1")  # noqa: S608
    conn.executemany(
        "INSERT INTO employee_absences (employee_id, starts_on, ends_on, reason, created_at)"
        " VALUES (?, ?, ?, 'ferie', '2024-01-01T00:00:00+00:00')",
        [(e, "2024-01-01", "2099-12-31") for e in range(1, TECHNICIANS + 1, 10)])
    # The last activity: up to 30 days after the case opened; the customer wrote last.
    conn.execute("UPDATE interventions SET updated_at = "  # noqa: S608 (constants only)
                 + _STAMP.format("created_at", "(abs(random()) % 2592000)"))
    conn.execute("UPDATE interventions SET last_inbound_at = updated_at")
    conn.execute("UPDATE interventions SET desired_from = substr(updated_at, 1, 10),"  # noqa: S608
                 " desired_to = substr(" + _STAMP.format("updated_at", "604800") + ", 1, 10)"
                 " WHERE status = 'open'")
    # The operator opened 70% of the cases a second after their last mail.
    conn.execute(
        "INSERT INTO operator_reads (operator_id, intervention_number, read_at)"  # noqa: S608
        f" SELECT {OPERATOR_ID}, number, " + _STAMP.format("updated_at", "1")
        + " FROM interventions WHERE abs(random()) % 10 < 7")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def daemon_cpu_ms(session: int) -> float:
    """CPU time used so far by the daemon and its helpers (their session), in ms: on a
    shared machine whose load inflates the wall times, the figure that compares."""
    total = 0
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])   # utime, stime in clock ticks
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def samples_of(db: Path) -> tuple[list[str], list[int], list[int]]:
    """Activity-order page cursors, closed case numbers, open case numbers."""
    conn = sqlite3.connect(db)
    cursors = [f"{u},{n}" for u, n in conn.execute(
        "SELECT updated_at, number FROM interventions ORDER BY random() LIMIT 500")]
    closed = [n for (n,) in conn.execute(
        "SELECT number FROM interventions WHERE status = 'closed' ORDER BY random() LIMIT 500")]
    open_ = [n for (n,) in conn.execute(
        "SELECT number FROM interventions WHERE status = 'open' ORDER BY random() LIMIT 500")]
    conn.close()
    return cursors, closed, open_


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--interventions", type=int, default=100_000)
    parser.add_argument("--messages-per", type=int, default=10,
                        help="messages per intervention (one thread has 500)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--keep", action="store_true", help="reuse a generated store")
    args = parser.parse_args(argv)

    data_dir = OUT / f"desk-{args.interventions}x{args.messages_per}"
    db = data_dir / "nexusmail.sqlite3"
    marker = data_dir / "generated"
    if not (args.keep and marker.exists()):
        if data_dir.exists():
            for path in sorted(data_dir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        big = generate(db, args.interventions, args.messages_per)
        make_desk(db, args.interventions)
        marker.write_text(str(big))
        print(f"generated in {time.monotonic() - started:.0f} s,"
              f" {db.stat().st_size / 2**20:.0f} MB", file=sys.stderr)
    big = int(marker.read_text())
    cursors, closed, open_ = samples_of(db)
    rng = random.Random(11)
    kinds: list[tuple[str, object]] = [
        ("GET / (last activity, counts, unread)", "/"),
        ("GET /?sort=number", "/?sort=number"),
        ("GET /?unread=1 (new mail for me)", "/?unread=1"),
        ("GET /?status=open (last activity)", "/?status=open"),
        ("GET /?status=on_hold (none, last activity)", "/?status=on_hold"),
        ("GET /?before=<deep activity page>", lambda r: f"/?before={r.choice(cursors)}"),
        ("GET /interventions/N closed (~10 msgs)",
         lambda r: f"/interventions/{r.choice(closed)}"),
        (f"GET /interventions/N open, assign form ({TECHNICIANS} technicians)",
         lambda r: f"/interventions/{r.choice(open_)}"),
        (f"GET /interventions/{big} ({BIG_THREAD} msgs)", f"/interventions/{big}"),
    ]
    port = free_port()
    proc = start_daemon(data_dir, port)
    results = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            log_in(client)
            for label, make in kinds:
                before = daemon_cpu_ms(proc.pid)
                samples = timed(client, cycle(rng, make), args.requests)
                # Averaged over the warm-up requests too (timed() makes 10 first).
                cpu = (daemon_cpu_ms(proc.pid) - before) / (args.requests + 10)
                q = statistics.quantiles(samples, n=100)
                results.append((label, q[49], q[94], max(samples), cpu))
    finally:
        stop_daemon(proc)
    messages = args.interventions * args.messages_per + BIG_THREAD - args.messages_per
    print(f"\nOperators' desk latency: {args.interventions:,} interventions, {messages:,}"
          f" messages, {TECHNICIANS} technicians, {args.requests} sequential requests per"
          " kind over loopback")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f}")
    print(f"command: python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}".rstrip())
    print("\n| request | p50 ms | p95 ms | max ms | daemon CPU ms |\n|---|---:|---:|---:|---:|")
    for label, p50, p95, worst, cpu in results:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
