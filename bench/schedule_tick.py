"""Benchmark (not a test): a scheduler tick over many schedules.

    python bench/schedule_tick.py                       # 100,000 schedules, 100 due, 5 rounds
    python bench/schedule_tick.py --schedules 1000000 --due 100
    python bench/schedule_tick.py --no-assignees         # opening without assignment mails

A real store in a temporary directory, filled with monthly schedules whose next opening
dates spread over the coming year; each round makes `--due` other schedules due today
and runs one `Scheduler.tick()` (the real one, with the system clock). Reported per
round, as medians: an idle tick (nothing due: what every tick costs whatever the
number of schedules), the due tick split into finding the due schedules (the index
read) and opening them (the write units: intervention, thread entry, occurrence row,
assignment and its outbox row, committed), and the cost per opened intervention.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import structlog
from machine import cpu_model

from nexusmail.clock import SystemClock, iso
from nexusmail.config import Settings
from nexusmail.tickets.cases import add_employee, find_or_create_customer
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.scheduler import DUE_SQL, Scheduler, TickResult
from nexusmail.tickets.store import Store

KEY = b"bench-signing-key-0123456789abcdef"
TECH = "tecnico@firm.test"
LEAD_DAYS = 3


def fill(tx: sqlite3.Connection, n: int, *, today: date, assignees: bool) -> None:
    """n monthly schedules, next openings spread over the year from tomorrow."""
    now = datetime.now(UTC)
    customer = find_or_create_customer(tx, email="cliente@example.it", name="Cliente", now=now)
    add_employee(tx, email=TECH, name="Tecnico", language="it", now=now)
    who = json.dumps([TECH] if assignees else [])
    rows = []
    for i in range(n):
        occurrence = today + timedelta(days=LEAD_DAYS + 1 + i % 365)
        rows.append((customer.customer_id, customer.contact_id, f"Manutenzione {i}",
                     "Controllo periodico.", "monthly", occurrence.isoformat(), LEAD_DAYS, who,
                     occurrence.isoformat(),
                     (occurrence - timedelta(days=LEAD_DAYS)).isoformat(), iso(now), iso(now)))
    tx.executemany(
        "INSERT INTO schedules (customer_id, contact_id, subject, description, interval,"
        " first_date, lead_days, assignees, next_occurrence_on, next_opening_on, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def make_due(tx: sqlite3.Connection, *, ids: list[int], today: date) -> None:
    occurrence = (today + timedelta(days=LEAD_DAYS)).isoformat()
    tx.executemany(
        "UPDATE schedules SET first_date = ?, next_occurrence_on = ?, next_opening_on = ?"
        " WHERE id = ?", [(occurrence, occurrence, today.isoformat(), i) for i in ids])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate({
            "storage": {"data_dir": folder},
            "mail": {"support_addresses": ["support@firm.test"]},
        })
        clock = SystemClock()
        today = local_date(clock.now(), settings.scheduler.timezone)
        async with Store(Path(folder) / "nexusmail.sqlite3") as store:
            await store.write(lambda tx: fill(tx, args.schedules, today=today,
                                              assignees=not args.no_assignees))
            async with store.read() as conn:
                plan = [tuple(row) for row in await conn.execute_fetchall(
                    "EXPLAIN QUERY PLAN " + DUE_SQL, (today.isoformat(),))]
            scheduler = Scheduler(store, settings, clock, reply_keys=[KEY],
                                  on_outbox=lambda: None)
            await scheduler.tick()  # warm the caches once
            idle: list[TickResult] = []
            busy: list[tuple[float, TickResult]] = []
            for r in range(args.rounds):
                idle.append(await scheduler.tick())
                ids = list(range(1 + r * args.due * 7, 1 + r * args.due * 7 + args.due * 7, 7))
                await store.write(partial(make_due, ids=ids, today=today))
                started = clock.monotonic()
                result = await scheduler.tick()
                busy.append((clock.monotonic() - started, result))
                assert result.opened == args.due, result
    report(args, plan, idle, busy)


def report(args: argparse.Namespace, plan: list[tuple[object, ...]], idle: list[TickResult],
           busy: list[tuple[float, TickResult]]) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.2f} ms"

    idle_total = [r.select_s + r.open_s for r in idle]
    total = [t for t, _ in busy]
    select = [r.select_s for _, r in busy]
    opening = [r.open_s for _, r in busy]
    per = [t / args.due for t in opening]
    print(f"# schedule tick benchmark: {args.schedules:,} schedules, {args.due} due per tick,"
          f" {args.rounds} rounds, assignees: {not args.no_assignees}")
    print(f"# command: python bench/schedule_tick.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# machine: {platform.processor() or platform.machine()}, {cpu_model()},"
          f" {os.cpu_count()} CPUs; Python {platform.python_version()};"
          f" SQLite {sqlite3.sqlite_version}; {platform.system()} {platform.release()}")
    print(f"# due query plan: {plan}")
    print("medians:")
    print(f"  idle tick (0 due, whole tick)             {ms(idle_total)}")
    print(f"  due tick, finding the {args.due} due (index)     {ms(select)}")
    print(f"  due tick, opening them (write units)      {ms(opening)}")
    print(f"  due tick, whole                           {ms(total)}")
    print(f"  per opened intervention                   {ms(per)}")
    rest = [t - o for t, o in zip(total, opening, strict=True)]
    print(f"  tick apart from the openings              {ms(rest)}")



if __name__ == "__main__":
    # Only the figures on stdout: the per-opening info lines would swamp them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-assignees", action="store_true",
                        help="schedules without a default assignee (no assignment mail)")
    asyncio.run(main(parser.parse_args()))
