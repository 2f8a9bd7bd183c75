"""Importing an old mailbox (mbox) through the same `Ingest.accept` as SMTP and IMAP.

The mailbox is read one message at a time (mailbox.mbox keeps only each message's
offsets, never the whole file), so its size does not matter. History is imported with
`acknowledge=False`: a case it opens sends no acknowledgement to a customer who wrote a
year ago, and each mail is dated by its own `Date:` header (never later than now), so
the history keeps its order and its age. Running the import twice imports nothing new
(each mail is a duplicate).
"""

from __future__ import annotations

import mailbox
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import TextIO

from nexusmail.clock import Clock
from nexusmail.i18n import Msg, msg
from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import close_intervention, intervention_status
from nexusmail.tickets.models import Outcome, Status

IMPORT_AUTHOR = "import"
# Where a mail's Date: header is looked for: a header block longer than this is not
# read further (the date is then the import's time).
MAX_HEADER_BYTES = 256 * 1024


class NotAnMbox(ValueError):
    """The file holds no mbox separator line, so it is not an mbox."""


@dataclass
class ImportSummary:
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[int, str]] = field(default_factory=list)   # (index, reason)


class MailDateClock:
    """The clock an import runs on: `now()` is the current mail's own date.

    Everything ingest dates (the intervention, its messages) then carries the date the
    customer wrote, not the day of the import. A mail without a usable `Date:`, or
    dated in the future, is dated by the real clock."""

    def __init__(self, real: Clock) -> None:
        self.real = real
        self._moment: datetime | None = None

    def date_from(self, raw: bytes) -> datetime:
        """Set (and return) the moment of the mail `raw`."""
        self._moment = min(mail_date(raw) or self.real.now(), self.real.now())
        return self._moment

    def now(self) -> datetime:
        return self._moment or self.real.now()

    def monotonic(self) -> float:
        return self.real.monotonic()


def mail_date(raw: bytes) -> datetime | None:
    """The mail's `Date:` as an aware UTC datetime, or None when missing or unreadable."""
    end = raw.find(b"\n\n", 0, MAX_HEADER_BYTES)
    if end < 0:
        end = raw.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES)
    head = raw[: end if end >= 0 else MAX_HEADER_BYTES]
    value = BytesHeaderParser().parsebytes(head).get("Date")
    try:
        moment = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def open_mbox(path: Path) -> tuple[int, Callable[[], Iterator[bytes]]]:
    """The mailbox's message count, and an iterator over each message's raw bytes.

    NotAnMbox when the file has content but no `From ` separator line: a single saved
    mail (.eml) or another format would otherwise import as "0 mails"."""
    box = mailbox.mbox(path, create=False)
    keys = box.keys()  # scans the file once for the offsets; no message is kept
    if not keys and path.stat().st_size > 0:
        box.close()
        raise NotAnMbox(msg("{path} is not an mbox file: no line starts with \"From \" "
                            "(a single saved mail? put it in an mbox, or send it by SMTP)",
                            path=str(path)))

    def messages() -> Iterator[bytes]:
        try:
            for key in keys:
                yield box.get_bytes(key)
        finally:
            box.close()

    return len(keys), messages


async def import_messages(ingest: Ingest, messages: Iterator[bytes], *, source: str,
                          progress: ProgressBar, clock: MailDateClock,
                          closed: bool = False) -> ImportSummary:
    """Accept each message as imported history, dated by `clock` (the ingest's own);
    count the outcomes. `closed`: the cases the import opened are closed at the end,
    each on the date of its last imported mail (old cases, not today's work)."""
    summary = ImportSummary(total=progress.total)
    opened: dict[int, datetime] = {}  # case -> date of its last imported mail
    for index, raw in enumerate(messages, start=1):
        moment = clock.date_from(raw)
        try:
            result = await ingest.accept(raw, Envelope(None, ()), source, acknowledge=False)
        except TemporaryFailure as exc:  # storage trouble: report it, the rerun imports it
            summary.outcomes["failed"] += 1
            summary.failed.append((index, str(exc)))
        else:
            summary.outcomes[str(result.outcome)] += 1
            number = result.intervention_number
            if number is not None and (result.outcome is Outcome.NEW_REQUEST
                                       or number in opened):
                opened[number] = max(moment, opened.get(number, moment))
        progress.advance()
    progress.finish()
    if closed:
        for number, last in opened.items():
            await ingest.store.write(partial(_close_imported, number=number, at=last))
        summary.outcomes["closed"] = len(opened)
    return summary


def _close_imported(tx: WriteTx, *, number: int, at: datetime) -> None:
    if intervention_status(tx, number) is not Status.CLOSED:
        close_intervention(tx, number, now=at, author=IMPORT_AUTHOR,
                           note="Imported as a closed case.")


class ProgressBar:
    """`[#####-----] 120/400 30% 55.1 mail/s eta 5s` on one redrawn line of a terminal.

    Written here rather than taken from a library: a dozen lines, and the CLI's only
    progress bar. When the stream is not a terminal it prints a plain line every
    `plain_every_s` seconds instead, so a log file does not fill with redraws.
    """

    WIDTH = 30

    def __init__(self, total: int, *, stream: TextIO | None = None, label: str = "mail",
                 redraw_s: float = 0.1, plain_every_s: float = 5.0,
                 words: Callable[[Msg], str] = str) -> None:
        self.total = total
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.words = words  # the CLI's translation: the bar is for the person at the terminal
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
        eta = ""
        if rate > 0 and done < 1:
            eta = " " + self.words(msg("eta {seconds}s",
                                       seconds=f"{(self.total - self.count) / rate:.0f}"))
        return (f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {self.count}/{self.total} "
                f"{done:.0%} {rate:.1f} {self.label}/s{eta}")

    def _draw(self, now: float) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()
