"""Raw RFC 5322 bytes -> ParsedMail. Pure, and never raises: defects are recorded.

Why a stdlib walk and not `mailparser.parse_from_bytes`: speed is not the reason (on
the fixture corpus, one core: mail-parser's parse alone ~370-450 us/mail, this whole
function ~270-330 us/mail including HTML sanitising), correctness is: mail-parser
decodes text with the declared charset, else utf-8 with errors *ignored*, which silently
drops the cp1250/cp1252 letters our senders write under a lying label; it names unnamed
attachments with random strings (not reproducible, breaks idempotence) and parses every
Received header we never read. We keep mail-parser where it adds value: its address
recovery (`get_addresses`), which decodes display names in their lexical context and
recovers mailboxes from malformed From/To/Cc; plain fields take the cheaper stdlib path.
compat32, not policy.default: parsing plus reading a few headers and walking the parts
with the default policy took ~1,500 us/mail against ~70 us for the compat32 parse (the
default policy builds a header object per field), and compat32 never raises on
malformed fields.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32

from mailparser.utils import get_addresses

from nexusmail.ingest import line_runs, mime_parts
from nexusmail.ingest.charsets import (
    decode_bytes,
    decode_header,
    has_surrogates,
    normalize_romanian,
)
from nexusmail.mail.html import html_to_text, sanitize_html
from nexusmail.mail.parsed import MailAttachment, ParsedMail
from nexusmail.mail.sender import MAX_FROM_CHARS, MAX_RESULTS_HEADERS, NOT_CHECKED

# The fields the classifier (noise, threading) and the admin page read.
CLASSIFIER_HEADERS = frozenset({
    "auto-submitted", "precedence", "list-id", "list-unsubscribe", "list-post",
    "x-autoreply", "x-autorespond", "x-auto-response-suppress", "content-type",
    "return-path", "x-nexusmail-outbox", "x-failed-recipients", "feedback-type",
    "sender", "delivered-to", "x-original-to", "x-mailer", "user-agent",
})  # fmt: skip
_MAX_IDS = 100          # References grows with a thread; keep the most recent ones
_HTML_TEXT_FACTOR = 2    # HTML converted to text: at most this many times max_body_chars
# Where a reply's quote starts is near the top of its HTML, after the technician's few
# lines (and Outlook's style sheet, ~20-40 KB): enough of it to find the markers.
_HTML_AS_SENT_CHARS = 200_000
_MAX_ID_CHARS = 250     # RFC 5322 §2.1.1 line limit is 998; real ids are far shorter
MAX_RESULTS_CHARS = 2000  # one Authentication-Results value kept; real ones are shorter
_ID_IN_ANGLES = re.compile(r"<\s*([^<>\s]+?)\s*>")
_ID_BARE = re.compile(r"[!-~]+@[!-~]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_PARSER = BytesParser(mime_parts.MailMessage, policy=compat32)
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


def parse_mail(
    raw: bytes, *, max_body_chars: int = 1_000_000, max_attachments: int = 100
) -> ParsedMail:
    """Read a mail; what could not be read is described in `defects`, never raised."""
    defects: list[str] = []
    if raw[:1] in (b"\r", b"\n", b" ", b"\t"):
        # Some gateways prepend blank lines; read literally, the headers would become body.
        raw = raw.lstrip(b"\r\n\t ")
        defects.append("mime: leading blank lines removed")
    raw = _tidy_obsolete_field_names(raw)
    message = _read_message(raw, defects)
    if message is None or not message.keys():
        defects.append("not-a-mail: no header fields")
        return _empty(defects)
    # The contract boundary: hostile MIME must not take down ingest (the caller would
    # have to quarantine a mail a person wrote). Each half is guarded on its own so a
    # broken body still yields the headers needed to thread and classify the mail.
    try:
        head = _read_head(message, defects)
    except Exception as exc:  # the contract boundary, see above
        defects.append(f"headers: unreadable ({type(exc).__name__})")
        head = _Head()
    try:
        body = mime_parts.read_body(
            message,
            defects,
            max_attachments=max_attachments,
            message_subject=head.subject,
            linesep="\r\n" if b"\r\n" in raw[:4096] else "\n",
        )
    except Exception as exc:  # the contract boundary, see above
        defects.append(f"body: unreadable ({type(exc).__name__})")
        body = mime_parts.Body((), (), ())
    return _assemble(message, head, body, defects, max_body_chars=max_body_chars)


# RFC 5322 §4.5 obsolete syntax: whitespace between a field name and its colon
# ("Subject  :"). The stdlib takes such a line for the end of the header block, so the
# subject was lost and the remaining fields were read as the body.
_OBSOLETE_FIELD_NAME = re.compile(rb"(?m)^([!-9;-~]+)[ \t]+:")
_BLANK_LINE = re.compile(rb"\n\r?\n")


def _tidy_obsolete_field_names(raw: bytes) -> bytes:
    """The top-level header block with "Name  :" written as "Name:"; the body untouched."""
    blank_line = _BLANK_LINE.search(raw)  # stops at the header's end, not the mail's
    head_end = blank_line.start() + 1 if blank_line else len(raw)
    head = raw[:head_end]
    if b" :" not in head and b"\t:" not in head:
        return raw
    return _OBSOLETE_FIELD_NAME.sub(rb"\1:", head) + raw[head_end:]


def _read_message(raw: bytes, defects: list[str]) -> Message | None:
    try:
        single = _read_single_part(raw)
        if single is not None:
            return single
        skeleton, runs = line_runs.cut_runs(raw)  # see line_runs: the parser's slow part
        message = _PARSER.parsebytes(skeleton)
        if runs:
            line_runs.put_back_runs(message, runs)
        return message
    except RecursionError:
        # The stdlib nests one generator per multipart level: thousands of levels
        # exhaust the stack. Keep the headers so the mail can still be threaded.
        defects.append("mime: nesting too deep, body not read")
    except Exception as exc:  # the stdlib parser on hostile bytes
        defects.append(f"mime: unparseable ({type(exc).__name__})")
    try:
        return _HEADER_PARSER.parsebytes(raw)
    except Exception:  # not even the header block can be read
        return None


# A mail of one part (most mail: a text/plain alone) has nothing in its body for the
# parser to find, yet the stdlib reads it one line at a time in Python (~1 us a line,
# a tenth of the whole parse step). Such a mail's header block is parsed alone and its
# body set as the payload: what the parser sets too, as it keeps the lines unchanged.
_PARTS_NAMED = re.compile(rb"(?i)multipart|message/")


def _read_single_part(raw: bytes) -> Message | None:
    """`raw` parsed when it is a mail of one part, else None (for the whole parse)."""
    blank_line = _BLANK_LINE.search(raw)
    if blank_line is None:
        return None
    head, body = raw[: blank_line.end()], raw[blank_line.end() :]
    if _PARTS_NAMED.search(head) is not None:
        return None  # a cheap look first: most multipart mails are not parsed twice
    message = _PARSER.parsebytes(head)
    # The parser's own verdict decides: not a container, and the header block ended at
    # that blank line (else some of the head was already body, read another way).
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    if message.get_payload() != "":
        return None
    message.set_payload(body.decode("ascii", "surrogateescape"))  # as BytesParser decodes
    return message


# -- headers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""
    from_addr: str = ""
    from_name: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    date: datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)
    from_values: tuple[str, ...] = ()
    authentication_results: tuple[str, ...] = ()


def _read_head(message: Message, defects: list[str]) -> _Head:
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        raw.setdefault(name.strip().lower(), []).append(str(value))
    first = {name: values[0] for name, values in raw.items()}
    from_name, from_addr = _first_address(raw.get("from", []), defects)
    return _Head(
        message_id=_one_id(first.get("message-id"), defects),
        in_reply_to=_ids(first.get("in-reply-to", "")),
        references=_ids(" ".join(raw.get("references", []))),
        subject=_fold(decode_header(first.get("subject", ""))),
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(raw.get("to", []), defects, "to"),
        cc=_addresses(raw.get("cc", []), defects, "cc"),
        reply_to=_addresses(raw.get("reply-to", []), defects, "reply-to"),
        date=_date(first.get("date"), defects),
        headers={
            name: _fold(decode_header(value))
            for name, value in first.items()
            if name in CLASSIFIER_HEADERS
        },
        from_values=tuple(value[: MAX_FROM_CHARS + 1] for value in raw.get("from", [])),
        authentication_results=tuple(
            _fold(v)[:MAX_RESULTS_CHARS] for v in raw.get("authentication-results", [])
        )[:MAX_RESULTS_HEADERS],
    )


def _fold(value: str) -> str:
    return " ".join(_CONTROLS.sub(" ", value).split())


def _one_id(value: str | None, defects: list[str]) -> str | None:
    if value is None:
        return None
    found = _ids(value)
    if not found:
        defects.append("message-id: unreadable")
        return None
    return found[0]


def _ids(value: str) -> tuple[str, ...]:
    """Message-IDs without angle brackets, in order, once each (RFC 5322 §3.6.4)."""
    if has_surrogates(value):
        # Raw 8-bit bytes in an ID (RFC 5322 allows none) came through as lone surrogates,
        # which SQLite cannot store: the mail was then neither processed nor quarantined.
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    found = _ID_IN_ANGLES.findall(value)
    if not found:
        # Whitespace-separated tokens first: the regex alone backtracks quadratically
        # over a long line without "@" (a 200 KB References line took 52 s).
        found = [token for token in value.split() if "@" in token and _ID_BARE.fullmatch(token)]
        found = found[:1]
    unique = dict.fromkeys(i for i in found if "@" in i and len(i) <= _MAX_ID_CHARS)
    return tuple(unique)[-_MAX_IDS:]


def _address_pairs(values: list[str], defects: list[str], label: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        if has_surrogates(value):
            value = decode_bytes(value.encode("ascii", "surrogateescape"), None)
        found = _plain_addresses(value)
        if found is None:
            try:
                found = get_addresses(value, decode_names=True)
            except Exception:  # third-party recovery parser on hostile input
                found = email.utils.getaddresses([value])
        pairs.extend((name, addr) for name, addr in found if "@" in addr)
        if value.strip() and not any("@" in addr for _, addr in found):
            defects.append(f"{label}: unreadable address")
    return pairs


def _plain_addresses(value: str) -> list[tuple[str, str]] | None:
    """The stdlib's reading when the field is unremarkable, None when it needs recovery.

    Unremarkable: no encoded-words, and one mailbox per "@" all read back with an "@".
    That is most mail, and the stdlib is about 3x cheaper than mail-parser's recovery.
    """
    if "=?" in value or ('"' in value and "@" in value.partition("<")[0]):
        return None
    found = email.utils.getaddresses([value])
    if len(found) != value.count("@") or not all("@" in addr for _, addr in found):
        return None
    return found


def _first_address(values: list[str], defects: list[str]) -> tuple[str, str]:
    pairs = _address_pairs(values[:1], defects, "from")
    if not pairs:
        return "", ""
    name, addr = pairs[0]
    if "=?" in name:
        name = decode_header(name)
    return _fold(name), _fold(addr).lower()


def _addresses(values: list[str], defects: list[str], label: str) -> tuple[str, ...]:
    pairs = _address_pairs(values, defects, label)
    return tuple(dict.fromkeys(_fold(addr).lower() for _, addr in pairs))


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(_fold(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("date: unreadable")
        return None
    # RFC 5322 §3.3: "-0000" means UTC with the local offset unknown.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- assembly --------------------------------------------------------------------------


def _assemble(
    message: Message,
    head: _Head,
    body: mime_parts.Body,
    defects: list[str],
    *,
    max_body_chars: int,
) -> ParsedMail:
    body_html = sanitize_html("\n".join(body.html_parts)) if body.html_parts else None
    if body.text_parts:
        body_text = "\n".join(body.text_parts)
    elif body.html_parts:
        html = "\n".join(body.html_parts)
        # html.parser costs ~0.5 s per MB; markup beyond this cannot reach the kept text
        # in any mail we have seen (Outlook's HTML is ~5-10x its text, not more than 2x
        # the body limit), and the cap bounds the worst case for a hostile sender.
        if len(html) > _HTML_TEXT_FACTOR * max_body_chars:
            html = html[: _HTML_TEXT_FACTOR * max_body_chars]
            defects.append("body: HTML too long, only its start converted to text")
        body_text = html_to_text(html)
    else:
        body_text = ""
    body_text = body_text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").rstrip()
    if "\x00" in body_text:
        body_text = body_text.replace("\x00", "")
        defects.append("body: NUL characters removed")
    if len(body_text) > max_body_chars:
        body_text = body_text[:max_body_chars]
        defects.append(f"body: truncated to {max_body_chars} characters")
    return ParsedMail(
        message_id=head.message_id,
        in_reply_to=head.in_reply_to,
        references=head.references,
        subject=head.subject,
        from_addr=head.from_addr,
        from_name=head.from_name,
        to_addrs=head.to,
        cc_addrs=head.cc,
        reply_to=head.reply_to,
        date=head.date,
        body_text=body_text,
        body_html=body_html,
        attachments=body.attachments,
        headers=head.headers,
        content_type=message.get_content_type().lower(),
        defects=tuple(dict.fromkeys(defects)),
        search_text=normalize_romanian(head.subject + "\n" + body_text),
        sender_problem=NOT_CHECKED,
        from_values=head.from_values,
        authentication_results=head.authentication_results,
        html_as_sent="\n".join(body.html_parts)[:_HTML_AS_SENT_CHARS] if body.html_parts else None,
    )


def _empty(defects: list[str]) -> ParsedMail:
    return ParsedMail(
        message_id=None, in_reply_to=(), references=(), subject="", from_addr="",
        from_name="", to_addrs=(), cc_addrs=(), reply_to=(), date=None, body_text="",
        body_html=None, attachments=(), defects=tuple(defects),
    )  # fmt: skip


__all__ = ["CLASSIFIER_HEADERS", "MailAttachment", "ParsedMail", "parse_mail"]
