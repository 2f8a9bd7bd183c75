"""Walk a parsed MIME tree: which parts are the body, which are attachments, safe names.

Kept apart from parse.py (headers) so each stays small. The walk is iterative with a
depth limit: hostile mail nests multiparts thousands deep to exhaust the stack.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import unicodedata
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from typing import Any

from nexusmail.ingest.charsets import decode_bytes, decode_header, has_surrogates
from nexusmail.mail.parsed import MailAttachment

MAX_DEPTH = 32
MAX_FILENAME_CHARS = 200
_BODY_TYPES = ("text/plain", "text/html")
# A fixed table, not `mimetypes`: that reads the host's mime.types (I/O, and a
# different answer on each machine).
_EXTENSIONS = {
    "application/pdf": ".pdf", "image/jpeg": ".jpg", "image/jpg": ".jpg",
    "image/pjpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/heic": ".heic", "image/heif": ".heif", "image/tiff": ".tif", "image/bmp": ".bmp",
    "image/svg+xml": ".svg", "application/zip": ".zip", "application/x-zip-compressed": ".zip",
    "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/json": ".json", "application/xml": ".xml", "text/xml": ".xml",
    "text/plain": ".txt", "text/html": ".html", "text/csv": ".csv", "text/calendar": ".ics",
    "text/vcard": ".vcf", "text/x-vcard": ".vcf", "text/rfc822-headers": ".txt",
    "message/rfc822": ".eml", "message/global": ".eml", "audio/mpeg": ".mp3",
    "audio/wav": ".wav", "audio/ogg": ".ogg", "video/mp4": ".mp4", "video/quicktime": ".mov",
    "application/pkcs7-signature": ".p7s", "application/x-pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc", "application/ms-tnef": ".dat",
}  # fmt: skip
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,12}$")


@dataclass(frozen=True)
class Body:
    text_parts: tuple[str, ...]
    html_parts: tuple[str, ...]
    attachments: tuple[MailAttachment, ...]


def read_body(
    message: Message,
    defects: list[str],
    *,
    max_attachments: int,
    message_subject: str = "",
    linesep: str = "\n",
) -> Body:
    """Split `message` into body text, body HTML and attachments (in MIME order)."""
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[MailAttachment] = []
    named_texts: list[str] = []
    # The charset the sender's text declares: raw 8-bit bytes in a later attachment's
    # name were most likely written in it.
    mail_charset = message.get_content_charset()
    capped = False
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    while stack:
        part, depth, in_attachment = stack.pop()
        if mail_charset is None and part.get_content_maintype() == "text":
            mail_charset = part.get_content_charset()
        found = _read_part(part, depth, in_attachment, stack, defects, linesep, mail_charset)
        _note_defects(part, defects)
        if isinstance(found, MailAttachment):
            if _text_not_marked_attachment(part, found, in_attachment):
                named_texts.append(decode_bytes(found.data, part.get_content_charset()))
            if len(attachments) < max_attachments:
                attachments.append(found)
            elif not capped:
                capped = True
                defects.append(f"attachments: more than {max_attachments}, the rest dropped")
        elif found is not None:
            (htmls if found[0] == "text/html" else texts).append(found[1])
    named = tuple(_named(a, i + 1) for i, a in enumerate(attachments))
    if not texts and not htmls:
        # Some mailers give every text part a name ("msg.txt") without marking it an
        # attachment; with no other text, that is what the person wrote.
        texts = named_texts
    return Body(tuple(texts), tuple(htmls), named)


def _text_not_marked_attachment(
    part: Message, found: MailAttachment, in_attachment: bool
) -> bool:
    return (found.content_type == "text/plain" and not in_attachment
            and part.get_content_disposition() != "attachment")


def _read_part(
    part: Message,
    depth: int,
    in_attachment: bool,
    stack: list[tuple[Message, int, bool]],
    defects: list[str],
    linesep: str,
    mail_charset: str | None,
) -> MailAttachment | tuple[str, str] | None:
    ctype = part.get_content_type().lower()
    disposition = part.get_content_disposition()
    if part.is_multipart():
        if ctype.startswith("message/"):
            forwarded = _whole_mail_forward(part, ctype, depth, disposition)
            if forwarded is not None:
                stack.append((forwarded, depth + 1, in_attachment))
                return None
            return _message_attachment(part, ctype, linesep)
        if depth >= MAX_DEPTH:
            defects.append(f"mime: nesting deeper than {MAX_DEPTH}, inner parts dropped")
            return None
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        inner = in_attachment or disposition == "attachment"
        stack.extend((child, depth + 1, inner) for child in reversed(children))
        return None
    filename = _raw_filename(part, mail_charset)
    if ctype.startswith("multipart/"):
        # No boundary, or a boundary that never appears: the stdlib leaves the text as
        # one payload. Read it as plain text rather than lose what the person wrote.
        ctype = "text/plain"
    is_body = (
        ctype in _BODY_TYPES and disposition != "attachment" and not filename and not in_attachment
    )
    data = part.get_payload(decode=True)
    payload = data if isinstance(data, bytes) else b""
    if is_body:
        text = decode_bytes(payload, part.get_content_charset())
        if ctype == "text/plain" and _param(part, "format") == "flowed":
            text = unflow(text, delsp=_param(part, "delsp") == "yes")
        return ctype, text
    content_id = _content_id(part)
    return MailAttachment(
        filename=filename,
        content_type=ctype,
        data=payload,
        content_id=content_id,
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    )


def _whole_mail_forward(
    part: Message, ctype: str, depth: int, disposition: str | None
) -> Message | None:
    """The inner mail when the whole mail is one forwarded mail, else None.

    Some clients forward by sending the original as the top-level message/rfc822: as an
    attachment the request would have no text at all, so its parts are read instead.
    """
    if depth or disposition == "attachment" or ctype not in ("message/rfc822", "message/global"):
        return None
    inner = [c for c in part.get_payload() if isinstance(c, Message)]
    return inner[0] if inner else None


class MailMessage(Message):
    """compat32's Message, reading a boundary folded inside its quotes as one token.

    Outlook-era mailers fold a long `boundary="..."` parameter inside the quotes; read
    literally the fold becomes part of the boundary, which then never appears, and the
    whole multipart (images included) came out as raw MIME text in the body.
    """

    def get_boundary(self, failobj: Any = None) -> Any:
        boundary = super().get_boundary(failobj)
        if isinstance(boundary, str) and "\n" in boundary:
            return _FOLD.sub("", boundary)
        return boundary

    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        """compat32's, with a base64 attachment decoded without cutting it into lines.

        The stdlib splits the encoded text into one object a line and joins them back
        before its strict decode (~0.15 ms of a 190 KB attachment); deleting the CRs and
        LFs (what those lines lose) is ~0.05 ms. Then the same strict decode; whatever it
        would not take (bad padding, stray characters, 8-bit bytes) goes the stdlib's
        way, which also records the defect.
        """
        payload = self._payload  # type: ignore[attr-defined]  # as the parser stored it
        if (decode and i is None and isinstance(payload, str) and payload.isascii()
                and str(self.get("content-transfer-encoding", "")).lower() == "base64"):
            encoded = payload.encode("ascii").replace(b"\r", b"").replace(b"\n", b"")
            if len(encoded) % 4 == 0:
                try:
                    return base64.b64decode(encoded, validate=True)
                except binascii.Error:
                    pass
        if decode:
            return super().get_payload(i, decode=True)
        return super().get_payload(i)


_FOLD = re.compile(r"\r?\n[ \t]+")


def _message_attachment(part: Message, ctype: str, linesep: str) -> MailAttachment:
    """A forwarded mail (message/rfc822) is kept whole, as one .eml; reports as text."""
    inner = [c for c in part.get_payload() if isinstance(c, Message)]
    filename = _raw_filename(part)
    if ctype in ("message/rfc822", "message/global") and inner:
        data = _as_bytes(inner[0], linesep)
        if not filename:
            subject = " ".join(decode_header(str(inner[0].get("subject", ""))).split())
            filename = f"{subject}.eml" if subject else "forwarded.eml"
    else:
        # message/delivery-status and friends: header blocks, no body.
        data = linesep.encode().join(_as_bytes(block, linesep) for block in inner)
        if not filename:
            filename = ctype.partition("/")[2] + ".txt"
    return MailAttachment(
        filename=filename,
        content_type=ctype,
        data=data,
        content_id=_content_id(part),
        inline=False,
    )


def _as_bytes(message: Message, linesep: str) -> bytes:
    buffer = io.BytesIO()
    # max_line_length=0: never refold the sender's headers when writing them back.
    policy = compat32.clone(max_line_length=0, linesep=linesep)
    BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(message)
    return buffer.getvalue()


def _param(part: Message, name: str) -> str:
    value = part.get_param(name)
    if value is None:
        return ""
    return str(collapse_rfc2231_value(value)).strip().lower()


def _note_defects(part: Message, defects: list[str]) -> None:
    for defect in getattr(part, "defects", ()):
        defects.append(f"mime: {type(defect).__name__}")


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    if value is None:
        return None
    cleaned = "".join(str(value).split()).strip("<>")
    return cleaned or None


def _raw_filename(part: Message, mail_charset: str | None = None) -> str:
    """Filename from Content-Disposition or Content-Type name=, RFC 2231 and 2047 decoded."""
    try:
        name = _decoded_params(part, mail_charset).get_filename()
    except (ValueError, LookupError, TypeError, IndexError):
        return ""
    if not name:
        return ""
    if has_surrogates(name):
        name = decode_bytes(name.encode("ascii", "surrogateescape"), None)
    if "=?" in name:
        name = decode_header(name)
    return name


def _decoded_params(part: Message, mail_charset: str | None) -> Message:
    """`part`, or a stand-in holding its parameter fields with raw 8-bit bytes decoded.

    compat32 hands a field with raw 8-bit bytes (a filename sent as plain utf-8) to
    the parameter parser as a header object that has already replaced each byte with
    U+FFFD. The raw field is decoded first, as utf-8 when it is valid utf-8, else in
    the part's declared charset, else the mail's (else the best-scoring guess), then parsed.
    """
    raw = [(name, value) for name, value in part.raw_items()
           if name.lower() in _PARAM_FIELDS and isinstance(value, str)]
    if not any(has_surrogates(value) for _, value in raw):
        return part
    charset = part.get_content_charset() or mail_charset
    stand_in = Message()
    for name, value in raw:
        if has_surrogates(value):
            value = decode_bytes(value.encode("ascii", "surrogateescape"), charset)
        stand_in[name] = value
    return stand_in


_PARAM_FIELDS = frozenset({"content-disposition", "content-type"})


def _named(attachment: MailAttachment, index: int) -> MailAttachment:
    safe = safe_filename(attachment.filename, attachment.content_type, index)
    if safe == attachment.filename:
        return attachment
    return MailAttachment(
        filename=safe,
        content_type=attachment.content_type,
        data=attachment.data,
        content_id=attachment.content_id,
        inline=attachment.inline,
    )


def safe_filename(name: str, content_type: str, index: int) -> str:
    """A name safe to show and to offer for download: no directories, no controls.

    Strips directory parts (both separators: Windows senders), control and format
    characters (U+202E turns "fdp.exe" into a fake ".pdf"), leading dots (hidden files);
    keeps the extension when shortening; never empty.
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    if not name:
        return f"attachment-{index}{_EXTENSIONS.get(content_type, '.bin')}"
    if len(name) > MAX_FILENAME_CHARS:
        match = _EXTENSION.search(name)
        extension = match.group(0) if match else ""
        name = name[: MAX_FILENAME_CHARS - len(extension)].rstrip(". ") + extension
    return name


def unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (Apple Mail, Thunderbird)."""
    out: list[str] = []
    paragraph = ""
    paragraph_depth: int | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing (§4.4)
        if paragraph_depth is not None and depth != paragraph_depth:
            out.append(_quoted(paragraph, paragraph_depth))
            paragraph, paragraph_depth = "", None
        if content.endswith(" ") and content != "-- ":  # soft break; "-- " is a signature
            paragraph += content[:-1] if delsp else content
            paragraph_depth = depth
            continue
        out.append(_quoted(paragraph + content, depth))
        paragraph, paragraph_depth = "", None
    if paragraph_depth is not None:
        out.append(_quoted(paragraph, paragraph_depth))
    return "\n".join(out)


def _quoted(text: str, depth: int) -> str:
    return (">" * depth + " " + text) if depth else text
