"""Cluster chaos, long run: several daemons on one PostgreSQL and one S3 store, many
mails, several SIGKILLs; then the throughput of one, two and three daemons.

Both phases run tests/support/cluster_chaos.py (the test
tests/integration/test_cluster_chaos.py runs the same code with 200 mails, one kill):

1. chaos: `--daemons` daemons, `--mails` mails sent round-robin with MTA-like retries,
   `--kills` daemons SIGKILLed in turn and restarted; every promise verified (one
   inbound row and one intervention a mail, acknowledgements under one Message-ID with
   copies only within the in-flight bound, attachments in the bucket and verifying);
   `--schedules` schedules due as the daemons start (each opened once) and
   `--imap-mails` of the mails delivered to a Dovecot folder every daemon collects
   (each stored once, the folder's checkpoint never going back);
2. throughput (`--throughput`): the same corpus, no kill, with 1, 2, then 3 daemons:
   mails a second and the daemons' CPU per mail. On a 2-core machine this shows
   contention (daemons, PostgreSQL, the S3 server and the clients share the cores),
   not scale.

The S3 store is moto's server on loopback in this process; PostgreSQL is a throwaway
cluster (`--postgresql auto`, the tests' helper) or an empty database you name.
Prints JSON lines and a table; exit code 1 on any problem.

    python bench/cluster_chaos.py                          # 3000 mails, 5 kills
    python bench/cluster_chaos.py --mails 1000 --kills 3 --throughput
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pg_database
from machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from cluster_chaos import ChaosPlan, ChaosReport, run_cluster_chaos
from dovecot_server import Dovecot, dovecot_binary
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server

FIGURES = [
    ("daemons", lambda r: r.plan.daemons),
    ("mails (with attachment)", lambda r: f"{r.mails} ({r.with_attachment})"),
    ("schedules opened (once each)", lambda r: r.schedules_opened),
    ("mails by IMAP, collected", lambda r: r.imap_collected),
    ("kills (mid-send)", lambda r: f"{r.kills} ({r.kills_mid_send})"),
    ("SMTP attempts / 4xx / dropped", lambda r: f"{r.attempts} / {r.temporary_replies}"
                                                f" / {r.dropped}"),
    ("mails resent by the clients", lambda r: r.mails_resent),
    ("acknowledgements received (copies)", lambda r: f"{r.acks_received}"
                                                     f" ({r.ack_duplicates})"),
    ("kill to its claims sent, s", lambda r: _spread(r.takeover_s)),
    ("blobs gc --grace 0s at the end", lambda r: r.gc_output.partition(": ")[2]),
    ("orphan objects left after it", lambda r: r.orphan_objects),
    ("mails per daemon", lambda r: " ".join(map(str, r.per_daemon_mails.values()))),
    ("mails/s (load)", lambda r: r.mails_per_s),
    ("daemon CPU ms/mail", lambda r: r.daemon_cpu_ms_per_mail),
    ("duration s", lambda r: r.duration_s),
    ("problems", lambda r: len(r.problems)),
]


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values)}-{max(values)} (mean {sum(values) / len(values):.2f})"


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release()}


async def run_phase(name: str, plan: ChaosPlan, new_database: Callable[[], str],
                    s3: S3Server, dovecot: Dovecot | None, keep: bool) -> ChaosReport:
    workdir = Path(tempfile.mkdtemp(prefix=f"nm-cluster-{name}-"))
    try:
        return await run_cluster_chaos(plan, workdir, database_url=new_database(), s3=s3,
                                       bucket=s3.new_bucket(), dovecot=dovecot)
    finally:
        if keep:
            print(f"# {name}: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def table(reports: dict[str, ChaosReport]) -> str:
    lines = ["| figure | " + " | ".join(reports) + " |", "|---" * (len(reports) + 1) + "|"]
    for label, value in FIGURES:
        lines.append(f"| {label} | " + " | ".join(str(value(r)) for r in reports.values())
                     + " |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY_ID  # the daemons inherit them
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
    phases = {"chaos": ChaosPlan(mails=args.mails, daemons=args.daemons, kills=args.kills,
                                 connections=args.connections, seed=args.seed,
                                 down_s=args.down_s, schedules=args.schedules,
                                 imap_mails=args.imap_mails)}
    if args.throughput:
        for daemons in (1, 2, 3):
            phases[f"{daemons} daemon(s)"] = ChaosPlan(
                mails=args.mails, daemons=daemons, kills=0, connections=args.connections,
                seed=args.seed)
    cluster = None
    url = args.postgresql
    if url == "auto":
        from postgres_server import PostgresCluster  # the tests' throwaway cluster

        cluster = await asyncio.to_thread(lambda: PostgresCluster().start())

    def new_database() -> str:
        if cluster is not None:
            return cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
        pg_database.reset(url)  # each phase starts from an empty store
        return str(url)

    print(json.dumps({"machine": machine(),
                      "command": "python bench/cluster_chaos.py " + shlex.join(sys.argv[1:])}))
    reports: dict[str, ChaosReport] = {}
    try:
        with s3_server() as s3, contextlib.ExitStack() as stack:
            dovecot = (stack.enter_context(Dovecot())
                       if args.imap_mails and dovecot_binary() is not None else None)
            for name, plan in phases.items():
                print(f"# {name}: {plan.mails} mails, {plan.daemons} daemons, "
                      f"{plan.kills} kills ...", file=sys.stderr, flush=True)
                reports[name] = await run_phase(name, plan, new_database, s3, dovecot,
                                                args.keep)
                print(json.dumps({"phase": name, **reports[name].summary()}), flush=True)
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
    print(table(reports))
    failed = [f"{name}: {p}" for name, r in reports.items() for p in r.problems]
    for line in failed:
        print("PROBLEM", line)
    return 1 if failed else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--down-s", type=float, default=1.0,
                        help="how long a killed daemon stays down before its restart")
    parser.add_argument("--schedules", type=int, default=1000,
                        help="schedules due as the daemons start (chaos phase)")
    parser.add_argument("--imap-mails", type=int, default=200,
                        help="of the mails, how many arrive by a Dovecot folder (chaos phase;"
                             " 0 or no dovecot installed: none)")
    parser.add_argument("--throughput", action="store_true",
                        help="then 1, 2 and 3 daemons without kills")
    parser.add_argument("--postgresql", default="auto",
                        help="'auto' (a throwaway cluster) or the URL of an empty database")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
