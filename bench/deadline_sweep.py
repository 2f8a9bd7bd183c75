"""Benchmark (not a test): a deadline sweep tick over many open interventions.

    python bench/deadline_sweep.py                     # 100,000 open, 1,000 due steps, 5 rounds
    python bench/deadline_sweep.py --interventions 1000000 --due 1000 --rounds 3

A real store in a temporary directory, filled with open interventions that each have
a resolution deadline in the coming weeks (its warning step planned, not yet due) and a
pending assignment; each round makes `--due` other assignments' reminder steps due now
and runs one `DeadlineSweep.tick()` (the real one, with the system clock). Reported per
round, as medians: an idle tick (nothing due or new: what every tick costs whatever the
number of open cases), the due tick split into the index reads (new rows to plan, due
steps, contracts) and carrying the steps out (one write unit each: the step taken, the
reminder queued in the outbox, the note on the thread, committed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import structlog
from machine import cpu_model

from nexusmail.clock import SystemClock, iso
from nexusmail.config import Settings
from nexusmail.tickets.cases import add_employee, find_or_create_customer
from nexusmail.tickets.deadline_sweep import (
    DUE_STEPS_SQL,
    NEW_ASSIGNMENTS_SQL,
    NEW_INTERVENTIONS_SQL,
    DeadlineSweep,
    SweepResult,
)
from nexusmail.tickets.store import Store

TECH = "tecnico@firm.test"


def fill(tx: sqlite3.Connection, n: int) -> None:
    """n open, planned interventions, each with a pending assignment and a warning step
    due in the coming weeks."""
    now = datetime.now(UTC)
    customer = find_or_create_customer(tx, email="cliente@example.it", name="Cliente", now=now)
    employee = add_employee(tx, email=TECH, name="Tecnico", language="it", now=now)
    stamp = iso(now)
    tx.executemany(
        "INSERT INTO interventions (number, customer_id, subject, status, source,"
        " resolution_due, sla_planned_at, created_at, updated_at)"
        " VALUES (?, ?, ?, 'open', 'api', ?, ?, ?, ?)",
        [(i, customer.customer_id, f"Guasto {i}",
          iso(now + timedelta(days=1 + i % 30, hours=2)), stamp, stamp, stamp)
         for i in range(1, n + 1)])
    tx.executemany(
        "INSERT INTO assignments (id, intervention_number, employee_id, status,"
        " sla_planned_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)",
        [(i, i, employee, stamp, stamp) for i in range(1, n + 1)])
    tx.executemany(
        "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
        " VALUES (?, 0, 'resolution_warning', ?)",
        [(i, iso(now + timedelta(days=1 + i % 30))) for i in range(1, n + 1)])


def make_due(tx: sqlite3.Connection, *, numbers: list[int], due_at: str) -> None:
    tx.executemany(
        "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
        " VALUES (?, ?, 'remind', ?)", [(n, n, due_at) for n in numbers])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate({
            "storage": {"data_dir": folder},
            "mail": {"support_addresses": ["support@firm.test"],
                     "operator_addresses": ["dispatch@firm.test"]},
            "sla": {"remind_after_hours": 2, "warn_before_hours": 1},
            "contracts": {"low_hours_alert": 2},
        })
        clock = SystemClock()
        async with Store(Path(folder) / "nexusmail.sqlite3") as store:
            await store.write(lambda tx: fill(tx, args.interventions))
            async with store.read() as conn:
                plans = {name: [tuple(r)[-1] for r in await conn.execute_fetchall(
                    "EXPLAIN QUERY PLAN " + sql, params)]
                    for name, sql, params in (
                        ("due steps", DUE_STEPS_SQL, (iso(clock.now()),)),
                        ("new interventions", NEW_INTERVENTIONS_SQL, (5000,)),
                        ("new assignments", NEW_ASSIGNMENTS_SQL, (5000,)))}
            sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
            await sweep.tick()  # warm the caches once
            idle: list[SweepResult] = []
            busy: list[tuple[float, SweepResult]] = []
            step = args.interventions // (args.due * args.rounds)
            for r in range(args.rounds):
                idle.append(await sweep.tick())
                numbers = list(range(1 + r, 1 + r + args.due * args.rounds * step,
                                     step * args.rounds))[:args.due]
                await store.write(partial(make_due, numbers=numbers,
                                          due_at=iso(clock.now() - timedelta(seconds=1))))
                started = clock.monotonic()
                result = await sweep.tick()
                busy.append((clock.monotonic() - started, result))
                assert result.sent == args.due, result
    report(args, plans, idle, busy)


def report(args: argparse.Namespace, plans: dict[str, list[object]],
           idle: list[SweepResult], busy: list[tuple[float, SweepResult]]) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.2f} ms"

    total = [t for t, _ in busy]
    steps = [r.run_s for _, r in busy]
    print(f"# deadline sweep benchmark: {args.interventions:,} open interventions,"
          f" {args.due} due steps per tick, {args.rounds} rounds")
    print(f"# command: python bench/deadline_sweep.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# machine: {platform.processor() or platform.machine()}, {cpu_model()},"
          f" {os.cpu_count()} CPUs; Python {platform.python_version()};"
          f" SQLite {sqlite3.sqlite_version}; {platform.system()} {platform.release()}")
    for name, plan in plans.items():
        print(f"# {name} query plan: {plan}")
    print("medians:")
    idle_total = [r.select_s + r.run_s for r in idle]
    rest = [t - s for t, s in zip(total, steps, strict=True)]
    print(f"  idle tick (nothing due, whole tick)       {ms(idle_total)}")
    print(f"  due tick, index reads                     {ms([r.select_s for _, r in busy])}")
    print(f"  due tick, carrying out the steps (mails)  {ms(steps)}")
    print(f"  due tick, whole                           {ms(total)}")
    print(f"  per step                                  {ms([s / args.due for s in steps])}")
    print(f"  tick apart from the steps                 {ms(rest)}")


if __name__ == "__main__":
    # Only the figures on stdout: the per-step info lines would swamp them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interventions", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
