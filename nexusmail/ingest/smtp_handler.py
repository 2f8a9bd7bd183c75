"""The aiosmtpd handler: a thin adapter from SMTP/LMTP to `Ingest.accept`.

RCPT is a cheap lookup (ours or 550); DATA hands the exact bytes to ingest and says
250 only after they are committed, 451 when they could not be.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog

from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure
from nexusmail.mail.addresses import is_support_recipient, normalize
from nexusmail.service.metrics import RECIPIENT_REFUSED, Metrics

log = structlog.get_logger(__name__)

S250_OK = "250 2.0.0 Ok"
S250_QUEUED = "250 2.0.0 Ok: stored as {inbound_id}"
S451_TRY_AGAIN = "451 4.3.0 Temporary storage failure, please try again later"
S550_NO_SUCH_USER = "550 5.1.1 <{address}>: recipient not accepted here"
S554_NO_RECIPIENTS = "554 5.5.1 No valid recipients"
S452_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"


class SmtpHandler:
    def __init__(self, ingest: Ingest, support_addresses: Collection[str], *,
                 source: str = "smtp", lmtp: bool = False,
                 metrics: Metrics | None = None, max_recipients: int = 100) -> None:
        self.ingest = ingest
        self.max_recipients = max_recipients
        self.metrics = metrics
        self.support_addresses = frozenset(support_addresses)
        self.source = source
        self.lmtp = lmtp

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            # RFC 5321 4.5.3.1.10: a temporary refusal; the client sends the rest later.
            return S452_TOO_MANY_RECIPIENTS
        if not is_support_recipient(address, self.support_addresses):
            log.info("smtp.rcpt_refused", rcpt=normalize(address), peer=str(session.peer))
            if self.metrics is not None:
                self.metrics.mail(self.source, RECIPIENT_REFUSED)
            return S550_NO_SUCH_USER.format(address=normalize(address))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not envelope.rcpt_tos:
            return S554_NO_RECIPIENTS
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            result = await self.ingest.accept(
                raw, Envelope(envelope.mail_from or "", tuple(envelope.rcpt_tos)), self.source,
                # A large mail spooled by our listener: the parse worker reads it there.
                raw_file=getattr(envelope, "spool_path", None))
        except TemporaryFailure as exc:
            log.warning("smtp.temporary_failure", error=str(exc))
            status = S451_TRY_AGAIN
        except Exception:
            # The loop boundary: accept() keeps what it can (quarantine); anything that
            # still escapes is our fault, and a 5xx would make the sender drop the mail.
            log.exception("smtp.accept_failed")
            status = S451_TRY_AGAIN
        else:
            status = S250_QUEUED.format(inbound_id=result.inbound_id)
        if self.lmtp:
            # RFC 2033 section 4.2: one reply per accepted recipient.
            return "\r\n".join([status] * len(envelope.rcpt_tos))
        return status
