"""Benchmark (not a test): the round trips the store's writer waits for per mail on PostgreSQL.

    python bench/pg_round_trips.py --database-url postgresql://nexus@127.0.0.1:PORT/bench
    python bench/pg_round_trips.py --mails 500 --by-statement 15   # and which reads wait

The SMTP ingest benchmark's corpus (as bench/writer_cost.py builds it) is applied on an
emptied PostgreSQL database the way the daemon's writer applies it when mail comes one
at a time: a group of one unit per mail, in psycopg's pipeline mode (storage.pg_pipeline).
Each acknowledgement the mail queues is then claimed and marked sent as the outbox worker
does (one claim per mail, one mark per row; composing and sending are not part of it).
Counted: every wait for the server's answers, i.e. every pipeline sync, the COMMIT's
included; with `--by-statement`, the unit's waits by the statement last sent before each
(the read that made the unit wait, or the unit's end).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pg_database
import psycopg
from corpus import DEFAULT_SEED
from writer_cost import START, bench_settings, corpus_mails

from nexusmail.config import MailSettings
from nexusmail.storage.pg_pipeline import PipelinedUnit
from nexusmail.storage.pg_store import PgStore, _apply_unit, _commit_with_last_unit
from nexusmail.storage.postgresql import migrate
from nexusmail.tickets.apply_mail import apply_inbound
from nexusmail.tickets.outbox import Claim, ShownMail, claim_due, mark_sent

WORKER = "bench-worker"
# What the worker would record of the composed acknowledgement (none is composed here).
SHOWN = ShownMail("Re: your request", "We have it.", "support@firm.test")


class CountingPipeline:
    """The writer's pipeline, counting its syncs (each one round trip waited for)."""

    def __init__(self, pipeline: psycopg.Pipeline, waits: Counter[str]) -> None:
        self._pipeline = pipeline
        self.waits = waits
        self.label = "COMMIT"

    def sync(self) -> None:
        self.waits[self.label] += 1
        self._pipeline.sync()


class LabellingUnit(PipelinedUnit):
    """A unit that names each of its waits after the statement it last sent."""

    def __init__(self, conn: psycopg.Connection[Any], pipeline: CountingPipeline) -> None:
        super().__init__(conn, cast(psycopg.Pipeline, pipeline))
        self._counting = pipeline

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self._counting.label = " ".join(sql.split())[:90]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        self._counting.label = " ".join(sql.split())[:90]
        return super().executemany(sql, parameters)

    def wait(self) -> None:
        super().wait()
        self._counting.label = "COMMIT"


def apply_alone(conn: psycopg.Connection[Any], fn: Callable[[Any], Any],
                waits: Counter[str]) -> Any:
    """One unit in a group of its own, as PgStore.apply_group runs it; its value."""
    with conn.pipeline() as pipeline:
        counting = CountingPipeline(pipeline, waits)
        conn.execute("BEGIN", prepare=False)
        unit = LabellingUnit(conn, counting)
        outcomes = [_apply_unit(unit, fn, settle=False)]
        counting.label = "COMMIT"
        _commit_with_last_unit(conn, cast(psycopg.Pipeline, counting), unit, outcomes)
    ok, value = outcomes[0]
    if not ok:
        raise value
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="a database of the benchmark's own: it is emptied first")
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--by-statement", type=int, default=0, metavar="TOP")
    parser.add_argument("--loop-guard", action="store_true",
                        help="the loop guard at its default settings (the benchmarks' "
                             "daemon switches it off)")
    args = parser.parse_args(argv)
    settings = bench_settings()
    if args.loop_guard:
        defaults = MailSettings.model_fields
        settings = settings.model_copy(update={"mail": settings.mail.model_copy(update={
            "mute_after_new_cases": defaults["mute_after_new_cases"].default,
            "mute_domain_after_new_cases": defaults["mute_domain_after_new_cases"].default})})
    mails = corpus_mails(args.mails, args.seed, settings)
    pg_database.reset(args.database_url)
    store = PgStore(args.database_url)
    conn = store._connect()
    migrate(conn)
    ingest: Counter[str] = Counter()
    outbox: Counter[str] = Counter()
    acks = 0
    started = time.perf_counter()
    for number, inbound in enumerate(mails):
        now = START + timedelta(seconds=number * 0.2)
        apply_alone(conn, lambda tx, i=inbound, n=now: apply_inbound(  # type: ignore[misc]
            tx, i, now=n, settings=settings), ingest)
        rows = apply_alone(conn, lambda tx, n=now: claim_due(  # type: ignore[misc]
            tx, now=n, limit=100, worker_id=WORKER, lease_s=300), outbox)
        for row in rows:
            claim = Claim(WORKER, int(row["claim_seq"]))
            apply_alone(conn, lambda tx, r=row, c=claim, n=now: mark_sent(  # type: ignore[misc]
                tx, int(r["id"]), r["thread_message_id"], c, sent_at=n, shown=SHOWN), outbox)
            acks += 1
    elapsed = time.perf_counter() - started
    conn.close()
    n = len(mails)
    print(f"{n} mails, {acks} acknowledgements sent, {elapsed / n * 1000:.2f} ms/mail wall")
    print(f"round trips waited per mail: ingest {ingest.total() / n:.2f}"
          f" (of which COMMIT {ingest['COMMIT'] / n:.2f}), outbox {outbox.total() / n:.2f},"
          f" total {(ingest.total() + outbox.total()) / n:.2f}")
    if args.by_statement:
        for name, waits in (("ingest", ingest), ("outbox", outbox)):
            print(f"{name}, waits per mail by the statement last sent:")
            for label, count in waits.most_common(args.by_statement):
                print(f"  {count / n:6.2f}  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
