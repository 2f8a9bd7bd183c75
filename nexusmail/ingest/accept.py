"""The one seam every mail source ends in: `Ingest.accept(raw, envelope, source)`.

SMTP, LMTP and IMAP only fetch bytes and, after `accept` returns, acknowledge them
(250, or an IMAP flag/move). `accept` returns only once the raw bytes and everything
they cause are committed (durable before the 250); when that cannot be done it raises
TemporaryFailure, and the source must not acknowledge (SMTP answers 451).
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.store import BlobStore, BlobUnavailable
from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.ingest.parse_workers import JobTimedOut, ParseWorkers
from nexusmail.ingest.prepare import Prepared, prepare, prepare_file
from nexusmail.live_settings import LiveSettings, live
from nexusmail.mail.parsed import MailAttachment, ParsedMail
from nexusmail.service.metrics import TEMPORARY_FAILURE, Metrics
from nexusmail.storage.connections import Storage
from nexusmail.tickets.apply_mail import InboundMail, IngestResult, apply_inbound, quarantine
from nexusmail.tickets.cases import StoredAttachment
from nexusmail.tickets.models import Outcome
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)


class TemporaryFailure(Exception):
    """Nothing was made durable; the sender must try again later."""


@dataclass(frozen=True)
class Envelope:
    mail_from: str | None          # None: the source has no envelope (IMAP)
    rcpt_tos: Sequence[str] = ()


@dataclass(frozen=True)
class _Options:
    acknowledge: bool
    retry_of: int | None
    raw_file: Path | None = None


class Ingest:
    def __init__(
        self,
        store: Storage,
        blobs: BlobStore,
        settings: Settings | LiveSettings,
        clock: Clock,
        *,
        parsers: ParseWorkers | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        reply_keys: Sequence[bytes] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.blobs = blobs
        self.live = live(settings)
        self.clock = clock
        self.parsers = parsers
        self.on_outbox = on_outbox
        self.reply_keys = tuple(reply_keys)
        # The support addresses need a restart (the SMTP handler holds them too).
        self.own_domains = frozenset(
            a.rpartition("@")[2] for a in self.settings.mail.support_addresses)
        self.accepted = 0
        self.in_flight = 0
        # Set while no mail is being accepted (the outbox yields to ingest on it).
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def settings(self) -> Settings:
        """The settings of the moment: a reload reaches the next mail."""
        return self.live.current

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no mail is being accepted; False if `timeout_s` ran out first."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def accept(self, raw: bytes, envelope: Envelope, source: str, *,
                     acknowledge: bool = True, retry_of: int | None = None,
                     raw_file: Path | None = None) -> IngestResult:
        """`acknowledge=False` for imported history (no acknowledgement for a case it
        opens); `retry_of`: the quarantined inbound row these bytes are retried for;
        `raw_file`: a file holding exactly `raw` (a spooled SMTP mail), which a parse
        worker reads rather than being sent the bytes."""
        started = self.clock.monotonic()  # the bytes are here: DATA ended, or IMAP fetched
        self.in_flight += 1
        self.idle.clear()
        try:
            result = await self._accept(raw, envelope, source,
                                        _Options(acknowledge, retry_of, raw_file))
        except TemporaryFailure:
            if self.metrics is not None:
                self.metrics.mail(source, TEMPORARY_FAILURE)
            raise
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()
        self.accepted += 1
        if self.metrics is not None:
            self.metrics.mail(source, result.outcome, seconds=self.clock.monotonic() - started)
            if result.verdict is not None:
                self.metrics.assignment_reply(result.verdict, acted=bool(result.acted))
            if result.held:
                self.metrics.held_by_peer_guard()
            if result.ack_skipped is not None:
                self.metrics.ack_skipped(result.ack_skipped)
        return result

    async def _accept(self, raw: bytes, envelope: Envelope, source: str,
                      options: _Options) -> IngestResult:
        trace_id = uuid.uuid4().hex[:16]
        with structlog.contextvars.bound_contextvars(trace_id=trace_id, source=source):
            try:
                prepared = await self._prepare(raw, envelope, options.raw_file)
            except JobTimedOut as exc:  # hostile or pathological: kept for a look
                return await self._quarantine(raw, envelope, source, f"parse failed: {exc}")
            except Exception as exc:  # our parser's bug must not lose the mail
                return await self._quarantine(raw, envelope, source, f"parse failed: {exc!r}")
            with structlog.contextvars.bound_contextvars(message_id=prepared.mail.message_id):
                return await self._apply(raw, envelope, source, prepared, options)

    async def _prepare(self, raw: bytes, envelope: Envelope,
                       raw_file: Path | None = None) -> Prepared:
        limits = self.settings.limits
        rest = (envelope.mail_from, self.own_domains, limits.max_body_chars,
                limits.max_attachments, tuple(envelope.rcpt_tos))
        if self.parsers is not None:
            # Parsing is the largest CPU cost per mail (~1.1 ms on the bench corpus); in
            # a process it runs on another core instead of holding the GIL the event loop
            # and the writer need. Shipping the bytes and the result costs ~0.1 ms.
            timeout_s = self.settings.ingest.parse_timeout_s
            if raw_file is not None:
                return await self.parsers.run(prepare_file, str(raw_file), *rest,
                                              timeout_s=timeout_s)
            return await self.parsers.run(prepare, raw, *rest, timeout_s=timeout_s)
        return prepare(raw, *rest)

    async def _apply(self, raw: bytes, envelope: Envelope, source: str,
                     prepared: Prepared, options: _Options) -> IngestResult:
        mail = prepared.mail
        raw_in_blobs = self.blobs.holds_raw_mail
        try:
            # Most mails carry no file: no thread hop for nothing (~0.1 ms each).
            stored = [] if prepared.noise or not mail.attachments else await asyncio.to_thread(
                self._store_attachments, mail.attachments)
            if raw_in_blobs:  # before the commit that names it, like the attachments
                await asyncio.to_thread(self.blobs.put, raw)
        except (OSError, BlobUnavailable) as exc:
            log.error("mail.blob_write_failed", error=str(exc))
            raise TemporaryFailure(
                f"cannot write to the blob store: {getattr(exc, 'strerror', None) or exc}"
            ) from exc
        inbound = InboundMail(
            raw=raw, raw_sha256=prepared.raw_sha256,
            content_sha256=prepared.content_sha256, mail=mail, source=source,
            envelope_from=envelope.mail_from, envelope_to=tuple(envelope.rcpt_tos),
            noise_reason=prepared.noise, attachments=stored, language=prepared.language,
            reading=prepared.reading, serial_candidates=prepared.serial_candidates,
            request_text=prepared.request_text,
            acknowledge=options.acknowledge, retry_of=options.retry_of,
            raw_in_blobs=raw_in_blobs,
        )
        try:
            result = await self.store.write(partial(
                apply_inbound, inbound=inbound, now=self.clock.now(), settings=self.settings,
                reply_keys=self.reply_keys))
        except StorageError as exc:
            raise TemporaryFailure(str(exc)) from exc
        except Exception as exc:  # a bug in our rules: keep the mail for a retry
            detail = "".join(traceback.format_exception_only(exc)).strip()
            return await self._quarantine_prepared(inbound, f"processing failed: {detail}")
        if result.outcome in (Outcome.NEW_REQUEST, Outcome.TECHNICIAN_REPLY):
            self.on_outbox()
        log.info("mail.accepted", outcome=result.outcome, intervention=result.intervention_number,
                 inbound_id=result.inbound_id, size=len(raw), reason=result.reason or None,
                 attachments=len(stored))
        return result

    def _store_attachments(self, attachments: Sequence[MailAttachment]) -> list[StoredAttachment]:
        return [
            StoredAttachment(filename=a.filename, content_type=a.content_type, size=len(a.data),
                             sha256=self.blobs.put(a.data), content_id=a.content_id,
                             inline=a.inline)
            for a in attachments
        ]

    async def _quarantine(self, raw: bytes, envelope: Envelope, source: str,
                          reason: str) -> IngestResult:
        return await self._quarantine_prepared(
            _raw_only(raw, envelope, source), reason, parsed_fields=False)

    async def _quarantine_prepared(self, inbound: InboundMail, reason: str, *,
                                   parsed_fields: bool = True) -> IngestResult:
        log.error("mail.quarantined", reason=reason)
        try:
            return await self.store.write(partial(quarantine, inbound=inbound, reason=reason,
                                                  now=self.clock.now()))
        except StorageError as exc:
            raise TemporaryFailure(f"cannot quarantine: {exc}") from exc
        except Exception as exc:
            if not parsed_fields:
                raise TemporaryFailure(f"cannot quarantine: {exc}") from exc
            # Something in what we parsed cannot be stored either: keep the raw bytes
            # alone (an operator can retry them), rather than answer 451 for ever.
            return await self._quarantine_prepared(
                _raw_only(inbound.raw, Envelope(inbound.envelope_from, inbound.envelope_to),
                          inbound.source),
                f"{reason}; parsed fields not storable: {exc!r}"[:2000], parsed_fields=False)


def _raw_only(raw: bytes, envelope: Envelope, source: str) -> InboundMail:
    """A mail kept as its bytes alone, nothing parsed from it."""
    empty = ParsedMail(message_id=None, in_reply_to=(), references=(), subject="",
                       from_addr="", from_name="", to_addrs=(), cc_addrs=(), reply_to=(),
                       date=None, body_text="", body_html=None, attachments=())
    return InboundMail(raw=raw, raw_sha256=sha256_hex(raw), mail=empty, source=source,
                       envelope_from=envelope.mail_from, envelope_to=tuple(envelope.rcpt_tos),
                       noise_reason=None, attachments=())
