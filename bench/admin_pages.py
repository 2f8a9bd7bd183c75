"""Admin page latency with 100,000 interventions and 1,000,000 messages.

Builds the store in bulk straight into SQLite (through the real migrations, so the FTS
triggers and indexes are the ones the daemon uses), starts the real daemon on it in its
own process (`python -m nexusmail run`), logs in as an operator over loopback and times
sequential GETs of the list (plain, filtered, searched, a deep page) and of thread pages
(a typical one, and one of 500 messages). Prints p50/p95/max per request kind with the
machine and the command. Target: p95 < 50 ms.

    python bench/admin_pages.py                        # 100k / 1M, 200 requests per kind
    python bench/admin_pages.py --interventions 20000 --requests 100
    python bench/admin_pages.py --keep                 # reuse the generated store next time

The generated store is cached in bench/out/admin-<interventions>/ (not committed).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from machine import cpu_model

from nexusmail.tickets.operators import hash_password
from nexusmail.tickets.store import connect, migrate

OUT = Path(__file__).resolve().parent / "out"
PASSWORD = "bench operator passphrase"  # noqa: S105 (a throwaway bench store)
BIG_THREAD = 500
RARE_WORD = "ventilconvettore"      # in about 1 of 10,000 messages
WORDS = (  # noqa: SIM905 (reads as the text it is)
    "caldaia blocco errore pressione acqua calda radiatore termostato valvola pompa "
    "perdita bruciatore manutenzione controllo fumi libretto impianto tecnico giovedì "
    "mattina pomeriggio preventivo ricambio ordinato consegna fattura contratto "
    "centrală termică instalație reparație programare defect presiune apă caldă "
    "boiler heating leak service visit tomorrow morning replaced part invoice quote"
).split()
KINDS = ("customer_mail", "acknowledgement", "assignment_mail", "technician_reply", "note",
         "outbound_mail")


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(db: Path, interventions: int, messages_per: int, seed: int = 7) -> int:
    """Fill the store; return the number of the 500-message thread."""
    rng = random.Random(seed)
    conn = connect(db)
    migrate(conn)
    conn.execute("PRAGMA synchronous = OFF")  # a bench fixture: durability not needed
    start = datetime(2024, 1, 1, tzinfo=UTC)
    stamp = start.isoformat(timespec="seconds")
    customers = max(1, interventions // 20)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers (id, name, email, verified, created_at) VALUES (?, ?, ?, 1, ?)",
        [(c, f"Cliente {c} Srl", f"cliente{c}@example.it", stamp)
         for c in range(1, customers + 1)])
    conn.executemany(
        "INSERT INTO contacts (id, customer_id, email, created_at) VALUES (?, ?, ?, ?)",
        [(c, c, f"cliente{c}@example.it", stamp) for c in range(1, customers + 1)])
    conn.executemany(
        "INSERT INTO employees (id, email, name, language, created_at) VALUES (?, ?, ?, ?, ?)",
        [(e, f"tecnico{e}@firm.it", f"Tecnico {e}", "it", stamp) for e in range(1, 31)])
    big = interventions // 2
    types = ["Guasto", "Installazione", "Manutenzione", "Service schedule", ""]
    message_id = 0
    for base in range(1, interventions + 1, 5000):
        rows, msgs, assigns = [], [], []
        for number in range(base, min(base + 5000, interventions + 1)):
            when = (start + timedelta(minutes=5 * number)).isoformat(timespec="seconds")
            customer = rng.randint(1, customers)
            status = "open" if number > interventions * 0.9 or rng.random() < 0.05 else "closed"
            rows.append((number, customer, customer, rng.choice(types),
                         text(rng, 4).capitalize(), text(rng, 25), status, "email", when,
                         when))
            if rng.random() < 0.9:
                assigns.append((number, rng.randint(1, 30),
                                rng.choice(["confirmed"] * 8 + ["pending", "rejected"]), when))
            count = BIG_THREAD if number == big else messages_per
            for k in range(count):
                message_id += 1
                body = text(rng, rng.randint(8, 30))
                if rng.random() < 0.0001:
                    body += " " + RARE_WORD
                kind = KINDS[k % len(KINDS)] if k else "customer_mail"
                msgs.append((message_id, number, kind, "in" if kind in (
                    "customer_mail", "technician_reply") else "out", body, when,
                    "confirmed" if kind == "technician_reply" else None))
        conn.executemany(
            "INSERT INTO interventions (number, customer_id, contact_id, request_type,"
            " subject, description, status, source, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO assignments (intervention_number, employee_id, status, created_at)"
            " VALUES (?, ?, ?, ?)", assigns)
        conn.executemany(
            "INSERT INTO messages (id, intervention_number, kind, direction, body_text,"
            " created_at, verdict) VALUES (?, ?, ?, ?, ?, ?, ?)", msgs)
        print(f"  generated {min(base + 4999, interventions)} interventions,"
              f" {message_id} messages", file=sys.stderr)
    conn.execute(
        "INSERT INTO operators (email, name, password_hash, created_at, updated_at)"
        " VALUES ('bench@firm.it', 'Bench', ?, ?, ?)", (hash_password(PASSWORD), stamp, stamp))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return big


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_daemon(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    config = data_dir / "bench.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{data_dir.as_posix()}"\n[smtp]\nport = 0\n'
        f'[web]\nport = {port}\n[log]\nlevel = "warning"\n', encoding="utf-8")
    log = (data_dir / "daemon.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "nexusmail", "--config", str(config), "run"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def log_in(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            form = client.get("/login")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "login form"
    reply = client.post("/login", data={"csrf_token": token.group(1), "email": "bench@firm.it",
                                        "password": PASSWORD, "next": "/"})
    assert reply.status_code == 303, reply.text


def timed(client: httpx.Client, paths: Iterator[str], n: int) -> list[float]:
    for _ in range(10):  # warm-up: templates, SQLite page cache, connection
        assert client.get(next(paths)).status_code == 200
    samples = []
    for _ in range(n):
        path = next(paths)
        started = time.perf_counter()
        reply = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, (path, reply.status_code)
    return samples


def cycle(rng: random.Random, make: object) -> Iterator[str]:
    while True:
        yield make(rng) if callable(make) else str(make)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--interventions", type=int, default=100_000)
    parser.add_argument("--messages-per", type=int, default=10,
                        help="messages per intervention (one thread has 500)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--keep", action="store_true", help="reuse a generated store")
    args = parser.parse_args(argv)

    data_dir = OUT / f"admin-{args.interventions}x{args.messages_per}"
    db = data_dir / "nexusmail.sqlite3"
    marker = data_dir / "generated"
    if not (args.keep and marker.exists()):
        if data_dir.exists():
            for path in sorted(data_dir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        big = generate(db, args.interventions, args.messages_per)
        marker.write_text(str(big))
        print(f"generated in {time.monotonic() - started:.0f} s,"
              f" {db.stat().st_size / 2**20:.0f} MB", file=sys.stderr)
    big = int(marker.read_text())
    n = args.interventions
    rng = random.Random(11)
    kinds: list[tuple[str, object]] = [
        ("GET / (first page)", "/"),
        ("GET /?status=open", "/?status=open"),
        ("GET /?attention=unassigned", "/?attention=unassigned"),
        ("GET /?q=<rare word>", f"/?q={RARE_WORD}"),
        ("GET /?q=<common word>", "/?q=caldaia"),
        ("GET /?customer=..&status=closed", lambda r: f"/?customer=cliente{r.randint(1, n // 20)}"
                                                       "%40&status=closed"),
        ("GET /?before=<deep page>", lambda r: f"/?before={r.randint(1, n)}"),
        ("GET /interventions/N (~10 msgs)", lambda r: f"/interventions/{r.randint(1, n)}"),
        (f"GET /interventions/{big} ({BIG_THREAD} msgs)", f"/interventions/{big}"),
    ]
    port = free_port()
    proc = start_daemon(data_dir, port)
    results = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            log_in(client)
            for label, make in kinds:
                samples = timed(client, cycle(rng, make), args.requests)
                q = statistics.quantiles(samples, n=100)
                results.append((label, q[49], q[94], max(samples)))
    finally:
        stop_daemon(proc)
    messages = args.interventions * args.messages_per + BIG_THREAD - args.messages_per
    print(f"\nAdmin page latency: {args.interventions:,} interventions, {messages:,} messages,"
          f" {args.requests} sequential requests per kind over loopback")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" SQLite {__import__('sqlite3').sqlite_version}")
    print(f"command: python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}".rstrip())
    print("\n| request | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for label, p50, p95, worst in results:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
