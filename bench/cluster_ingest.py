"""Cluster ingest benchmark: one, two and three daemons on one PostgreSQL database, and
how long the work a killed daemon held takes to be sent by another.

Throughput: for each daemon count, a fresh database, that many `nexusmail run`
processes (each its own data dir and SMTP port, all the same database URL, the
acknowledgements to one counting sink) and the corpus sent by the load client, its
connections spread round-robin over the daemons' ports. Reported: mails/s, CPU ms per
mail (utime+stime summed over every daemon's process group, parse workers included,
during the load and until the sink has every acknowledgement), p50/p99 latency from
end of DATA to the 250, and the acknowledgements the sink received.

Takeover: daemon A alone gets a few mails; its relay accepts the TCP connection and
never greets, so A's outbox holds its claimed acknowledgements. Daemon B (a relay that
answers) is started, A is SIGKILLed, and the clock runs until every row A held is
sent. Twice: A left dead (its lease must run out: `[outbound] lease_s`, default 60 s),
and A restarted at once on the same data dir (it finds its dead self's lock file free
and gives the rows back at start; the restarted A's relay answers).

On a machine with few cores (daemons, parse workers, PostgreSQL, the sink and the load
client share them) the figures show contention, not scale: read the CPU per mail.

    python bench/cluster_ingest.py                       # 2,000 mails, 8 connections
    python bench/cluster_ingest.py --mails 600
    python bench/cluster_ingest.py --postgresql postgresql://bench@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pg_database
from corpus import DEFAULT_MAILS, DEFAULT_SEED, build, corpus_paths
from procs import CLK_TCK, Child, Children, group_usage
from smtp_ingest import (
    BENCH_DIR,
    LOAD_TIMEOUT_S,
    REPO_DIR,
    StoreReads,
    command_line,
    free_port,
    machine_info,
    wait_for_acks,
    wait_for_event,
    write_config,
)

# The paper estimate: a firm receiving a million mails a day, with peaks ten times the
# day's mean rate.
MAILS_PER_DAY = 1_000_000
PEAK_FACTOR = 10
TAKEOVER_TIMEOUT_S = 300.0
DEFAULT_LEASE_S = 60.0  # the daemon's own default for [outbound] lease_s, for the report


@dataclass
class ThroughputRun:
    daemons: int
    load: dict[str, Any]
    cpu_s: float  # all daemons' process groups, during the load
    cpu_s_with_acks: float  # until the sink had every acknowledgement
    acks: int
    acks_drain_s: float
    outcomes: dict[str, int] = field(default_factory=dict)
    # The PostgreSQL server's CPU over the same window; None when it is not ours to see.
    server_cpu_s: float | None = None

    @property
    def mails(self) -> int:
        return max(1, int(self.load["mails"]))

    @property
    def cpu_ms_per_mail(self) -> float:
        return 1000.0 * self.cpu_s / self.mails

    @property
    def cpu_ms_per_mail_with_acks(self) -> float:
        return 1000.0 * self.cpu_s_with_acks / self.mails

    @property
    def server_ms_per_mail(self) -> str:
        if self.server_cpu_s is None:
            return "–"
        return f"{1000.0 * self.server_cpu_s / self.mails:.1f}"


@dataclass
class TakeoverRun:
    how: str  # "lease" | "restart"
    held: int  # outbox rows the killed daemon held
    seconds: float | None  # kill until all of them were sent; None: not within the timeout


# --- processes ---------------------------------------------------------------------------

def start_daemon(children: Children, run_dir: Path, name: str, database_url: str,
                 relay_port: int, connections: int, outbound_extra: str = "",
                 data_dir: Path | None = None) -> tuple[Child, int]:
    """A daemon with its own data dir and ports; returns it and its SMTP port, ready."""
    smtp_port, web_port = free_port(), free_port()
    config = run_dir / f"{name}.toml"
    write_config(config, data_dir or run_dir / name, smtp_port, web_port, relay_port,
                 connections, None, database_url)
    if outbound_extra:
        # write_config opens [outbound] once; a TOML table cannot be opened twice.
        text = config.read_text().replace("[outbound]\n", "[outbound]\n" + outbound_extra, 1)
        config.write_text(text)
    daemon = children.start(name, [sys.executable, "-m", "nexusmail", "--config", str(config),
                                   "run"], run_dir / f"{name}.log", cwd=run_dir)
    wait_for_event(daemon, "daemon.started", smtp_port=smtp_port)
    return daemon, smtp_port


def kill_group(child: Child) -> None:
    """SIGKILL the daemon and everything in its process group (its parse workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pgid, signal.SIGKILL)
    child.proc.wait(10)


