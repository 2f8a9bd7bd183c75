"""The CPU-heavy first step of ingest: hash, parse, classify, guess the language.

Pure and picklable, so it runs in a parse worker process (`parse_workers`). Kept in a
module of its own that imports only the parser: the worker loads this and not the
store, the config or the web stack (its peak RSS in the ingest benchmark went from 57
to 29 MB).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nexusmail.blobs.digest import sha256_hex
from nexusmail.ingest.noise import noise_reason
from nexusmail.ingest.parse import parse_mail
from nexusmail.mail.fingerprint import content_sha256
from nexusmail.mail.language import guess_language
from nexusmail.mail.parsed import ParsedMail
from nexusmail.mail.reply_reading import ReplyReading, read_reply
from nexusmail.mail.sender import NOT_CHECKED, from_problem
from nexusmail.tickets.reply_claims import may_name_assignment
from nexusmail.tickets.request_guess import RequestText, request_text
from nexusmail.tickets.serials import serial_candidates


@dataclass(frozen=True)
class Prepared:
    """What the CPU-heavy first step yields; computed off the event loop."""

    raw_sha256: str
    content_sha256: str  # the same for every delivery of one mail (mail.fingerprint)
    mail: ParsedMail
    noise: str | None
    language: str | None
    # How it reads as a technician's answer: worked out here, off the store's writer,
    # for any mail that may name an assignment (the writer only learns later whether it
    # does); None for the others, which no assignment can match.
    reading: ReplyReading | None = None
    # Tokens that may be serials of the customer's machines, for the writer to look up.
    serial_candidates: tuple[str, ...] = ()
    # What guessing its request type and urgency reads, should it open a case.
    request_text: RequestText | None = None


def prepare(raw: bytes, envelope_from: str | None, own_domains: Collection[str],
            max_body_chars: int, max_attachments: int,
            envelope_to: Sequence[str] = ()) -> Prepared:
    """Hash, parse and classify: pure, picklable, so it may run in another process."""
    mail = parse_mail(raw, max_body_chars=max_body_chars, max_attachments=max_attachments)
    noise = noise_reason(mail, envelope_from=envelope_from, own_domains=own_domains)
    language = None if noise else guess_language(mail.subject + "\n" + mail.body_text,
                                                 sender=mail.from_addr or envelope_from or "")
    reading = None
    sender_problem = NOT_CHECKED  # a doubt: such a mail never acts
    # Reading a verdict and the strict From check were most of this step's cost, and
    # only a mail that may act needs them.
    if not noise and may_name_assignment(mail, envelope_to):
        reading = read_reply(mail.body_text, mail.html_as_sent)
        sender_problem = from_problem(mail.from_values)
    serials = () if noise else serial_candidates(mail.subject, mail.body_text)
    text = None if noise else request_text(mail.subject, mail.body_text)
    # Read; not carried back to the ingest process, which has the sanitized HTML.
    mail = replace(mail, html_as_sent=None, from_values=(), sender_problem=sender_problem)
    return Prepared(sha256_hex(raw), content_sha256(raw), mail, noise, language, reading,
                    serials, text)


def prepare_file(path: str, *args: Any, **kwargs: Any) -> Prepared:
    """`prepare` for a mail spooled to a file: a parse worker reads it from there, so
    the daemon does not pickle and ship a large mail's bytes (two more copies of it)."""
    with open(path, "rb") as spooled:
        raw = spooled.read()
    return prepare(raw, *args, **kwargs)
