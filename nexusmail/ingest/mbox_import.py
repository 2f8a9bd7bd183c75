"""Importing an old mailbox (mbox) through the same `Ingest.accept` as SMTP and IMAP.

The mailbox is read one message at a time (mailbox.mbox keeps only each message's
offsets, never the whole file), so its size does not matter. History is imported with
`acknowledge=False`: a case it opens sends no acknowledgement to a customer who wrote a
year ago. Running the import twice imports nothing new (each mail is a duplicate).
"""

from __future__ import annotations

import mailbox
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure


@dataclass
class ImportSummary:
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[int, str]] = field(default_factory=list)   # (index, reason)


def open_mbox(path: Path) -> tuple[int, Callable[[], Iterator[bytes]]]:
    """The mailbox's message count, and an iterator over each message's raw bytes."""
    box = mailbox.mbox(path, create=False)
    keys = box.keys()  # scans the file once for the offsets; no message is kept

    def messages() -> Iterator[bytes]:
        try:
            for key in keys:
                yield box.get_bytes(key)
        finally:
            box.close()

    return len(keys), messages


async def import_messages(ingest: Ingest, messages: Iterator[bytes], *, source: str,
                          progress: ProgressBar) -> ImportSummary:
    """Accept each message as imported history; count the outcomes."""
    summary = ImportSummary(total=progress.total)
    for index, raw in enumerate(messages, start=1):
        try:
            result = await ingest.accept(raw, Envelope(None, ()), source, acknowledge=False)
        except TemporaryFailure as exc:  # storage trouble: report it, the rerun imports it
            summary.outcomes["failed"] += 1
            summary.failed.append((index, str(exc)))
        else:
            summary.outcomes[str(result.outcome)] += 1
        progress.advance()
    progress.finish()
    return summary


class ProgressBar:
    """`[#####-----] 120/400 30% 55.1 mail/s eta 5s` on one redrawn line of a terminal.

    Written here rather than taken from a library: a dozen lines, and the CLI's only
    progress bar. When the stream is not a terminal it prints a plain line every
    `plain_every_s` seconds instead, so a log file does not fill with redraws.
    """

    WIDTH = 30

    def __init__(self, total: int, *, stream: TextIO | None = None, label: str = "mail",
                 redraw_s: float = 0.1, plain_every_s: float = 5.0) -> None:
        self.total = total
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.tty = self.stream.isatty()
        self.interval_s = redraw_s if self.tty else plain_every_s
        self.started = time.monotonic()
        self.last_drawn = float("-inf")

    def advance(self, step: int = 1) -> None:
        self.count += step
        now = time.monotonic()
        if now - self.last_drawn >= self.interval_s:
            self.last_drawn = now
            self._draw(now)

    def finish(self) -> None:
        self._draw(time.monotonic())
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        done = self.count / self.total if self.total else 1.0
        filled = int(self.WIDTH * done)
        eta = f" eta {(self.total - self.count) / rate:.0f}s" if rate > 0 and done < 1 else ""
        return (f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {self.count}/{self.total} "
                f"{done:.0%} {rate:.1f} {self.label}/s{eta}")

    def _draw(self, now: float) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()