def start_sink(children: Children, run_dir: Path) -> tuple[Child, int, Path]:
    count_file = run_dir / "sink.json"
    sink = children.start("sink", [sys.executable, str(BENCH_DIR / "sink.py"), "--port", "0",
                                   "--count-file", str(count_file)], run_dir / "sink.log")
    return sink, int(wait_for_event(sink, "sink.started")["port"]), count_file


@contextlib.contextmanager
def silent_relay() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never greets: a
    relay hung mid-conversation, so the outbox holds what it claimed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def run_load(children: Children, index_path: Path, ports: list[int], connections: int,
             run_dir: Path) -> dict[str, Any]:
    client = children.start(
        "load client",
        [sys.executable, str(BENCH_DIR / "load_client.py"), "--index", str(index_path),
         "--connections", str(connections), "--port", *map(str, ports)],
        run_dir / "load.log", stdout_pipe=True)
    try:
        out, _ = client.proc.communicate(timeout=LOAD_TIMEOUT_S)
    finally:
        client.stop()
    if client.exit_code != 0:
        raise RuntimeError(f"load client failed with {client.exit_code}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def cpu_of(daemons: list[Child]) -> float:
    return sum(group_usage(d.pgid).cpu_s for d in daemons)


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def server_cpu_s(postmaster_pid: int | None) -> float | None:
    """CPU seconds of the PostgreSQL server: the postmaster, its live children (the
    backends, background workers) and, through cutime/cstime, the children that ended."""
    if postmaster_pid is None:
        return None
    try:
        fields = _stat(postmaster_pid)
    except OSError:
        return None
    # After ')': ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = sum(int(f) for f in fields[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                child = _stat(int(entry))
                if int(child[1]) == postmaster_pid:
                    ticks += int(child[11]) + int(child[12])
    return ticks / CLK_TCK


def postmaster_pid(data_dir: Path) -> int | None:
    """The server's pid from its data directory (a throwaway cluster's only)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


# --- throughput ------------------------------------------------------------------------

def run_throughput(count: int, database_url: str, index_path: Path, connections: int,
                   work_dir: Path, server_pid: int | None) -> ThroughputRun:
    run_dir = work_dir / f"throughput-{count}"
    run_dir.mkdir()
    with Children() as children:
        _, sink_port, count_file = start_sink(children, run_dir)
        started = [start_daemon(children, run_dir, f"d{n}", database_url, sink_port,
                                connections) for n in range(count)]
        daemons = [d for d, _ in started]
        before, server_before = cpu_of(daemons), server_cpu_s(server_pid)
        load = run_load(children, index_path, [port for _, port in started], connections,
                        run_dir)
        after_load = cpu_of(daemons)
        load_ended = time.monotonic()
        outcomes, _, acks = wait_for_acks(StoreReads(run_dir, database_url), count_file)
        drain_s = time.monotonic() - load_ended
        after_acks, server_after = cpu_of(daemons), server_cpu_s(server_pid)
    server_s = (None if server_before is None or server_after is None
                else server_after - server_before)
    return ThroughputRun(count, load, after_load - before, after_acks - before, acks,
                         drain_s, outcomes, server_s)


# --- takeover ----------------------------------------------------------------------------

def held_rows(database_url: str) -> set[int]:
    """Outbox rows claimed under a running lease and not yet sent."""
    conn = pg_database.connect(database_url)
    try:
        return {int(r[0]) for r in conn.execute(
            "SELECT id FROM outbox WHERE status = 'pending' AND lease_until IS NOT NULL")}
    finally:
        conn.close()


def unsent(database_url: str, ids: set[int]) -> set[int]:
    conn = pg_database.connect(database_url)
    try:
        sent = {int(r[0]) for r in conn.execute("SELECT id FROM outbox WHERE status = 'sent'")}
    finally:
        conn.close()
    return ids - sent


def wait_until(check: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def run_takeover(how: str, database_url: str, index_path: Path, work_dir: Path,
                 lease_s: float | None) -> TakeoverRun:
    run_dir = work_dir / f"takeover-{how}"
    run_dir.mkdir()
    lease = f"lease_s = {lease_s}\n" if lease_s else ""
    # A's relay never greets; its SMTP timeout outlasts the run, so it keeps the claims.
    hung = "timeout_s = 3600\n" + lease
    with Children() as children, silent_relay() as hung_port:
        _, sink_port, _ = start_sink(children, run_dir)
        victim, victim_port = start_daemon(children, run_dir, "a", database_url, hung_port,
                                           4, hung)
        run_load(children, index_path, [victim_port], 4, run_dir)
        # The outbox waits for ingest to go quiet, then claims: wait for the claims to
        # stop growing.
        held: set[int] = set()

        def settled() -> bool:
            nonlocal held
            now = held_rows(database_url)
            done = bool(now) and now == held
            held = now
            return done

        if not wait_until(settled, 60.0, poll_s=1.0):
            raise RuntimeError(f"takeover ({how}): daemon A never held a claim")
        start_daemon(children, run_dir, "b", database_url, sink_port, 4, lease)
        kill_group(victim)
        killed = time.monotonic()
        if how == "restart":
            # Same data dir, so it finds its dead self's lock; this time the relay answers.
            start_daemon(children, run_dir, "a-again", database_url, sink_port, 4, lease,
                         data_dir=run_dir / "a")
        done = wait_until(lambda: not unsent(database_url, held), TAKEOVER_TIMEOUT_S, 0.2)
        seconds = round(time.monotonic() - killed, 2) if done else None
    return TakeoverRun(how, len(held), seconds)


# --- report ------------------------------------------------------------------------------

def throughput_table(runs: list[ThroughputRun]) -> str:
    lines = ["| daemons | mails/s | daemons' CPU ms/mail (load) | (until acks) "
             "| PostgreSQL CPU ms/mail (until acks) | p50 ms | p99 ms | errors "
             "| stored new+follow-up | acks at sink (s after load) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        stored = r.outcomes.get("new_request", 0) + r.outcomes.get("follow_up", 0)
        lines.append(
            f"| {r.daemons} | {r.load['msgs_per_s']:.0f} | {r.cpu_ms_per_mail:.1f} "
            f"| {r.cpu_ms_per_mail_with_acks:.1f} | {r.server_ms_per_mail} "
            f"| {r.load['p50_ms']:.1f} "
            f"| {r.load['p99_ms']:.1f} | {r.load['errors']} | {stored}/{r.load['mails']} "
            f"| {r.acks} (+{r.acks_drain_s:.1f}) |")
    return "\n".join(lines)


def takeover_lines(runs: list[TakeoverRun], lease_s: float | None) -> list[str]:
    lease = lease_s or DEFAULT_LEASE_S
    out = []
    for r in runs:
        when = "not within the timeout" if r.seconds is None else f"{r.seconds:.1f} s"
        what = (f"left dead, lease_s {lease:g}" if r.how == "lease"
                else "restarted at once on its data dir")
        by = "another daemon" if r.how == "lease" else "another daemon or its restart"
        out.append(f"- SIGKILL with {r.held} acknowledgements claimed, {what}: "
                   f"all sent by {by} after {when}")
    return out


def paper_estimate(runs: list[ThroughputRun]) -> list[str]:
    """Cores a million mails a day would keep busy, from the CPU measured per mail."""
    mean_rate = MAILS_PER_DAY / 86_400
    peak_rate = mean_rate * PEAK_FACTOR
    worst = max(runs, key=lambda r: r.cpu_ms_per_mail_with_acks)
    ms = worst.cpu_ms_per_mail_with_acks
    servers = [r.server_cpu_s / r.mails for r in runs if r.server_cpu_s is not None]
    server_ms = 1000.0 * max(servers) if servers else None
    best = max(r.load["msgs_per_s"] for r in runs)
    reach = ("above" if best >= peak_rate else "below")
    return [
        f"- {MAILS_PER_DAY:,} mails/day = {mean_rate:.1f} mails/s on average, "
        f"{peak_rate:.0f} mails/s at a ×{PEAK_FACTOR} peak.",
        f"- Daemon CPU per mail, acknowledgement included, worst of the runs: {ms:.1f} ms "
        f"({worst.daemons} daemon(s)).",
        f"- So {mean_rate * ms / 1000:.2f} cores on average and {peak_rate * ms / 1000:.2f} "
        "cores at the peak for the daemons"
        + (f"; PostgreSQL adds {server_ms:.1f} ms/mail (worst run): "
           f"{mean_rate * server_ms / 1000:.2f} and {peak_rate * server_ms / 1000:.2f} cores"
           if server_ms is not None else "; PostgreSQL's own CPU not measured") + ".",
        f"- The best measured rate here, {best:.0f} mails/s, is {reach} that peak "
        f"({best * 86_400 / 1e6:.1f}M mails a day if it were held all day).",
    ]


def report(machine: dict[str, Any], args: argparse.Namespace, runs: list[ThroughputRun],
           takeovers: list[TakeoverRun], pg_version: str) -> str:
    return "\n".join([
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Command: `{command_line()}`",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB RAM, Python {machine['python']}, "
        f"Linux {machine['kernel']}, load average at start {machine['loadavg_at_start']}; "
        f"PostgreSQL {pg_version}; nexusmail at {machine['git']}",
        f"Corpus: {args.mails} mails, seed {args.seed}, {args.connections} connections "
        "spread round-robin over the daemons",
        "",
        throughput_table(runs),
        "",
        *takeover_lines(takeovers, args.lease_s),
        "",
        *paper_estimate(runs),
        "",
        f"On {machine['nproc']} shared cores the daemons, their parse workers, PostgreSQL, "
        "the sink and the load client compete: more daemons show contention, not scale.",
    ])


# --- main --------------------------------------------------------------------------------

def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the finally blocks that stop the children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=DEFAULT_MAILS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--takeover-mails", type=int, default=20)
    parser.add_argument("--lease-s", type=float, default=None,
                        help="[outbound] lease_s for the takeover runs (default: the "
                             "daemon's own)")
    parser.add_argument("--no-takeover", action="store_true")
    parser.add_argument("--postgresql", default="auto",
                        help="'auto' (a throwaway cluster) or the URL of a database of its "
                             "own: EVERYTHING IN IT IS DROPPED before each run")
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    machine = machine_info()
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(f"command: {command_line()}", flush=True)
    build(args.mails, args.seed)
    index_path = corpus_paths(args.mails, args.seed)[0]
    build(args.takeover_mails, args.seed)
    takeover_index = corpus_paths(args.takeover_mails, args.seed)[0]
    work_dir = Path(tempfile.mkdtemp(prefix="nexusmail-cluster-"))
    cluster: Any = None
    if args.postgresql == "auto":
        sys.path.insert(0, str(REPO_DIR / "tests" / "support"))
        from postgres_server import PostgresCluster  # the tests' throwaway cluster

        cluster = PostgresCluster().start()
    server_pid = postmaster_pid(cluster.data) if cluster is not None else None

    def new_database() -> str:
        if cluster is not None:
            return str(cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}"))
        pg_database.reset(args.postgresql)
        return str(args.postgresql)

    runs: list[ThroughputRun] = []
    takeovers: list[TakeoverRun] = []
    try:
        url = new_database()
        pg_version = pg_database.server_version(url)
        for count in args.daemons:
            print(f"{count} daemon(s), {args.mails} mails ...", flush=True)
            run = run_throughput(count, url if not runs else new_database(), index_path,
                                 args.connections, work_dir, server_pid)
            runs.append(run)
            print(f"  {run.load['msgs_per_s']:.0f} mails/s, {run.cpu_ms_per_mail:.1f} ms "
                  f"CPU/mail ({run.cpu_ms_per_mail_with_acks:.1f} until acks), p50 "
                  f"{run.load['p50_ms']:.1f} ms, p99 {run.load['p99_ms']:.1f} ms, "
                  f"PostgreSQL {run.server_ms_per_mail} ms CPU/mail, "
                  f"acks {run.acks}, errors {run.load['errors']}", flush=True)
        if not args.no_takeover:
            for how in ("restart", "lease"):
                print(f"takeover, {how} ...", flush=True)
                takeovers.append(run_takeover(how, new_database(), takeover_index, work_dir,
                                              args.lease_s))
                print("  " + takeover_lines(takeovers[-1:], args.lease_s)[0], flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep:
            print(f"kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    text = report(machine, args, runs, takeovers, pg_version)
    print()
    print(text)
    out_dir = BENCH_DIR / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (out_dir / f"cluster_ingest-{stamp}.md").write_text(text + "\n")
    print(f"\nwritten: bench/out/cluster_ingest-{stamp}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
