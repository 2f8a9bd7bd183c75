"""SMTP ingest benchmark: nexusmail against a stock aiosmtpd no-op server, interleaved.

For each round and each connection count, the same corpus is sent by the load client
(its own process) to a stock aiosmtpd server that answers 250 at once, and to a fresh
nexusmail daemon (fresh data dir, its acknowledgements going to a counting sink). The
two runs sit next to each other so that a shared machine's drift hits both alike; the
order alternates per round.

    python bench/smtp_ingest.py                       # 2,000 mails, 8 and 32 connections, 2 rounds
    python bench/smtp_ingest.py --mails 2000 --rounds 1
    python bench/smtp_ingest.py --servers stock       # the baseline only
    python bench/smtp_ingest.py --database-url postgresql://bench@127.0.0.1:5432/bench
                                                      # and the daemon on PostgreSQL too
    python bench/smtp_ingest.py --profile             # one daemon run under cProfile, top costs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import pstats
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import pg_database
from corpus import DEFAULT_MAILS, DEFAULT_SEED, SUPPORT_ADDRESS, Corpus, build, corpus_paths
from machine import cpu_model
from procs import Child, Children, group_cpu_by_process, group_usage, thread_cpu

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"

READY_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 1800.0
# The outbox sends acknowledgements after the 250s; wait for them, but not forever.
ACK_DRAIN_TIMEOUT_S = 300.0
ACK_IDLE_TIMEOUT_S = 20.0
POLL_S = 0.1

# The targets the ingest path was built to, checked at the highest connection count.
TARGET_RATIO = 0.6
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 150.0
# The daemon on PostgreSQL (a server a round trip away, not a file) against SQLite.
TARGET_PG_RATIO = 0.5
TARGET_PG_P99_MS = 250.0

# The servers a run can compare: the no-op baseline, the daemon on SQLite (its data
# dir) and the daemon on PostgreSQL (--database-url).
STOCK, SQLITE, POSTGRESQL = "stock", "nexusmail", "nexusmail-pg"
DAEMONS = (SQLITE, POSTGRESQL)

STORED_OUTCOMES = ("new_request", "follow_up")


@dataclass
class RunResult:
    server: str  # STOCK | SQLITE | POSTGRESQL
    connections: int
    round: int
    load: dict[str, Any]
    cpu_s: float  # server CPU (utime+stime, its whole process group) during the load
    rss_mb: float  # VmHWM at the end, summed over the group's processes
    processes: int
    main_rss_mb: float = 0.0  # VmHWM of the server's own process
    pss_mb: float = 0.0  # Pss at the end, summed over the group (shared pages once)
    exit_code: int | None = None
    stop_s: float | None = None
    # nexusmail only
    cpu_s_with_drain: float | None = None  # including the outbox sending the acks
    outcomes: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    acks: int | None = None
    # Seconds from the end of the load until the sink had every ack (polled each 0.25 s):
    # the outbox yields to ingest ([outbound] yield_to_ingest_s), so acks trail a burst.
    acks_drain_s: float | None = None
    stored_ok: bool | None = None
    log_problems: list[str] = field(default_factory=list)
    thread_cpu_s: dict[str, float] = field(default_factory=dict)  # --thread-cpu only
    process_cpu_s: dict[str, float] = field(default_factory=dict)  # --thread-cpu only

    @property
    def mails_ok(self) -> int:
        return int(self.load["ok"])

    @property
    def cpu_ms_per_mail(self) -> float:
        return 1000.0 * self.cpu_s / max(1, self.load["mails"])


@dataclass(frozen=True)
class Plan:
    corpus: Corpus
    index_path: Path
    client: str
    work_dir: Path
    keep: bool
    # A `git archive` export of --daemon-rev to run instead of the working tree.
    daemon_tree: Path | None = None
    # [ingest] parse_processes for the daemon; None leaves the daemon's default.
    parse_processes: int | None = None
    # The database the POSTGRESQL runs use (emptied before each), or None.
    database_url: str | None = None


# --- machine and command ---------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    model = cpu_model()
    mem_gb = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    versions = {}
    for package in ("aiosmtpd", "aiosmtplib", "aiosqlite", "nexusmail"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
        "git": _git_revision(),
    }


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nexusmail"],
                               cwd=REPO_DIR, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (nexusmail/ has uncommitted changes)" if dirty else "")


def _short_rev(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO_DIR,
                          capture_output=True, text=True, check=True).stdout.strip()


def export_revision(rev: str, dest: Path) -> Path:
    """The `nexusmail` package as committed at `rev`, read-only from git (no checkout)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "nexusmail"],
                             cwd=REPO_DIR, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def command_line() -> str:
    # Relative to the repository, so nothing machine-specific lands in RESULTS.md.
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_DIR)
    return shlex.join(["python", str(script), *sys.argv[1:]])


