"""Benchmark (not a test): what matching mail to the customer archive costs ingest.

    python bench/archive_matching.py                  # 10,000 customers, 50,000 machines
    python bench/archive_matching.py --mails 4000 --rounds 3

The real ingest (`Ingest.accept`, parsing in this process, the store's writer, the
acknowledgement queued) takes the same mails into two stores: one empty, one holding
`--customers` customers (each with a mail domain and a contact) and `--equipment`
machines spread over them. The mails are what matching looks at: a quarter from known
contacts with one of their serials in the subject, a quarter from new people at known
domains, a quarter from free mail, a quarter from unknown domains. Printed per round:
the process's CPU time per mail (event loop and writer thread) in each store, and their
ratio (1.00: matching costs nothing that the archive's size makes visible).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sqlite3
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import structlog
from machine import cpu_model

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.clock import SystemClock, iso
from nexusmail.config import Settings
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.paths import blobs_path, database_path
from nexusmail.tickets.store import Store

SUPPORT = "support@firm.test"


def fill(path: Path, customers: int, equipment: int) -> None:
    """The archive, written straight into the store's SQLite file (fast, one commit)."""
    now = iso(SystemClock().now())
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO customers (id, name, tax_id, email, verified, created_at)"
            " VALUES (?, ?, ?, ?, 1, ?)",
            [(n, f"Cliente {n}", f"IT{n:011d}", f"info@cliente{n}.it", now)
             for n in range(1, customers + 1)])
        conn.executemany("INSERT INTO customer_domains (domain, customer_id) VALUES (?, ?)",
                         [(f"cliente{n}.it", n) for n in range(1, customers + 1)])
        conn.executemany(
            "INSERT INTO contacts (customer_id, name, email, verified, created_at)"
            " VALUES (?, ?, ?, 1, ?)",
            [(n, f"Mario {n}", f"mario@cliente{n}.it", now) for n in range(1, customers + 1)])
        conn.executemany(
            "INSERT INTO equipment (customer_id, serial, model, created_at, updated_at)"
            " VALUES (?, ?, 'ecoTEC', ?, ?)",
            [(1 + n % customers, f"SN{n:07d}", now, now) for n in range(equipment)])


def mails(count: int, customers: int, equipment: int, round_no: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        customer = 1 + (n * 7919) % customers
        kind = n % 4
        sender = [f"mario@cliente{customer}.it", f"nuovo{round_no}.{n}@cliente{customer}.it",
                  f"utente{round_no}.{n}@gmail.com", f"x{round_no}.{n}@ignoto{n}.example"][kind]
        serial = f"SN{(customer - 1) % equipment:07d}"
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = SUPPORT
        msg["Subject"] = f"Caldaia {serial} in blocco ({round_no}.{n})"
        msg["Message-ID"] = f"<bench-{round_no}-{n}@example.it>"
        msg.set_content("Buongiorno, la caldaia non parte, codice E133, tel 011 5551234.\n"
                        "Grazie, Mario\n" * 5)
        out.append((sender, msg.as_bytes()))
    return out


async def ingest_all(data_dir: Path, batch: list[tuple[str, bytes]], *, prefill: tuple[int, int]
                     | None) -> float:
    settings = Settings.model_validate({
        "storage": {"data_dir": str(data_dir)}, "mail": {"support_addresses": [SUPPORT]},
        "ingest": {"parse_processes": 0}, "log": {"level": "warning"}})
    async with Store(database_path(settings)) as store:
        if prefill is not None and not await has_customers(store):
            await store.close()
            fill(database_path(settings), *prefill)
            await store.open()
        ingest = Ingest(store, LocalBlobStore(blobs_path(settings)), settings, SystemClock(),
                        reply_keys=[b"k" * 32])
        # CPU time of the whole process (event loop, writer thread): the machine's other
        # load moves wall-clock time far more than it moves this.
        started = time.process_time()
        # Sixteen at a time, as concurrent SMTP sessions would hand them over.
        for start in range(0, len(batch), 16):
            await asyncio.gather(*(ingest.accept(raw, Envelope(sender, [SUPPORT]), "bench")
                                   for sender, raw in batch[start:start + 16]))
        took = time.process_time() - started
        async with store.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT count(*) FROM interventions WHERE equipment_id IS NOT NULL")
        return took, int(next(iter(rows))[0])


async def has_customers(store: Store) -> bool:
    async with store.read() as conn:
        rows = await conn.execute_fetchall("SELECT count(*) FROM customers")
    return bool(next(iter(rows))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--equipment", type=int, default=50_000)
    parser.add_argument("--mails", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
          f"{cpu_model()}; {args.customers} customers, {args.equipment} machines, "
          f"{args.mails} mails per store and round")
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            batch = mails(args.mails, args.customers, args.equipment, round_no)
            # Alternate which store goes first, so a warming machine favours neither.
            order = [("empty", None), ("archive", (args.customers, args.equipment))]
            if round_no % 2:
                order.reverse()
            took, linked = {}, {}
            for name, prefill in order:
                took[name], linked[name] = asyncio.run(
                    ingest_all(Path(tmp) / name, batch, prefill=prefill))
            print(f"round {round_no + 1}: CPU per mail: empty store "
                  f"{1000 * took['empty'] / args.mails:.2f} ms, archive "
                  f"{1000 * took['archive'] / args.mails:.2f} ms, "
                  f"ratio {took['archive'] / took['empty']:.3f}; cases linked to a machine"
                  f" so far: {linked['archive']}")


if __name__ == "__main__":
    main()
