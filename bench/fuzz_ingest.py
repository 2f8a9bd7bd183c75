"""Long fuzz run of the ingest pipeline: hostile MIME (tests/support/hostile_mime.py)
through the real `Ingest.accept` on a real store, optionally also over real SMTP.

Prints inputs tried, outcomes by kind, findings (any exception, any lost mail, any SMTP
answer other than 250 or 552), the machine and the command; writes the same as JSON
and Markdown under bench/out/, and each finding's input as a file beside them.

    python bench/fuzz_ingest.py --count 20000
    python bench/fuzz_ingest.py --count 2000 --smtp-every 10 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR / "tests" / "support"))

from daemon_harness import Daemon, make_settings, running_daemon  # noqa: E402
from hostile_mime import SUPPORT, labelled_hostile_mail  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from smtp_ingest import command_line, machine_info  # noqa: E402

from nexusmail.blobs.digest import sha256_hex  # noqa: E402
from nexusmail.blobs.local import LocalBlobStore  # noqa: E402
from nexusmail.clock import SystemClock  # noqa: E402
from nexusmail.config import Settings  # noqa: E402
from nexusmail.ingest.accept import Envelope, Ingest  # noqa: E402
from nexusmail.paths import blobs_path, database_path  # noqa: E402
from nexusmail.tickets.models import Outcome  # noqa: E402
from nexusmail.tickets.store import Store  # noqa: E402

OUT_DIR = REPO_DIR / "bench" / "out"
ROTATE_EVERY = 500   # a fresh store this often, so enormous inputs do not fill the disk
# Hundreds of inputs from a handful of senders: the loop guard would hold most of them
# before they reach the case-opening code the fuzz is there to exercise.
GUARD_OFF = {"mute_after_new_cases": 0, "mute_domain_after_new_cases": 0}


class Run:
    """The fuzz run's state: a store (rotated), an optional daemon, the tallies."""

    def __init__(self, runner: asyncio.Runner, tmp: Path, smtp_every: int,
                 findings_dir: Path) -> None:
        self.runner, self.tmp, self.smtp_every = runner, tmp, smtp_every
        self.findings_dir = findings_dir
        self.tried = 0
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.smtp_codes: Counter[int] = Counter()
        self.findings: list[dict[str, Any]] = []
        self.slowest: tuple[float, str] = (0.0, "")
        self.store: Store | None = None
        self.ingest: Ingest | None = None
        self.settings: Settings | None = None
        self.daemon: Daemon | None = None
        self._daemon_cm: Any = None

    def rotate(self) -> None:
        self.close()
        self.settings = make_settings(self.tmp / f"store-{self.tried}", mail=GUARD_OFF)
        self.store = Store(database_path(self.settings))
        self.runner.run(self.store.open())
        self.ingest = Ingest(self.store, LocalBlobStore(blobs_path(self.settings)), self.settings,
                             SystemClock())
        if self.smtp_every:
            self._daemon_cm = running_daemon(make_settings(self.tmp / f"daemon-{self.tried}",
                                                           mail=GUARD_OFF))
            self.daemon = self.runner.run(self._daemon_cm.__aenter__())

    def close(self) -> None:
        if self.store is not None:
            self.runner.run(self.store.close())
            self.store = None
        if self._daemon_cm is not None:
            self.runner.run(self._daemon_cm.__aexit__(None, None, None))
            self._daemon_cm = self.daemon = None

    def one(self, kind: str, raw: bytes) -> None:
        if self.tried % ROTATE_EVERY == 0:
            self.rotate()
        assert self.ingest is not None
        assert self.settings is not None
        self.tried += 1
        started = time.perf_counter()
        try:
            result = self.runner.run(self.ingest.accept(
                raw, Envelope("fuzz@example.org", [SUPPORT]), "smtp"))
        except Exception as exc:  # a finding, not the end of the run
            self.finding(kind, raw, "exception", "".join(traceback.format_exception(exc)))
            return
        elapsed = time.perf_counter() - started
        self.slowest = max(self.slowest, (elapsed, f"{kind} {len(raw)} bytes"))
        self.by_kind[kind][str(result.outcome)] += 1
        if result.outcome is Outcome.QUARANTINED:
            self.finding(kind, raw, "quarantined", result.reason)
        if result.outcome is not Outcome.DUPLICATE and not _kept(self.settings, raw):
            self.finding(kind, raw, "lost", f"outcome {result.outcome}, no inbound row")
        if self.smtp_every and self.tried % self.smtp_every == 0:
            self.send(kind, raw)
        if self.tried % 1000 == 0:
            print(f"  {self.tried} inputs, {len(self.findings)} findings", file=sys.stderr)

    def send(self, kind: str, raw: bytes) -> None:
        assert self.daemon is not None
        try:
            code, message = self.runner.run(self.daemon.send(raw))
        except Exception as exc:  # the daemon stopped answering
            self.finding(kind, raw, "smtp_error", repr(exc))
            return
        self.smtp_codes[code] += 1
        if code not in (250, 552):
            self.finding(kind, raw, f"smtp_{code}", message)

    def finding(self, kind: str, raw: bytes, what: str, detail: str) -> None:
        digest = sha256_hex(raw)
        path = self.findings_dir / f"{what}-{digest[:16]}.eml"
        self.findings_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        self.findings.append({"kind": kind, "what": what, "size": len(raw),
                              "detail": detail[-2000:],
                              "input": str(path.relative_to(REPO_DIR))})