# --- processes ---------------------------------------------------------------------------

def free_port() -> int:
    # Racy in theory (the port is free when asked, not when used); fine on loopback.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_event(child: Child, event: str, timeout_s: float = READY_TIMEOUT_S,
                   smtp_port: int | None = None) -> dict[str, Any]:
    """The first JSON log line of `child` with this event; or, given `smtp_port`, a 220."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in child.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    return record
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode} before "
                               f"{event!r}:\n{child.log_text()[-3000:]}")
        if smtp_port is not None and _smtp_greets(smtp_port):
            return {"event": "smtp.220"}
        time.sleep(POLL_S)
    raise TimeoutError(f"{child.name}: no {event!r} within {timeout_s:.0f}s:\n"
                       f"{child.log_text()[-3000:]}")


def _smtp_greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
            return greeting.startswith(b"220")
    except OSError:
        return False


def run_load(children: Children, plan: Plan, port: int, connections: int,
             run_dir: Path) -> dict[str, Any]:
    client = children.start(
        "load client",
        [sys.executable, str(BENCH_DIR / "load_client.py"), "--index", str(plan.index_path),
         "--port", str(port), "--connections", str(connections), "--client", plan.client],
        run_dir / "load.log", stdout_pipe=True)
    try:
        out, _ = client.proc.communicate(timeout=LOAD_TIMEOUT_S)
    finally:
        client.stop()
    if client.exit_code != 0:
        raise RuntimeError(f"load client failed with {client.exit_code}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# --- one run per server -------------------------------------------------------------------

def run_stock(children: Children, plan: Plan, connections: int, round_no: int,
              server: str = STOCK) -> RunResult:
    run_dir = plan.work_dir / f"stock-c{connections}-r{round_no}"
    run_dir.mkdir()
    server = children.start(
        "stock server", [sys.executable, str(BENCH_DIR / "stock_server.py"), "--port", "0"],
        run_dir / "server.log")
    try:
        port = int(wait_for_event(server, "stock.started")["port"])
        before = group_usage(server.pgid)
        load = run_load(children, plan, port, connections, run_dir)
        after = group_usage(server.pgid)
    finally:
        server.stop()
    return RunResult(STOCK, connections, round_no, load, after.cpu_s - before.cpu_s,
                     after.hwm_mb, after.processes, after.leader_hwm_mb, after.pss_mb,
                     server.exit_code, server.stop_s)


def write_config(path: Path, data_dir: Path, smtp_port: int, web_port: int,
                 sink_port: int, connections: int, parse_processes: int | None,
                 database_url: str | None = None, daemon_tree: Path | None = None) -> None:
    # All the load comes from one address: the per-address connection cap must let every
    # connection of the run in (older daemons without the key would refuse it).
    per_ip = f"max_connections_per_ip = {connections}\n" if connections > 20 else ""
    ingest = f"[ingest]\nparse_processes = {parse_processes}\n" if parse_processes else ""
    path.write_text(
        "[storage]\n"
        f"data_dir = {json.dumps(str(data_dir))}\n"
        + (f"database_url = {json.dumps(database_url)}\n" if database_url else "") +
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {smtp_port}\n"
        f"{per_ip}"
        "[web]\n"
        'host = "127.0.0.1"\n'
        f"port = {web_port}\n"
        "[mail]\n"
        f"support_addresses = [{json.dumps(SUPPORT_ADDRESS)}]\n"
        f"{_loop_guard_off(daemon_tree)}"
        "[outbound]\n"
        'host = "127.0.0.1"\n'
        f"port = {sink_port}\n"
        f"{ingest}"
        "[log]\n"
        'level = "warning"\n')


def _loop_guard_off(daemon_tree: Path | None) -> str:
    """The corpus is days of traffic sent in seconds, a few hundred customers per domain:
    the acknowledgement budgets and the loop guard would read it as a flood. Off, where
    the daemon under test knows the keys (an older one would refuse them): the config
    module of the tree it runs from says (an exported revision's, or this checkout's)."""
    source = (daemon_tree or REPO_DIR) / "nexusmail" / "config.py"
    try:
        knows = "mute_after_new_cases" in source.read_text(encoding="utf-8")
    except OSError:
        return ""
    if not knows:
        return ""
    return ("max_acks_per_hour_per_domain = 1000000\nmax_acks_per_hour_total = 1000000\n"
            "mute_after_new_cases = 0\nmute_domain_after_new_cases = 0\n")


def _database_path(data_dir: Path) -> Path:
    try:
        from nexusmail.paths import DATABASE_NAME
    except ImportError:
        DATABASE_NAME = "nexusmail.sqlite3"
    return data_dir / DATABASE_NAME


class StoreReads:
    """The harness's own reads of a daemon's store: its SQLite file (read-only) or its
    PostgreSQL database; the SQL is the same on both."""

    def __init__(self, db_path: Path, database_url: str | None) -> None:
        self.db_path = db_path
        self.database_url = database_url

    def connect(self) -> Any:
        if self.database_url:
            return pg_database.connect(self.database_url)
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)


def quarantine_reasons(store: StoreReads) -> list[str]:
    conn = store.connect()
    try:
        rows = conn.execute("SELECT reason, count(*) FROM inbound WHERE outcome = 'quarantined'"
                            " GROUP BY reason ORDER BY 2 DESC LIMIT 3").fetchall()
    finally:
        conn.close()
    return [f"{count}× {reason[:200]}" for reason, count in rows]


def query_store(store: StoreReads) -> tuple[dict[str, int], dict[str, int]]:
    """(inbound outcomes, outbox statuses), read-only while the daemon runs."""
    conn = store.connect()
    try:
        outcomes = dict(conn.execute(
            "SELECT outcome, count(*) FROM inbound GROUP BY outcome").fetchall())
        outbox = dict(conn.execute(
            "SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    finally:
        conn.close()
    return outcomes, outbox


def _sink_messages(count_file: Path) -> int:
    try:
        return int(json.loads(count_file.read_text())["messages"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_acks(store: StoreReads, count_file: Path
                  ) -> tuple[dict[str, int], dict[str, int], int]:
    """Wait until the sink has one ack per new request, or progress stops."""
    deadline = time.monotonic() + ACK_DRAIN_TIMEOUT_S
    last_change = time.monotonic()
    last = -1
    while True:
        outcomes, outbox = query_store(store)
        acks = _sink_messages(count_file)
        expected = outcomes.get("new_request", 0)
        if acks >= expected and outbox.get("pending", 0) == 0:
            return outcomes, outbox, acks
        now = time.monotonic()
        if acks != last:
            last, last_change = acks, now
        if now > deadline or now - last_change > ACK_IDLE_TIMEOUT_S:
            print(f"  acks: stopped waiting at {acks}/{expected} (outbox {outbox})",
                  file=sys.stderr, flush=True)
            return outcomes, outbox, acks
        time.sleep(0.25)


def _log_problems(log_text: str) -> list[str]:
    problems = []
    for line in log_text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("level") in ("warning", "error",
                                                                      "critical"):
                problems.append(f"{record.get('level')}: {record.get('event')}")
    return problems


def _cpu_by_thread_name(before: dict[int, float], after: dict[int, float],
                        threads_file: Path) -> dict[str, float]:
    names: dict[int, str] = {}
    for line in threads_file.read_text().splitlines():
        record = json.loads(line)
        # "asyncio_3" and "asyncio_0" are the same pool: group by the name's stem.
        names[int(record["native_id"])] = record["name"].rstrip("0123456789").rstrip("_-")
    out: dict[str, float] = {}
    for tid, cpu_s in after.items():
        name = names.get(tid, "unnamed (not started through threading)")
        out[name] = out.get(name, 0.0) + cpu_s - before.get(tid, 0.0)
    return {name: round(cpu_s, 2) for name, cpu_s in sorted(out.items(), key=lambda x: -x[1])}


def run_nexusmail(children: Children, plan: Plan, connections: int, round_no: int,
                  server: str = SQLITE, profile_out: Path | None = None,
                  threads_out: Path | None = None) -> RunResult:
    database_url = plan.database_url if server == POSTGRESQL else None
    run_dir = plan.work_dir / f"{server}-c{connections}-r{round_no}"
    data_dir = run_dir / "data"
    run_dir.mkdir()
    count_file = run_dir / "sink.json"
    sink = children.start(
        "sink", [sys.executable, str(BENCH_DIR / "sink.py"), "--port", "0",
                 "--count-file", str(count_file)], run_dir / "sink.log")
    daemon: Child | None = None
    try:
        sink_port = int(wait_for_event(sink, "sink.started")["port"])
        smtp_port, web_port = free_port(), free_port()
        config = run_dir / "nexusmail.toml"
        if database_url:
            pg_database.reset(database_url)  # a fresh install: the daemon migrates it
        write_config(config, data_dir, smtp_port, web_port, sink_port, connections,
                     plan.parse_processes, database_url, plan.daemon_tree)
        nexusmail_args = ["--config", str(config), "run"]
        if profile_out is not None:
            argv = [sys.executable, str(BENCH_DIR / "profile_daemon.py"), "--out",
                    str(profile_out), "--", *nexusmail_args]
        elif threads_out is not None:
            argv = [sys.executable, str(BENCH_DIR / "profile_daemon.py"), "--threads-out",
                    str(threads_out), "--", *nexusmail_args]
        else:
            argv = [sys.executable, "-m", "nexusmail", *nexusmail_args]
        env = None
        if plan.daemon_tree is not None:
            # PYTHONPATH comes before the editable install on sys.path.
            env = {**os.environ, "PYTHONPATH": str(plan.daemon_tree)}
        daemon = children.start("nexusmail", argv, run_dir / "daemon.log", cwd=run_dir,
                                env=env)
        wait_for_event(daemon, "daemon.started", smtp_port=smtp_port)
        before, threads_before = group_usage(daemon.pgid), thread_cpu(daemon.pid)
        procs_before = group_cpu_by_process(daemon.pgid)
        load = run_load(children, plan, smtp_port, connections, run_dir)
        after_load, threads_after = group_usage(daemon.pgid), thread_cpu(daemon.pid)
        procs_after = group_cpu_by_process(daemon.pgid)
        store = StoreReads(_database_path(data_dir), database_url)
        load_ended = time.monotonic()
        outcomes, outbox, acks = wait_for_acks(store, count_file)
        acks_drain_s = time.monotonic() - load_ended
        after_drain = group_usage(daemon.pgid)
        if outcomes.get("quarantined"):
            for reason in quarantine_reasons(store):
                print(f"  quarantined: {reason}", file=sys.stderr, flush=True)
    finally:
        if daemon is not None:
            daemon.stop()
        sink.stop()
    stored = sum(outcomes.get(o, 0) for o in STORED_OUTCOMES)
    result = RunResult(
        server, connections, round_no, load, after_load.cpu_s - before.cpu_s,
        after_drain.hwm_mb, after_drain.processes, after_drain.leader_hwm_mb,
        after_drain.pss_mb, daemon.exit_code, daemon.stop_s,
        cpu_s_with_drain=after_drain.cpu_s - before.cpu_s, outcomes=outcomes, outbox=outbox,
        acks=_sink_messages(count_file) or acks, acks_drain_s=acks_drain_s,
        stored_ok=stored == load["ok"] == load["mails"] and sum(outcomes.values()) == stored,
        log_problems=_log_problems(daemon.log_text()),
    )
    if threads_out is not None:
        result.thread_cpu_s = _cpu_by_thread_name(threads_before, threads_after, threads_out)
        result.process_cpu_s = {
            f"pid {pid}{' (daemon)' if pid == daemon.pid else ''}: {name}":
                round(cpu_s - procs_before.get(pid, (name, 0.0))[1], 2)
            for pid, (name, cpu_s) in procs_after.items()}
    if not plan.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


# --- report ---------------------------------------------------------------------------------

def _fmt_stored(r: RunResult) -> str:
    if r.server == STOCK:
        return "–"
    parts = "+".join(str(r.outcomes.get(o, 0)) for o in STORED_OUTCOMES)
    others = {k: v for k, v in r.outcomes.items() if k not in STORED_OUTCOMES}
    mark = "ok" if r.stored_ok else "MISMATCH"
    extra = f" {others}" if others else ""
    return f"{parts}={sum(r.outcomes.get(o, 0) for o in STORED_OUTCOMES)} {mark}{extra}"


def results_table(results: list[RunResult]) -> str:
    # CPU during the load only; nexusmail sends most acks after the load at 32
    # connections, so the second figure (until the sink has every ack) compares fairly.
    head = ("| server | conns | round | msgs/s | p50 ms | p99 ms | max ms | CPU ms/mail "
            "| CPU ms/mail incl. acks | peak RSS MB main / all procs | errors "
            "| stored new+follow-up "
            "| acks at sink (s after load) |")
    rows = [head, "|" + "---|" * 13]
    for r in sorted(results, key=lambda r: (r.connections, r.round,
                                            [STOCK, *DAEMONS].index(r.server))):
        acks = "–" if r.acks is None else str(r.acks)
        if r.acks_drain_s is not None:
            acks += f" (+{r.acks_drain_s:.1f})"
        with_acks = ("–" if r.cpu_s_with_drain is None
                     else f"{1000 * r.cpu_s_with_drain / max(1, r.load['mails']):.2f}")
        rows.append(
            f"| {r.server} | {r.connections} | {r.round + 1} | {r.load['msgs_per_s']:.0f} "
            f"| {r.load['p50_ms']:.1f} | {r.load['p99_ms']:.1f} | {r.load['max_ms']:.0f} "
            f"| {r.cpu_ms_per_mail:.2f} | {with_acks} | {r.main_rss_mb:.0f} / {r.rss_mb:.0f} "
            f"| {r.load['errors']} "
            f"| {_fmt_stored(r)} | {acks} |")
    return "\n".join(rows)


def summary(results: list[RunResult]) -> list[dict[str, Any]]:
    out = []
    for conns in sorted({r.connections for r in results}):
        runs_of = {name: [r for r in results if r.connections == conns and r.server == name]
                   for name in (STOCK, *DAEMONS)}
        stock, nexus = runs_of[STOCK], runs_of[SQLITE]
        row: dict[str, Any] = {"connections": conns}
        for name, runs in runs_of.items():
            if runs:
                row[name] = {
                    "msgs_per_s": round(statistics.mean(r.load["msgs_per_s"] for r in runs), 1),
                    "p50_ms": round(statistics.mean(r.load["p50_ms"] for r in runs), 1),
                    "p99_ms_worst": max(r.load["p99_ms"] for r in runs),
                    "cpu_ms_per_mail": round(statistics.mean(r.cpu_ms_per_mail for r in runs), 2),
                    "cpu_ms_per_mail_with_acks": round(statistics.mean(
                        1000 * (r.cpu_s_with_drain or r.cpu_s) / max(1, r.load["mails"])
                        for r in runs), 2),
                    "rss_mb_max": round(max(r.rss_mb for r in runs), 1),
                    "main_rss_mb_max": round(max(r.main_rss_mb for r in runs), 1),
                    "pss_mb_max": round(max(r.pss_mb for r in runs), 1),
                    "errors": sum(r.load["errors"] for r in runs),
                }
        if stock and nexus:
            row["ratio"] = round(row["nexusmail"]["msgs_per_s"] / row["stock"]["msgs_per_s"], 2)
            per_round = {}
            for s in stock:
                for n in nexus:
                    if n.round == s.round:
                        per_round[s.round + 1] = round(
                            n.load["msgs_per_s"] / s.load["msgs_per_s"], 2)
            row["ratio_per_round"] = per_round
        for base, key in ((STOCK, "pg_ratio"), (SQLITE, "pg_to_sqlite")):
            if runs_of[base] and runs_of[POSTGRESQL]:
                row[key] = round(row[POSTGRESQL]["msgs_per_s"] / row[base]["msgs_per_s"], 2)
                row[key + "_per_round"] = {
                    b.round + 1: round(p.load["msgs_per_s"] / b.load["msgs_per_s"], 2)
                    for b in runs_of[base] for p in runs_of[POSTGRESQL] if p.round == b.round}
        out.append(row)
    return out


def verdict(rows: list[dict[str, Any]], results: list[RunResult]) -> list[str]:
    top = max(rows, key=lambda r: r["connections"])
    checks = _postgresql_checks(top, results)
    if "ratio" not in top:
        return _checked(checks)
    nexus = top[SQLITE]
    checks = [
        (f"throughput at {top['connections']} connections ≥ {TARGET_RATIO}× stock",
         top["ratio"] >= TARGET_RATIO, f"{top['ratio']}×"),
        (f"p99 < {TARGET_P99_MS:.0f} ms (worst round)", nexus["p99_ms_worst"] < TARGET_P99_MS,
         f"{nexus['p99_ms_worst']:.1f} ms"),
        # Judged on the sum of every process's peak (parse workers included): an upper
        # bound, since pages shared between them count more than once.
        (f"peak RSS < {TARGET_RSS_MB:.0f} MB (sum of all daemon processes' peaks)",
         nexus["rss_mb_max"] < TARGET_RSS_MB,
         f"{nexus['rss_mb_max']:.1f} MB; main process {nexus['main_rss_mb_max']:.0f} MB; "
         f"Pss of all at the end {nexus['pss_mb_max']:.0f} MB"),
        ("every mail stored (new + follow-up = sent), no errors",
         all(r.stored_ok and r.load["errors"] == 0
             for r in results if r.server == SQLITE), ""),
        *checks,
    ]
    return _checked(checks)


def _postgresql_checks(top: dict[str, Any], results: list[RunResult]
                       ) -> list[tuple[str, bool, str]]:
    if "pg_to_sqlite" not in top:
        return []
    pg = top[POSTGRESQL]
    return [
        (f"PostgreSQL throughput at {top['connections']} connections ≥ {TARGET_PG_RATIO}× "
         "SQLite", top["pg_to_sqlite"] >= TARGET_PG_RATIO, f"{top['pg_to_sqlite']}×"),
        (f"PostgreSQL p99 < {TARGET_PG_P99_MS:.0f} ms (worst round)",
         pg["p99_ms_worst"] < TARGET_PG_P99_MS, f"{pg['p99_ms_worst']:.1f} ms"),
        ("PostgreSQL: every mail stored (new + follow-up = sent), no errors",
         all(r.stored_ok and r.load["errors"] == 0
             for r in results if r.server == POSTGRESQL), ""),
    ]


def _checked(checks: list[tuple[str, bool, str]]) -> list[str]:
    return [f"- {'PASS' if ok else 'FAIL'}: {name}" + (f" — {value}" if value else "")
            for name, ok, value in checks]


def report(machine: dict[str, Any], plan: Plan, args: argparse.Namespace,
           results: list[RunResult]) -> str:
    rows = summary(results)
    lines = [
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Command: `{command_line()}`",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB RAM, Python {machine['python']}, "
        f"Linux {machine['kernel']}, load average at start {machine['loadavg_at_start']}",
        f"Packages: {machine['packages']}; nexusmail at {machine['git']}",
        f"Corpus: {len(plan.corpus.metas)} mails, "
        f"{sum(m.size for m in plan.corpus.metas) / 1e6:.1f} MB, seed {args.seed}; "
        f"client: {plan.client}",
        "",
        results_table(results),
    ]
    if any("ratio" in row for row in rows):
        lines += ["", "| conns | stock msgs/s | nexusmail msgs/s | ratio | per round |",
                  "|---|---|---|---|---|"]
    for row in rows:
        if "ratio" in row:
            lines.append(
                f"| {row['connections']} | {row['stock']['msgs_per_s']:.0f} "
                f"| {row['nexusmail']['msgs_per_s']:.0f} | {row['ratio']:.2f}× "
                f"| {', '.join(f'{v:.2f}' for v in row['ratio_per_round'].values())} |")
    if any("pg_to_sqlite" in row for row in rows):
        lines += ["", "| conns | SQLite msgs/s | PostgreSQL msgs/s | PostgreSQL / SQLite "
                  "| per round | PostgreSQL / stock |", "|---|---|---|---|---|---|"]
    for row in rows:
        if "pg_to_sqlite" in row:
            lines.append(
                f"| {row['connections']} | {row[SQLITE]['msgs_per_s']:.0f} "
                f"| {row[POSTGRESQL]['msgs_per_s']:.0f} | {row['pg_to_sqlite']:.2f}× "
                f"| {', '.join(f'{v:.2f}' for v in row['pg_to_sqlite_per_round'].values())} "
                f"| {row.get('pg_ratio', '–')}× |")
    checks = verdict(rows, results)
    if checks:
        lines += ["", *checks]
    return "\n".join(lines)


def profile_report(path: Path, top: int = 25) -> str:
    out = []
    for sort in ("tottime", "cumulative"):
        buffer = io.StringIO()
        stats = pstats.Stats(str(path), stream=buffer)
        stats.strip_dirs().sort_stats(sort).print_stats(top)
        out.append(f"== top {top} by {sort} ==\n{buffer.getvalue()}")
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------------

def _schedule(rounds: int, connection_counts: list[int],
              servers: list[str]) -> Iterator[tuple[int, int, str]]:
    for round_no in range(rounds):
        for conns in connection_counts:
            # Alternate who goes first, so slow drift on a shared machine hits both.
            order = servers if round_no % 2 == 0 else list(reversed(servers))
            for server in order:
                yield round_no, conns, server


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # runs the finally blocks that stop the children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=DEFAULT_MAILS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--servers", default=None,
                        help=f"comma-separated subset of {STOCK},{SQLITE},{POSTGRESQL} "
                             f"(default: all that apply; {POSTGRESQL} with --database-url)")
    parser.add_argument("--client", choices=["raw", "aiosmtplib"], default="raw")
    parser.add_argument("--profile", action="store_true",
                        help="one nexusmail run under cProfile (figures not comparable)")
    parser.add_argument("--thread-cpu", action="store_true",
                        help="one nexusmail run, CPU during the load per daemon thread")
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    parser.add_argument("--daemon-rev", metavar="REV",
                        help="run the daemon from this git revision instead of the working "
                             "tree (others may be editing it mid-run)")
    parser.add_argument("--parse-processes", type=int, metavar="N",
                        help="the daemon's [ingest] parse_processes (default: its own)")
    parser.add_argument("--database-url", metavar="postgresql://USER@HOST:PORT/DB",
                        help=f"also run the daemon on this PostgreSQL database ({POSTGRESQL});"
                             " EVERYTHING IN IT IS DROPPED before each run; the password, "
                             "if one is needed, from PGPASSWORD or ~/.pgpass")
    args = parser.parse_args(argv)
    default_servers = [STOCK, SQLITE] + ([POSTGRESQL] if args.database_url else [])
    servers = ([s.strip() for s in args.servers.split(",") if s.strip()] if args.servers
               else default_servers)
    if not set(servers) <= {STOCK, *DAEMONS}:
        parser.error(f"--servers takes {STOCK}, {SQLITE} and/or {POSTGRESQL}")
    if POSTGRESQL in servers and not args.database_url:
        parser.error(f"{POSTGRESQL} needs --database-url")

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    machine = machine_info()
    if args.database_url:
        machine["postgresql"] = pg_database.server_version(args.database_url)
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(f"command: {command_line()}", flush=True)
    started = time.perf_counter()
    corpus = build(args.mails, args.seed)
    index_path = corpus_paths(args.mails, args.seed)[0]
    print(f"corpus: {len(corpus.metas)} mails, {sum(m.size for m in corpus.metas) / 1e6:.1f} MB"
          f" ({time.perf_counter() - started:.1f}s)", flush=True)
    OUT_DIR.mkdir(exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="nexusmail-bench-"))
    daemon_tree = None
    if args.daemon_rev:
        daemon_tree = export_revision(args.daemon_rev, work_dir / "daemon-src")
        machine["git"] = f"{args.daemon_rev} ({_short_rev(args.daemon_rev)}, exported)"
    plan = Plan(corpus, index_path, args.client, work_dir, args.keep, daemon_tree,
                args.parse_processes, args.database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    results: list[RunResult] = []
    try:
        with Children() as children:
            if args.profile:
                profile_path = OUT_DIR / f"daemon-{stamp}.prof"
                conns = max(args.connections)
                daemon = POSTGRESQL if POSTGRESQL in servers else SQLITE
                print(f"profiling {daemon} at {conns} connections ...", flush=True)
                result = run_nexusmail(children, plan, conns, 0, daemon,
                                       profile_out=profile_path)
                print(f"  under the profiler: {result.load['msgs_per_s']} msgs/s, "
                      f"stored ok: {result.stored_ok}", flush=True)
                print(profile_report(profile_path))
                print(f"profile written to {profile_path.relative_to(REPO_DIR)}")
                return 0
            if args.thread_cpu:
                conns = max(args.connections)
                daemon = POSTGRESQL if POSTGRESQL in servers else SQLITE
                print(f"{daemon} at {conns} connections, CPU per thread ...", flush=True)
                result = run_nexusmail(children, plan, conns, 0, daemon,
                                       threads_out=work_dir / "threads.jsonl")
                print(f"  {result.load['msgs_per_s']} msgs/s, {result.cpu_s:.2f} s CPU in "
                      f"the load window ({result.cpu_ms_per_mail:.2f} ms/mail), stored ok: "
                      f"{result.stored_ok}; live threads, CPU s during the load:")
                for name, cpu_s in result.thread_cpu_s.items():
                    per_mail_ms = 1000 * cpu_s / args.mails
                    print(f"    {name:40s} {cpu_s:7.2f} s  {per_mail_ms:6.2f} ms/mail")
                print("  processes in the daemon's group, CPU s during the load:")
                for name, cpu_s in result.process_cpu_s.items():
                    per_mail_ms = 1000 * cpu_s / args.mails
                    print(f"    {name:80s} {cpu_s:7.2f} s  {per_mail_ms:6.2f} ms/mail")
                return 0
            for round_no, conns, server in _schedule(args.rounds, args.connections, servers):
                print(f"round {round_no + 1}/{args.rounds}, {conns} connections, {server} ...",
                      flush=True)
                run = run_stock if server == STOCK else run_nexusmail
                result = run(children, plan, conns, round_no, server)
                results.append(result)
                print(f"  {server}: {result.load['msgs_per_s']:.0f} msgs/s, "
                      f"p50 {result.load['p50_ms']:.1f} ms, p99 {result.load['p99_ms']:.1f} ms, "
                      f"{result.cpu_ms_per_mail:.2f} ms CPU/mail, {result.main_rss_mb:.0f} MB "
                      f"(all processes {result.rss_mb:.0f} MB), "
                      f"errors {result.load['errors']}"
                      + (f", outcomes {result.outcomes}, acks {result.acks}"
                         if server != STOCK else ""), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            print(f"kept: {work_dir}")
    text = report(machine, plan, args, results)
    print()
    print(text)
    (OUT_DIR / f"smtp_ingest-{stamp}.md").write_text(text + "\n")
    (OUT_DIR / f"smtp_ingest-{stamp}.json").write_text(json.dumps(
        {"machine": machine, "command": command_line(), "summary": summary(results),
         "runs": [asdict(r) for r in results]}, indent=1))
    print(f"\nwritten: bench/out/smtp_ingest-{stamp}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
