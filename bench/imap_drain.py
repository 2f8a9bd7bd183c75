"""Benchmark (not a test): drain an IMAP mailbox of N bench-corpus mails into interventions.

A throwaway Dovecot (tests/support/dovecot_server.py) gets N mails of bench/corpus.py by
APPEND (not timed); then a fresh nexusmail daemon (`serve`, in this process) with one
[[imap.accounts]] collects them: fetch by UID, accept (parse, commit, outbox row), move
to nexusmail/processed. The clock runs from the daemon's start until every mail is in the
inbound log and the INBOX is empty.

    python bench/imap_drain.py                    # 2,000 mails
    python bench/imap_drain.py --mails 300 --keep # keep the data dir to look at
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus import DEFAULT_SEED, SUPPORT_ADDRESS, build
from procs import CLK_TCK
from smtp_ingest import machine_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from dovecot_server import ANY_USER_PASSWORD, Dovecot, new_user

from nexusmail.config import Settings
from nexusmail.daemon import Running, serve
from nexusmail.logs import configure_logging


def load_mailbox(dovecot: Dovecot, user: str, mails: list[bytes]) -> float:
    started = time.monotonic()
    with dovecot.client(user) as client:
        for raw in mails:
            client.append("INBOX", raw)
    return time.monotonic() - started


def group_cpu_s(pgid: int) -> dict[int, float]:
    """utime+stime of each live process of a group, by pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            text = Path(f"/proc/{entry}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()  # comm may hold spaces
            if int(fields[2]) == pgid:
                out[int(entry)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def count_inbound(db: Path) -> tuple[int, dict[str, int]]:
    if not db.exists():
        return 0, {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            rows = conn.execute("SELECT outcome, count(*) FROM inbound GROUP BY outcome")
            outcomes = {str(k): int(v) for k, v in rows}
        except sqlite3.OperationalError:  # not migrated yet
            return 0, {}
    return sum(outcomes.values()), outcomes


async def drain(dovecot: Dovecot, user: str, data_dir: Path, total: int,
                timeout_s: float) -> dict[str, Any]:
    settings = Settings.model_validate({
        "storage": {"data_dir": str(data_dir)},
        "smtp": {"port": 0}, "web": {"port": 0},
        "mail": {"support_addresses": [SUPPORT_ADDRESS], "company_name": "Bench"},
        "log": {"level": "warning"},
        "imap": {"accounts": [{"name": "bench", "host": dovecot.host, "port": dovecot.port,
                               "tls": "none", "username": user,
                               "password": ANY_USER_PASSWORD}]},
    })
    db = data_dir / "nexusmail.sqlite3"
    stop = asyncio.Event()
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    assert dovecot.proc is not None
    dovecot_pgid = dovecot.proc.pid  # its own session: the group holds every imap process
    cpu_before, dovecot_before = os.times(), group_cpu_s(dovecot_pgid)
    started = time.monotonic()
    task = asyncio.create_task(serve(settings, stop=stop, on_ready=ready.set_result))
    stored_at = None
    try:
        while True:
            await asyncio.sleep(0.1)
            if task.done():
                task.result()
            stored, outcomes = await asyncio.to_thread(count_inbound, db)
            if stored >= total and stored_at is None:
                stored_at = time.monotonic()
            if stored_at is not None and dovecot.status(user)["messages"] == 0:
                moved_at = time.monotonic()
                # Before the stop: Dovecot's imap process of our session is still alive.
                cpu_after, dovecot_after = os.times(), group_cpu_s(dovecot_pgid)
                break
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"only {stored} of {total} stored after {timeout_s} s")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return {
        "mails": total,
        "stored_s": round(stored_at - started, 2),
        "drained_s": round(moved_at - started, 2),
        "mails_per_s": round(total / (moved_at - started), 1),
        "daemon_process_cpu_ms_per_mail": round(
            ((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system))
            * 1000 / total, 2),
        "dovecot_cpu_ms_per_mail": round(
            # processes alive at the end (our imap session among them), their CPU since
            # the start; the APPEND session's process has exited by then
            sum(cpu - dovecot_before.get(pid, 0.0) for pid, cpu in dovecot_after.items())
            * 1000 / total, 2),
        "outcomes": outcomes,
        "processed_folder": dovecot.status(user, "nexusmail.processed")["messages"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the daemon's data dir")
    args = parser.parse_args(argv)
    configure_logging("warning", "console")  # serve() leaves logging to its caller
    mails = build(args.mails, args.seed).load()
    data_dir = Path(tempfile.mkdtemp(prefix="nm-imap-bench-"))
    try:
        with Dovecot() as dovecot:
            user = new_user()
            load_s = load_mailbox(dovecot, user, mails)
            result = asyncio.run(drain(dovecot, user, data_dir, len(mails), args.timeout))
    finally:
        if args.keep:
            print(f"data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    result["append_s"] = round(load_s, 2)
    result["bytes_total"] = sum(len(m) for m in mails)
    report = {"command": "python bench/" + " ".join(
        shlex.quote(a) for a in [Path(__file__).name, *(argv or sys.argv[1:])]),
        "machine": machine_info(), "result": result}
    print(json.dumps(report, indent=2))
    print(f"\nIMAP drain: {result['mails']} mails in {result['drained_s']} s = "
          f"{result['mails_per_s']} mails/s (stored after {result['stored_s']} s; "
          f"daemon process {result['daemon_process_cpu_ms_per_mail']} ms CPU/mail, parse "
          f"workers not counted; dovecot {result['dovecot_cpu_ms_per_mail']} ms CPU/mail)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
