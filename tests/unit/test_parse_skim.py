"""Big attachments: skimmed past the line-by-line parser, and back byte for byte."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.policy import SMTP, default

from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest.parse import parse_mail


def _mail(files: list[bytes], *, crlf: bool, text_last: bool, nested: bool) -> bytes:
    outer = EmailMessage()
    outer["From"] = "mario@example.it"
    outer["To"] = "support@firm.test"
    outer["Subject"] = "foto"
    outer.set_content("In allegato le foto.")
    target = outer
    if nested:
        inner = EmailMessage()
        inner["Subject"] = "inoltrato"
        inner.set_content("messaggio inoltrato")
        target = inner
    for i, data in enumerate(files):
        target.add_attachment(data, maintype="image", subtype="jpeg", filename=f"f{i}.jpg")
    if text_last:
        target.add_attachment("note finali", filename="note.txt")
    if nested:
        outer.add_attachment(target)
    raw = outer.as_bytes(policy=SMTP if crlf else default)
    return raw


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(40_000, 260_000), min_size=1, max_size=3),
       crlf=st.booleans(), text_last=st.booleans())
def test_attachments_come_back_identical(sizes: list[int], crlf: bool, text_last: bool) -> None:
    """Whatever their number, size, line ends and position, attachment bytes survive."""
    files = [os.urandom(size) for size in sizes]
    mail = parse_mail(_mail(files, crlf=crlf, text_last=text_last, nested=False))
    images = [a.data for a in mail.attachments if a.content_type == "image/jpeg"]
    assert images == files
    assert mail.body_text == "In allegato le foto."
    assert not mail.defects


def test_forwarded_message_keeps_its_attachment() -> None:
    """A big file inside a forwarded message/rfc822 part is restored inside it too."""
    photo = os.urandom(120_000)
    mail = parse_mail(_mail([photo], crlf=True, text_last=False, nested=True))
    [forwarded] = [a for a in mail.attachments if a.filename.endswith(".eml")]
    assert parse_mail(forwarded.data).attachments[0].data == photo


def test_base64_looking_text_body_is_untouched() -> None:
    """A plain-text body made of base64-looking lines (a PGP block) reads as written."""
    block = ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5\n" * 700)
    raw = ("From: a@b.it\nTo: support@firm.test\nSubject: chiave\n\n" + block).encode()
    assert parse_mail(raw).body_text == block.rstrip("\n")


def test_text_that_looks_like_a_skim_marker_is_left_alone() -> None:
    """A sender who writes our marker's shape (guessing its nonce) changes nothing: the
    mail keeps its parts and its text reads as written."""
    photo = os.urandom(60_000)
    outer = EmailMessage()
    outer["From"] = "mario@example.it"
    outer["To"] = "support@firm.test"
    outer["Subject"] = "foto"
    outer.set_content("vedi NEXUSMAIL-SKIMMED-RUN-0123456789abcdef-0\n")
    outer.add_attachment(photo, maintype="image", subtype="jpeg", filename="f.jpg")
    mail = parse_mail(outer.as_bytes(policy=SMTP))
    assert mail.body_text == "vedi NEXUSMAIL-SKIMMED-RUN-0123456789abcdef-0"
    assert [a.data for a in mail.attachments] == [photo]
    assert not mail.defects
