"""Benchmark (not a test): what the store's writer spends per mail of the ingest corpus.

    python bench/writer_cost.py                     # 2,000 mails of the SMTP ingest corpus
    python bench/writer_cost.py --profile 30        # and the top 30 functions under cProfile

The SMTP ingest benchmark's corpus is parsed first (not measured), then applied in this
one thread the way the daemon's writer applies it: `apply_inbound` per mail, each in
its own SAVEPOINT, a COMMIT every `--group` mails, on a fresh SQLite store with the
benchmark daemon's settings. Printed: the writer's CPU per mail (thread time, commits
included) and the SQL statements per mail by outcome. The writer is the serial part of
ingest, so its time per mail bounds the throughput more than any other.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from corpus import DEFAULT_SEED, SUPPORT_ADDRESS, build

from nexusmail.config import Settings
from nexusmail.ingest.prepare import Prepared, prepare
from nexusmail.tickets import store as sqlite_store
from nexusmail.tickets.apply_mail import InboundMail, apply_inbound
from nexusmail.tickets.cases import StoredAttachment
from nexusmail.tickets.store import connect, migrate

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def bench_settings() -> Settings:
    # As the SMTP ingest benchmark runs its daemon: budgets and loop guard out of the way.
    return Settings.model_validate({"mail": {
        "support_addresses": [SUPPORT_ADDRESS],
        "max_acks_per_hour_per_domain": 1_000_000, "max_acks_per_hour_total": 1_000_000,
        "mute_after_new_cases": 0, "mute_domain_after_new_cases": 0}})


def _inbound(raw: bytes, prepared: Prepared) -> InboundMail:
    stored = [StoredAttachment(filename=a.filename, content_type=a.content_type,
                               size=len(a.data), sha256=hashlib.sha256(a.data).hexdigest(),
                               content_id=a.content_id, inline=a.inline)
              for a in prepared.mail.attachments] if not prepared.noise else []
    fields = {"raw": raw, "raw_sha256": prepared.raw_sha256,
              "content_sha256": prepared.content_sha256, "mail": prepared.mail,
              "source": "smtp", "envelope_from": None, "envelope_to": (SUPPORT_ADDRESS,),
              "noise_reason": prepared.noise, "attachments": stored,
              "language": prepared.language, "reading": prepared.reading,
              "serial_candidates": prepared.serial_candidates,
              "request_text": getattr(prepared, "request_text", None)}
    # What this tree's InboundMail knows (to compare revisions: PYTHONPATH=<older tree>).
    known = InboundMail.__dataclass_fields__
    return InboundMail(**{name: value for name, value in fields.items() if name in known})


def corpus_mails(count: int, seed: int, settings: Settings) -> list[InboundMail]:
    """The SMTP ingest benchmark's corpus, parsed as the daemon parses it before its writer."""
    corpus = build(count, seed)
    mails = []
    for raw, meta in zip(corpus.load(), corpus.metas, strict=True):
        prepared = prepare(raw, meta.sender, ["firm.test"], settings.limits.max_body_chars,
                           settings.limits.max_attachments, (SUPPORT_ADDRESS,))
        mails.append(_inbound(raw, prepared))
    return mails


def run(mails: list[InboundMail], settings: Settings, group: int,
        profile: cProfile.Profile | None, *,
        trace: bool = False) -> tuple[float, Counter[str], Counter[str]]:
    """Apply every mail; the writer's CPU seconds, statements and mails by outcome."""
    with tempfile.TemporaryDirectory(prefix="writer-cost-") as tmp:
        conn = connect(Path(tmp) / "nexusmail.sqlite3")
        migrate(conn)
        # As the daemon's Store sets up its writer (when this tree's store does).
        prepare_writer = getattr(sqlite_store, "prepare_writer", None)
        if prepare_writer is not None:
            prepare_writer(conn)
        statements: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        current = ["unit"]

        def count(_sql: str) -> None:
            statements[current[0]] += 1

        if trace:
            conn.set_trace_callback(count)
        started = time.thread_time()
        if profile is not None:
            profile.enable()
        for start in range(0, len(mails), group):
            current[0] = "commit"
            conn.execute("BEGIN IMMEDIATE")
            for offset, inbound in enumerate(mails[start:start + group]):
                now = START + timedelta(seconds=(start + offset) * 0.2)
                current[0] = "savepoint"
                conn.execute("SAVEPOINT unit")
                current[0] = "unit"
                result = apply_inbound(conn, inbound, now=now, settings=settings)
                statements[str(result.outcome)] += statements.pop("unit", 0)
                outcomes[str(result.outcome)] += 1
                current[0] = "savepoint"
                conn.execute("RELEASE unit")
            current[0] = "commit"
            conn.execute("COMMIT")
        if profile is not None:
            profile.disable()
        elapsed = time.thread_time() - started
        conn.close()
    return elapsed, statements, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--group", type=int, default=4, help="mails per COMMIT")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="TOP")
    args = parser.parse_args(argv)
    settings = bench_settings()
    mails = corpus_mails(args.mails, args.seed, settings)
    _, statements, outcomes = run(mails, settings, args.group, None, trace=True)
    # Triggers' statements are counted too (the trace reports each one).
    print("statements per mail: " + ", ".join(
        f"{kind} {statements[kind] / n:.1f}" for kind, n in sorted(outcomes.items()))
        + f"; per commit group: {statements['commit'] / (len(mails) / args.group):.1f}")
    for round_no in range(1, args.rounds + 1):
        elapsed, statements, outcomes = run(mails, settings, args.group, None)
        print(f"round {round_no}: writer {elapsed / len(mails) * 1000:.3f} ms/mail CPU")
    if args.profile:
        profile = cProfile.Profile(time.thread_time)
        run(mails, settings, args.group, profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
