"""Crash safety, long run: many SIGKILLs of the real daemon under load, then verify.

Two phases on fresh data dirs, both with tests/support/crash_cycles.py (the test
tests/integration/test_crash_safety.py runs the same code for a few cycles):

1. random kills: C connections send mails with unique Message-IDs; the daemon's
   process group gets SIGKILL after a random delay, is restarted on the same data dir,
   and so on for N cycles; the relay sink holds each 250 a little, so some kills land
   while the outbox is sending;
2. mid-send kills: the sink holds its 250 longer and every kill waits for a held mail.

After each kill the database is checked for half-stored mail; at the end every mail
must be stored once, every acknowledgement sent under one Message-ID. Prints the
figures and the machine as JSON lines and a short table; exit code 1 on any problem.

    python bench/crash_safety.py                       # 50 + 20 cycles
    python bench/crash_safety.py --cycles 10 --mid-send-cycles 5 --keep
    python bench/crash_safety.py --database-url postgresql://bench@127.0.0.1:5432/bench
                                                       # the daemon on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import pg_database
from machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from crash_cycles import CrashPlan, CrashReport, run_crash_cycles

FIGURES = [
    ("cycles (kills)", "kills"),
    ("mails", "mails"),
    ("kills mid-DATA (a client inside DATA)", "kills_mid_data"),
    ("kills mid-send (the relay held a mail)", "kills_mid_send"),
    ("mails resent by the clients", "mails_resent"),
    ("  of which committed before the kill (250 lost)", "stored_without_250"),
    ("  answered as duplicates at ingest", "duplicates_acked_at_ingest"),
    ("acknowledgements queued", "acks_expected"),
    ("acknowledgements received at the sink", "acks_received"),
    ("  copies beyond the first (same Message-ID)", "ack_duplicates"),
    ("daemon start, mean s", "start_s_mean"),
    ("duration s", "duration_s"),
    ("problems", "problems"),
]


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "kernel": platform.release()}


async def run_phase(name: str, plan: CrashPlan, keep: bool) -> CrashReport:
    workdir = Path(tempfile.mkdtemp(prefix=f"nm-crash-{name}-"))
    if plan.database_url:
        pg_database.reset(plan.database_url)  # each phase starts from an empty store
    try:
        report = await run_crash_cycles(plan, workdir)
    finally:
        if keep:
            print(f"# {name}: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def table(reports: dict[str, CrashReport]) -> str:
    names = list(reports)
    lines = ["| figure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key in FIGURES:
        values = []
        for report in reports.values():
            value = getattr(report, key)
            values.append(str(len(value)) if isinstance(value, list) else str(value))
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    phases = {
        "random": CrashPlan(cycles=args.cycles, connections=args.connections,
                            kill_after_s=(args.kill_min_s, args.kill_max_s),
                            sink_delay_s=args.sink_delay_s, parse_processes=args.parse_processes,
                            seed=args.seed, database_url=args.database_url or ""),
        "mid-send": CrashPlan(cycles=args.mid_send_cycles, connections=2, kill_mid_send=True,
                              kill_after_s=(0.0, 0.1), sink_delay_s=0.3,
                              max_mails=args.mid_send_cycles * 8,
                              parse_processes=args.parse_processes, seed=args.seed + 1,
                              database_url=args.database_url or ""),
    }
    store = ({"postgresql": pg_database.server_version(args.database_url)}
             if args.database_url else {})
    print(json.dumps({"machine": {**machine(), **store},
                      "command": "python bench/crash_safety.py " + shlex.join(sys.argv[1:])}))
    reports: dict[str, CrashReport] = {}
    for name, plan in phases.items():
        if plan.cycles == 0:
            continue
        print(f"# {name}: {plan.cycles} cycles ...", file=sys.stderr, flush=True)
        reports[name] = await run_phase(name, plan, args.keep)
        print(json.dumps({"phase": name, **reports[name].summary()}), flush=True)
    print(table(reports))
    failed = [f"{name}: {p}" for name, r in reports.items() for p in r.problems]
    for line in failed:
        print("PROBLEM", line)
    return 1 if failed else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50, help="random kills")
    parser.add_argument("--mid-send-cycles", type=int, default=20, help="kills mid-send")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--kill-min-s", type=float, default=0.2)
    parser.add_argument("--kill-max-s", type=float, default=1.5)
    parser.add_argument("--sink-delay-s", type=float, default=0.05,
                        help="how long the relay holds each 250 in the random phase")
    parser.add_argument("--parse-processes", type=int, default=1,
                        help="the daemon's parse workers (killed with its process group)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    parser.add_argument("--database-url", metavar="postgresql://USER@HOST:PORT/DB",
                        help="run the daemon on this PostgreSQL database; EVERYTHING IN IT "
                             "IS DROPPED before each phase (password from PGPASSWORD or "
                             "~/.pgpass)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
