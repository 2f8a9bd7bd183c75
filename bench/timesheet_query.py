"""Benchmark (not a test): the timesheet query over many activities.

    python bench/timesheet_query.py                      # 1,000,000 activities, 40 rounds
    python bench/timesheet_query.py --activities 200000 --rounds 20

A real store in a temporary directory, filled with `--activities` activities over two
years (50 technicians, 2,000 customers with one intervention each, one report in ten
replaced by a later one). Each round runs tickets.activity_queries.timesheet (the query
behind GET /api/v1/activities and the monthly admin page) through a read connection,
for three shapes: one technician's month, one customer's year, and a whole month
(about 40,000 rows to turn into JSON-ready dicts). Reported: p50 and p95 per shape.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from machine import cpu_model

from nexusmail.clock import iso
from nexusmail.tickets.activity_queries import timesheet
from nexusmail.tickets.store import Store

TECHNICIANS = 50
CUSTOMERS = 2000
START = date(2025, 1, 1)
DAYS = 730


def fill(tx: sqlite3.Connection, n: int, seed: int) -> None:
    rng = random.Random(seed)
    now = iso(datetime.now(UTC))
    tx.executemany("INSERT INTO customers (id, name, email, created_at) VALUES (?, ?, ?, ?)",
                   [(c, f"Cliente {c}", f"c{c}@example.it", now)
                    for c in range(1, CUSTOMERS + 1)])
    tx.executemany("INSERT INTO interventions (number, customer_id, subject, source,"
                   " created_at, updated_at) VALUES (?, ?, ?, 'email', ?, ?)",
                   [(c, c, f"Caldaia {c}", now, now) for c in range(1, CUSTOMERS + 1)])
    tx.executemany("INSERT INTO employees (id, email, name, created_at) VALUES (?, ?, ?, ?)",
                   [(e, f"tecnico{e}@firm.test", f"Tecnico {e}", now)
                    for e in range(1, TECHNICIANS + 1)])
    rows = []
    for i in range(1, n + 1):
        employee = rng.randint(1, TECHNICIANS)
        day = START + timedelta(days=rng.randrange(DAYS))
        rows.append((rng.randint(1, CUSTOMERS), employee, f"tecnico{employee}@firm.test",
                     day.isoformat(), rng.choice((60, 90, 150, 20, 240)),
                     rng.choice((None, 30, 40)), f"Intervento {i}", now))
    tx.executemany("INSERT INTO activities (intervention_number, employee_id, employee_email,"
                   " kind, day, work_minutes, travel_minutes, text, created_at)"
                   " VALUES (?, ?, ?, 'work', ?, ?, ?, ?, ?)", rows)
    # One in ten reports was replaced by the next one of the same technician.
    tx.executemany("UPDATE activities SET superseded_by = ? WHERE id = ?",
                   [(i + 1, i) for i in range(10, n, 10)])


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    shapes: dict[str, list[float]] = {"one technician, one month": [],
                                      "one customer, one year": [], "all, one month": []}
    sizes: dict[str, list[int]] = {name: [] for name in shapes}
    with tempfile.TemporaryDirectory() as folder:
        async with Store(Path(folder) / "nexusmail.sqlite3") as store:
            started = time.perf_counter()
            await store.write(lambda tx: fill(tx, args.activities, args.seed))
            print(f"filled {args.activities:,} activities in {time.perf_counter() - started:.1f} s")
            for _ in range(args.rounds):
                month = START + timedelta(days=rng.randrange(DAYS - 31))
                first = month.replace(day=1)
                last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
                calls = {
                    "one technician, one month": {
                        "employee": f"tecnico{rng.randint(1, TECHNICIANS)}@firm.test",
                        "date_from": first, "date_to": last},
                    "one customer, one year": {
                        "customer": str(rng.randint(1, CUSTOMERS)),
                        "date_from": date(2025, 1, 1), "date_to": date(2025, 12, 31)},
                    "all, one month": {"date_from": first, "date_to": last},
                }
                for name, filters in calls.items():
                    async with store.read() as conn:
                        began = time.perf_counter()
                        rows = await timesheet(conn, **filters)  # type: ignore[arg-type]
                        shapes[name].append(time.perf_counter() - began)
                    sizes[name].append(len(rows))
    for name, times in shapes.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"  {name:28} p50 {1000 * statistics.median(times):8.1f} ms"
              f"   p95 {1000 * p95:8.1f} ms   rows ~{statistics.median(sizes[name]):,.0f}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f},"
          f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    print(f"command: python bench/timesheet_query.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20260301)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(parser.parse_args()))
