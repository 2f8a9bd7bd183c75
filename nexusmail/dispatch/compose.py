"""Turning an outbox row into the mail we send: jinja2 templates in, a MIME message out.

Pure apart from reading templates (and attachment blobs through an injected loader):
the same row composes to the same headers and bodies, with the Message-ID fixed when
the row was enqueued, so a mail sent again after a crash is the same mail.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import encoders
from email._policybase import Compat32
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime, formataddr
from typing import Any

import jinja2

from nexusmail.clock import Clock, SystemClock
from nexusmail.config import MailSettings
from nexusmail.dispatch.calendar_invite import invitation_part
from nexusmail.dispatch.template_choice import (
    FALLBACK_LANGUAGE,
    TemplateChoice,
    choose_templates,
    is_template_name,
)
from nexusmail.mail.headers import OWN_MAIL_HEADER
from nexusmail.storage.connections import DbRow

# RFC 3834 section 5: "auto-replied" for a mail caused by another mail (the
# acknowledgement answers the customer's request), "auto-generated" for the rest of
# what the daemon sends on its own. Kinds written by a person carry neither.
AUTO_REPLIED_KINDS = frozenset({"acknowledgement"})
PERSONAL_KINDS = frozenset({"operator_reply"})

# Quoted-printable text parts stay readable in any raw view; base64 would not.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP

BlobLoader = Callable[[str], bytes]


class ComposeError(Exception):
    """The row cannot become a mail (template bug, missing template or blob).

    Retrying will not help: the outbox worker marks the row failed with this message.
    """


@dataclass(frozen=True)
class OutboxRow:
    """The outbox columns the worker needs (see migrations/0001_initial.sql)."""

    id: int
    message_id: str                 # without angle brackets, fixed at enqueue
    kind: str
    recipient: str
    language: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    intervention_number: int | None = None
    thread_message_id: int | None = None
    attempts: int = 0

    @classmethod
    def from_db(cls, row: DbRow | Mapping[str, Any]) -> OutboxRow:
        """Build from a row of `tickets.outbox.claim_due`; a context that is not a JSON object
        raises ComposeError (the row can never be sent)."""
        try:
            context = json.loads(row["context"] or "{}")
        except json.JSONDecodeError as exc:
            raise ComposeError(f"outbox context is not valid JSON: {exc}") from None
        if not isinstance(context, dict):
            raise ComposeError("outbox context is not a JSON object")
        return cls(
            id=int(row["id"]),
            message_id=str(row["message_id"]),
            kind=str(row["kind"]),
            recipient=str(row["recipient"]),
            language=str(row["language"]),
            template=str(row["template"]),
            context=context,
            intervention_number=row["intervention_number"],
            thread_message_id=row["thread_message_id"],
            attempts=int(row["attempts"]),
        )


@dataclass(frozen=True)
class ComposedMail:
    """The mail, plus what the thread message shows of it."""

    message: Message      # compat32: cheap to build and to flatten
    subject: str
    body_text: str
    from_addr: str
    language: str       # the language actually used (after any fallback to en)


def make_environment(mail_settings: MailSettings) -> jinja2.Environment:
    """Packaged templates (found in an installed wheel too), overridden file by file by
    `[mail] templates_dir` when set."""
    loaders: list[jinja2.BaseLoader] = []
    if mail_settings.templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(mail_settings.templates_dir))
    loaders.append(jinja2.PackageLoader("nexusmail", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Only HTML parts are escaped; subject and text parts are plain text.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        # A misspelt key must fail the row loudly, not send a mail with a hole in it.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # No stat() of every template file per mail (two per acknowledgement): a reload
        # (SIGHUP) builds a new environment, which is when edited templates take effect.
        auto_reload=False,
    )


class Composer:
    """Renders outbox rows into mails from `mail/<language>/<template>.*.j2`."""

    def __init__(
        self,
        mail_settings: MailSettings,
        *,
        blob_loader: BlobLoader | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = mail_settings
        self.env = make_environment(mail_settings)
        self.blob_loader = blob_loader
        self.clock: Clock = clock or SystemClock()
        self.from_addr = mail_settings.support_addresses[0]

    def compose(self, row: OutboxRow) -> ComposedMail:
        """Render `row`; raise ComposeError when it cannot be (never a half mail).

        Blocking (template files, attachment blobs): the worker calls it in a thread.
        """
        try:
            return self._compose(row)
        except ComposeError:
            raise
        except jinja2.TemplateError as exc:
            raise ComposeError(f"template {row.template!r}: {type(exc).__name__}: {exc}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ComposeError(f"cannot compose {row.template!r}: {exc!r}") from exc

    def _compose(self, row: OutboxRow) -> ComposedMail:
        choice = self._choose(row)
        language, base = choice.language, choice.body
        context = self._context(row, language)
        subject = " ".join(self.env.get_template(choice.subject).render(context).split())
        if not subject:
            raise ComposeError(f"template {row.template!r} rendered an empty subject")
        text = self.env.get_template(f"{base}.txt.j2").render(context).strip() + "\n"
        html: str | None = None
        try:
            html_template = self.env.get_template(f"{base}.html.j2")
        except jinja2.TemplateNotFound:
            html_template = None  # HTML is optional: text-only mails are fine
        if html_template is not None:
            html = html_template.render(context)

        body = self._body(text, html, row.message_id)
        calendar = row.context.get("calendar")
        if calendar:
            # Beside the text, as calendar clients expect an invitation: one more
            # alternative of the same message.
            parts = body.get_payload() if body.is_multipart() else [body]
            body = MIMEMultipart(
                "alternative", _boundary("alt", row.message_id),
                _subparts=[*parts, invitation_part(calendar, stamp=self.clock.now())])
        attachments = [self._attachment(a) for a in row.context.get("attachments") or ()]
        msg: Message = body
        if attachments:
            msg = MIMEMultipart("mixed", _boundary("mixed", row.message_id),
                                _subparts=[body, *attachments])
        msg["From"] = formataddr((self.settings.company_name, self.from_addr), charset="utf-8")
        msg["To"] = row.recipient
        msg["Subject"] = _header(subject)
        msg["Date"] = format_datetime(self.clock.now())
        msg["Message-ID"] = f"<{row.message_id}>"
        msg["Reply-To"] = str(row.context.get("reply_to") or self.from_addr)
        in_reply_to = _ids(row.context.get("in_reply_to"))
        if in_reply_to:
            msg["In-Reply-To"] = " ".join(f"<{mid}>" for mid in in_reply_to)
        references = _ids(row.context.get("references"))
        if references:
            msg["References"] = " ".join(f"<{mid}>" for mid in references)
        if row.kind not in PERSONAL_KINDS:
            msg["Auto-Submitted"] = (
                "auto-replied" if row.kind in AUTO_REPLIED_KINDS else "auto-generated"
            )
        # Exchange/Outlook: no out-of-office or read receipts back to a robot.
        msg["X-Auto-Response-Suppress"] = "All"
        # Lets ingest recognise our own mail coming back (noise, never a case).
        msg[OWN_MAIL_HEADER] = row.message_id
        msg["Content-Language"] = language
        return ComposedMail(msg, subject, text, self.from_addr, language)

    @staticmethod
    def _body(text: str, html: str | None, message_id: str) -> Message:
        # compat32 building: the modern EmailMessage API parsed every header we set
        # and cost ~2.7 ms per mail, most of the outbox worker's CPU in the benchmark.
        plain = _qp_text(text, "plain")
        if html is None:
            return plain
        rich = _qp_text(html, "html")
        return MIMEMultipart("alternative", _boundary("alt", message_id), _subparts=[plain, rich])

    def _choose(self, row: OutboxRow) -> TemplateChoice:
        if not is_template_name(row.template):
            raise ComposeError(f"bad template name {row.template!r}")
        choice = choose_templates(self.env, row.template, row.language,
                                  row.context.get("template_variant"))
        if choice is None:
            raise ComposeError(
                f"no template mail/{{{row.language},{FALLBACK_LANGUAGE}}}/{row.template}.txt.j2"
            )
        return choice

    def _context(self, row: OutboxRow, language: str) -> dict[str, Any]:
        # Settings give defaults; the row's own context (fixed at enqueue) wins.
        context: dict[str, Any] = {
            "company_name": self.settings.company_name,
            "support_address": self.from_addr,
            "language": language,
            "message_id": row.message_id,
        }
        context.update(row.context)
        # A mail about a case may carry its request type's names in every language, the
        # template's language being known only here (a missing one falls back to English).
        names = row.context.get("request_type_names")
        if isinstance(names, Mapping) and "request_type_name" not in row.context:
            context["request_type_name"] = (names.get(language) or names.get("en")
                                            or row.context.get("request_type") or "")
        return context

    def _attachment(self, attachment: Any) -> Message:
        if not isinstance(attachment, Mapping):
            raise ComposeError(f"attachment entry is not an object: {attachment!r}")
        if self.blob_loader is None:
            raise ComposeError("the mail has attachments but no blob loader was given")
        sha256 = str(attachment["sha256"])
        filename = str(attachment.get("filename") or sha256[:12])
        maintype, _, subtype = str(
            attachment.get("content_type") or "application/octet-stream"
        ).partition("/")
        part = MIMEBase(maintype or "application", subtype or "octet-stream")
        part.set_payload(self.blob_loader(sha256))
        encoders.encode_base64(part)
        # RFC 2231 form, so accented file names survive every client.
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
        return part


def _qp_text(text: str, subtype: str) -> Message:
    """What MIMEText(text, subtype, utf-8 quoted-printable) builds, byte for byte (a
    test compares them), at a third of the cost: MIMEText parses back the parameters
    of the Content-Type header it has just written, for every part."""
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["MIME-Version"] = "1.0"
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_UTF8_QP.body_encode(text))
    return part


_LINE_END = re.compile(r"\r\n|\r|\n")
_FROM_LINE = re.compile(r"^From ", re.MULTILINE)


class _WirePolicy(Compat32):
    """compat32 that writes a header we already made 7-bit and single-line as is.

    The stock compat32 re-folds every header through email.header.Header (~0.3 ms
    each, ~20 per mail); ours are ASCII by construction (_header() encodes the rest).
    """

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if isinstance(value, str) and value.isascii() and "\n" not in value:
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]  # not in typeshed


WIRE_POLICY = _WirePolicy(linesep="\r\n")


def wire_bytes(message: Message, *, linesep: str = "\r\n") -> bytes:
    """The bytes to send (CRLF line ends, as SMTP wants) or to file (linesep="\n")."""
    pieces: list[str] = []
    try:
        if _flatten_plain(message, linesep, pieces):
            return "".join(pieces).encode("ascii")
    except UnicodeEncodeError:
        pass  # 8-bit text somewhere: the generator knows what to do with it
    out = io.BytesIO()
    policy = WIRE_POLICY if linesep == "\r\n" else WIRE_POLICY.clone(linesep=linesep)
    BytesGenerator(out, policy=policy).flatten(message)
    return out.getvalue()


def _flatten_plain(message: Message, linesep: str, out: list[str]) -> bool:
    """What BytesGenerator writes under WIRE_POLICY, appended to `out` as text, for the
    mails we compose: 7-bit single-line headers, text and base64 parts, multiparts with
    a boundary set and no preamble or epilogue. False (with `out` unusable) for
    anything else, which the generator then writes.

    The generator writes every line of a body separately through several layers of
    calls (~0.07 ms per acknowledgement, a sixth of the worker's CPU per mail); the
    same bytes come here from one substitution per part. A test compares the two on
    every kind of mail we send.
    """
    for name, value in message.raw_items():
        if not (isinstance(value, str) and value.isascii() and "\n" not in value
                and "\r" not in value):
            return False
        out.append(f"{name}: {value}{linesep}")
    out.append(linesep)
    payload = message._payload  # type: ignore[attr-defined]  # what the generator reads
    maintype = message.get_content_maintype()
    if maintype == "multipart":
        boundary = message.get_boundary()
        if (not isinstance(payload, list) or boundary is None
                or message.preamble is not None or message.epilogue is not None):
            return False
        out.append(f"--{boundary}{linesep}")
        for number, part in enumerate(payload):
            if number:
                out.append(f"{linesep}--{boundary}{linesep}")
            if not _flatten_plain(part, linesep, out):
                return False
        out.append(f"{linesep}--{boundary}--{linesep}")
        return True
    if payload is None:
        return True
    if not isinstance(payload, str) or maintype == "message":
        return False
    if WIRE_POLICY.mangle_from_ and "From " in payload:
        payload = _FROM_LINE.sub(">From ", payload)  # as mbox readers expect
    out.append(_LINE_END.sub(linesep, payload))
    return True


def _header(value: str) -> str:
    """Plain ASCII as is; anything else as RFC 2047 encoded-words on one line (each
    word under 75 characters, split between characters, never inside one)."""
    if value.isascii():
        return value
    data = value.encode()
    words, start = [], 0
    while start < len(data):
        end = start + 45  # 45 bytes -> 60 base64 chars + 12 overhead
        if end < len(data):
            while data[end] & 0xC0 == 0x80:  # inside a character: cut before it
                end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode()}?=")
        start = end
    return " ".join(words)


def _boundary(part: str, message_id: str) -> str:
    """A MIME boundary fixed by the row, like the rest of the mail. It cannot occur in
    the parts: "=_" is never produced by quoted-printable (text) or base64 (files).
    Left unset, email.generator draws a random one and compiles a fresh regex per
    mail to check it against the text (half the cost of flattening an ack)."""
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return f"=_nm_{part}_{digest}"


def _ids(value: Any) -> list[str]:
    """Message-IDs from a context value (a list, or one string), without brackets."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(item).strip().strip("<>") for item in items if str(item).strip("<> ")]
