"""A parsed inbound mail as plain data: what the pure core and the tickets layer see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class MailAttachment:
    filename: str          # safe: no path separators, no control characters, never empty
    content_type: str      # lower case, e.g. "image/jpeg"
    data: bytes
    content_id: str | None = None
    inline: bool = False   # an inline image (Content-Disposition inline or referenced by cid)


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None             # without angle brackets; None when absent/garbage
    in_reply_to: tuple[str, ...]       # Message-IDs, without angle brackets
    references: tuple[str, ...]
    subject: str                       # decoded (RFC 2047), whitespace folded
    from_addr: str                     # lower case address, "" when none could be read
    from_name: str                     # display name, decoded
    to_addrs: tuple[str, ...]          # lower case
    cc_addrs: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    body_text: str                     # plain text; from the HTML part when there is no text part
    body_html: str | None              # sanitized with nh3; None when the mail had no HTML
    attachments: tuple[MailAttachment, ...]
    # Header fields the classifier needs, names lower case, values decoded and stripped
    # (auto-submitted, precedence, list-id, x-autoreply, content-type, return-path, ...).
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"   # of the top-level part, lower case
    defects: tuple[str, ...] = ()      # what was wrong with the MIME and how we coped
    search_text: str = ""              # body + subject with Romanian cedillas normalised
    # Why the From cannot be believed enough to act on ("" when it can): see mail.sender.
    # Parsing leaves mail.sender.NOT_CHECKED; the parse step checks the mails that may
    # answer an assignment (ingest.prepare).
    sender_problem: str = ""
    # Every From header's value as received, each cut just past what the check reads.
    from_values: tuple[str, ...] = ()
    # The Authentication-Results headers as received (a trusted MTA's DMARC verdict).
    authentication_results: tuple[str, ...] = ()
    # The opening of the HTML part as the client wrote it: its class and id attributes
    # mark where the client put the quote (gmail_quote, divRplyFwdMsg, ...), and
    # sanitizing drops them. Read by reply reading in the parse step, never shown.
    html_as_sent: str | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")