def _kept(settings_: Settings, raw: bytes) -> bool:
    conn = sqlite3.connect(f"file:{database_path(settings_)}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT 1 FROM inbound i JOIN raw_messages r ON r.sha256 ="
                            " i.raw_sha256 WHERE i.raw_sha256 = ?",
                            (sha256_hex(raw),)).fetchone() is not None
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="inputs to try")
    parser.add_argument("--seed", type=int, default=20261122, help="hypothesis seed")
    parser.add_argument("--smtp-every", type=int, default=0, metavar="K",
                        help="also send every K-th input over SMTP to a running daemon")
    args = parser.parse_args()
    # Quarantines log an error each; the report lists them, the terminal need not.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    machine = machine_info()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner() as runner:
        run = Run(runner, Path(tmp), args.smtp_every, OUT_DIR / f"fuzz-findings-{stamp}")

        @seed(args.seed)
        @settings(max_examples=args.count, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(labelled_hostile_mail())
        def fuzz(pair: tuple[str, bytes]) -> None:
            run.one(*pair)

        try:
            fuzz()
        finally:
            run.close()
    seconds = time.perf_counter() - started
    report = {
        "command": command_line(), "machine": machine, "seconds": round(seconds, 1),
        "inputs_tried": run.tried, "findings": run.findings,
        "outcomes_by_kind": {k: dict(v) for k, v in sorted(run.by_kind.items())},
        "smtp_codes": dict(run.smtp_codes),
        "slowest_input": {"seconds": round(run.slowest[0], 3), "what": run.slowest[1]},
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"fuzz_ingest-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render(report)
    (OUT_DIR / f"fuzz_ingest-{stamp}.md").write_text(markdown)
    print(markdown)
    return 1 if run.findings else 0


def render(report: dict[str, Any]) -> str:
    lines = [f"### Fuzz ingest: {report['inputs_tried']} inputs, "
             f"{len(report['findings'])} findings ({report['seconds']} s)", "",
             f"command: `{report['command']}`  ",
             f"machine: {report['machine']['nproc']} CPUs {report['machine']['cpu_model']}, "
             f"Python {report['machine']['python']}, git {report['machine']['git']}", "",
             "| kind | inputs | outcomes |", "|---|---:|---|"]
    for kind, outcomes in report["outcomes_by_kind"].items():
        shown = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        lines.append(f"| {kind} | {sum(outcomes.values())} | {shown} |")
    if report["smtp_codes"]:
        lines += ["", f"SMTP answers: {report['smtp_codes']}"]
    slowest = report["slowest_input"]
    lines += ["", f"slowest input: {slowest['seconds']} s ({slowest['what']})", ""]
    for f in report["findings"][:50]:
        lines.append(f"- {f['what']} ({f['kind']}, {f['size']} bytes, {f['input']}): "
                     f"{f['detail'].strip().splitlines()[-1] if f['detail'].strip() else ''}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
