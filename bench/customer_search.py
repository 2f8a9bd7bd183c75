"""Benchmark (not a test): the customer search (`GET /api/v1/customers?q=`) at a large
archive.

    python bench/customer_search.py                          # 100,000 customers, SQLite
    python bench/customer_search.py --postgresql auto        # and a throwaway PostgreSQL
    python bench/customer_search.py --postgresql postgresql://... --customers 20000

Seeds an empty store (SQLite in a temporary directory; PostgreSQL: `auto` starts a
cluster as the tests do, or give the URL of an empty database) with N customers, each
with one contact and one mail domain, then runs the search the API runs
(nexusmail.records.customer_search, first page of 50) for a fixed, seeded mix of what
operators type: part of a name, a tax id, an email, a phone, a contact's name, a word
every customer has, and text nobody has. Prints p50, p95 and max per kind and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine import cpu_model

from nexusmail.records.customer_search import search_customers
from nexusmail.storage.connections import Storage
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.store import Store

NOW = "2026-12-04T06:00:00+00:00"
TEST_SUPPORT = Path(__file__).resolve().parents[1] / "tests" / "support"
BATCH = 5_000


def queries(customers: int, per_kind: int, seed: int) -> list[tuple[str, str]]:
    """(kind, text) pairs, shuffled with `seed` so both stores get the same ones."""
    pick = random.Random(seed)

    def some(make: Callable[[int], str]) -> list[str]:
        return [make(pick.randrange(customers)) for _ in range(per_kind)]

    mix = {
        "name": some(lambda n: f"Termoidraulica {n}"),
        "tax id": some(lambda n: f"{n:011d}"[-7:]),
        "email": some(lambda n: f"amministrazione{n}@"),
        "phone": some(lambda n: f"{n:07d}"[:5]),
        "contact": some(lambda n: f"Bianchi {n}"),
        "everyone": ["srl"] * per_kind,
        "nobody": ["zzqx-nessuno"] * per_kind,
    }
    pairs = [(kind, text) for kind, texts in mix.items() for text in texts]
    pick.shuffle(pairs)
    return pairs


async def seed(store: Storage, customers: int) -> float:
    started = time.perf_counter()
    for first in range(0, customers, BATCH):
        ids = range(first + 1, min(first + BATCH, customers) + 1)

        def unit(tx: Any, ids: range = ids) -> None:
            tx.executemany(
                "INSERT INTO customers (id, name, tax_id, address, phone, email, verified,"
                " notes, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, '', ?)",
                [(n, f"Termoidraulica {n} Srl", f"IT{n:011d}", f"Via Roma {n}, Milano",
                  f"+39 02 {n:07d}", f"amministrazione{n}@cliente{n}.it", NOW) for n in ids])
            tx.executemany(
                "INSERT INTO contacts (customer_id, name, email, phone, verified, created_at)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                [(n, f"Mario Bianchi {n}", f"mario{n}@cliente{n}.it", f"333 {n:07d}", NOW)
                 for n in ids])
            tx.executemany("INSERT INTO customer_domains (domain, customer_id) VALUES (?, ?)",
                           [(f"cliente{n}.it", n) for n in ids])

        await store.write(unit)
    if isinstance(store, PgStore):
        await store.write(lambda tx: tx.execute("ANALYZE"))
    return time.perf_counter() - started


async def measure(store: Storage, pairs: list[tuple[str, str]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    async with store.read() as conn:
        await search_customers(conn, "warm-up")
        for kind, text in pairs:
            started = time.perf_counter()
            await search_customers(conn, text, limit=50)
            times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, seconds: float, customers: int, times: dict[str, list[float]]) -> None:
    def line(label: str, values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        return (f"| {label} | {len(values)} | {statistics.median(ordered):.1f} | {p95:.1f}"
                f" | {ordered[-1]:.1f} |")

    print(f"\n{name}: {customers:,} customers seeded in {seconds:.1f} s")
    print("| query | n | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    for kind, values in times.items():
        print(line(kind, values))
    print(line("all", [v for values in times.values() for v in values]))


async def run(args: argparse.Namespace) -> None:
    pairs = queries(args.customers, args.per_kind, args.seed)
    print(f"machine: {cpu_model()}, Python {platform.python_version()}; "
          f"{len(pairs)} searches, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="nm-search-") as tmp:
        async with Store(Path(tmp) / "nexusmail.sqlite3") as lite:
            took = await seed(lite, args.customers)
            report("SQLite", took, args.customers, await measure(lite, pairs))
    if args.postgresql:
        await run_postgresql(args, pairs)


async def run_postgresql(args: argparse.Namespace, pairs: list[tuple[str, str]]) -> None:
    cluster = None
    url = args.postgresql
    if url == "auto":
        sys.path.insert(0, str(TEST_SUPPORT))
        from postgres_server import PostgresCluster  # the tests' throwaway cluster

        cluster = await asyncio.to_thread(lambda: PostgresCluster().start())
        url = await asyncio.to_thread(cluster.create_database, "nm_search_bench")
    try:
        async with PgStore(url) as pg:
            took = await seed(pg, args.customers)
            report("PostgreSQL", took, args.customers, await measure(pg, pairs))
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--per-kind", type=int, default=30, help="searches of each kind")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--postgresql", default="",
                        help="'auto' (a throwaway cluster) or the URL of an empty database")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
