"""Charsets and MIME shapes that real mailers send and a compat32 parse reads wrong."""

from __future__ import annotations

import base64
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest.charsets import decode_bytes, decode_header
from nexusmail.ingest.mime_parts import MailMessage
from nexusmail.ingest.parse import parse_mail

PORTUGUESE = "Olá, a caldeira não liga. A informação do técnico: não há água quente. Obrigado"
ITALIAN = "Buongiorno, la caldaia è in blocco, perché non si accende più: città di Forlì"
ROMANIAN_PLAIN = "Bună ziua, centrala nu porneşte. Mulţumesc, Ştefan şi soţia"
ROMANIAN_NO_CEDILLA = "Bună ziua, vă rog să trimită pe cineva mâine, e în bucătărie, la mansardă"


def _mail(headers: str, body: bytes = b"hello\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n" + body


@pytest.mark.parametrize(
    ("payload", "declared", "expected"),
    [
        ("会議の件です".encode("iso-2022-jp"), "iso-2022-jp", "会議の件です"),
        ("Città più".encode("utf-7"), "utf-7", "Città più"),
        ("锅炉故障，請儘快來".encode("gbk"), "gb2312", "锅炉故障，請儘快來"),
        ("보일러 고장 똠".encode("cp949"), "ks_c_5601-1987", "보일러 고장 똠"),
        ("Perché “così” 50 €".encode("cp1252"), "iso-8859-1", "Perché “così” 50 €"),
        (PORTUGUESE.encode("cp1252"), None, PORTUGUESE),
        (ITALIAN.encode("cp1252"), None, ITALIAN),
        (ROMANIAN_PLAIN.encode("cp1250"), None, ROMANIAN_PLAIN),
        (ROMANIAN_NO_CEDILLA.encode("cp1250"), None, ROMANIAN_NO_CEDILLA),
        (ROMANIAN_NO_CEDILLA.encode("iso-8859-2"), "iso-8859-1", ROMANIAN_NO_CEDILLA),
    ],
)
def test_charsets_that_need_more_than_the_label(
        payload: bytes, declared: str | None, expected: str) -> None:
    """7-bit non-ASCII charsets, superset charsets and unlabelled text by its words."""
    assert decode_bytes(payload, declared) == expected


def test_raw_8bit_byte_inside_an_encoded_word_is_kept() -> None:
    """A raw utf-8 "é" inside a Q-encoded word decodes to "é", not "?"."""
    raw = _mail("From: a@b.c\nSubject: =?utf-8?Q?caffè_e_caldaia_rotta?=\n")
    assert parse_mail(raw).subject == "caffè e caldaia rotta"
    value = b"=?utf-8?Q?Perch" + "é".encode() + b"_no?="
    assert decode_header(value.decode("ascii", "surrogateescape")) == "Perché no"


def test_raw_utf8_attachment_name_is_not_garbled() -> None:
    """A filename sent as raw utf-8 in the header parameter keeps its letters."""
    raw = _mail(
        "From: a@b.c\nSubject: fattura\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain\r\n\r\nin allegato\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment;"
        b' filename="' + "fattură_città.pdf".encode() + b'"\r\n\r\nxx\r\n--b--\r\n',
    )
    assert [a.filename for a in parse_mail(raw).attachments] == ["fattură_città.pdf"]


def test_raw_8bit_attachment_name_in_the_mail_charset() -> None:
    """Raw cp1252 bytes in a filename, not utf-8, decode with the charset the mail declares."""
    raw = _mail(
        "From: a@b.c\nSubject: fattura\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nin allegato\r\n--b\r\n"
        b"Content-Type: application/pdf; charset=windows-1252\r\n"
        b'Content-Disposition: attachment; filename="' + "perché.pdf".encode("cp1252")
        + b'"\r\n\r\nxx\r\n--b--\r\n',
    )
    assert [a.filename for a in parse_mail(raw).attachments] == ["perché.pdf"]


def test_top_level_forward_uses_the_inner_mail_text() -> None:
    """A mail that is itself message/rfc822 gets the inner mail's text as its body."""
    raw = _mail(
        "From: a@b.c\nSubject: Fwd: guasto\nMIME-Version: 1.0\nContent-Type: message/rfc822\n",
        b"From: cliente@example.it\r\nSubject: guasto\r\nContent-Type: text/plain;"
        b" charset=utf-8\r\n\r\nLa caldaia \xc3\xa8 in blocco.\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.subject == "Fwd: guasto"
    assert "La caldaia è in blocco." in parsed.body_text


def test_boundary_folded_inside_quotes() -> None:
    """A boundary parameter folded inside its quotes still splits the parts."""
    raw = _mail(
        "From: a@b.c\nSubject: foto\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0012_01D9\n'
        ' A8B7.5C3E2F10"\n',
        b"------=_NextPart_000_0012_01D9A8B7.5C3E2F10\r\nContent-Type: text/plain\r\n\r\n"
        b"Ecco la foto.\r\n------=_NextPart_000_0012_01D9A8B7.5C3E2F10\r\n"
        b"Content-Type: image/jpeg; name=foto.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"/9j/4AAQ\r\n------=_NextPart_000_0012_01D9A8B7.5C3E2F10--\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.body_text == "Ecco la foto."
    assert [a.filename for a in parsed.attachments] == ["foto.jpg"]


def test_obsolete_space_before_header_colon() -> None:
    """`Subject  :` (RFC 5322 obsolete syntax) still gives the subject and the body."""
    raw = _mail("From: a@b.c\nSubject  : Caldaia rotta\nTo : support@example.it\n",
                b"La caldaia non parte.\r\n")
    parsed = parse_mail(raw)
    assert parsed.subject == "Caldaia rotta"
    assert parsed.to_addrs == ("support@example.it",)
    assert parsed.body_text == "La caldaia non parte."


def test_named_inline_text_is_the_body_when_there_is_no_other() -> None:
    """Text parts that carry a name but are not marked attachment give the body if alone."""
    raw = _mail(
        "From: a@b.c\nSubject: log\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        b'--b\r\nContent-Type: text/plain; name="msg.txt"\r\n\r\nLa caldaia perde acqua.\r\n'
        b"--b--\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.body_text == "La caldaia perde acqua."
    assert [a.filename for a in parsed.attachments] == ["msg.txt"]


def test_raw_8bit_attachment_name_in_the_charset_of_the_mail_text() -> None:
    """Raw cp1251 bytes in a pdf's name decode with the charset the mail's text declares."""
    raw = _mail(
        "From: a@b.c\nSubject: otchet\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n"
        + "Отчёт во вложении.".encode("cp1251") + b"\r\n--b\r\n"
        b"Content-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="' + "отчёт.pdf".encode("cp1251")
        + b'"\r\n\r\nxx\r\n--b--\r\n',
    )
    assert [a.filename for a in parse_mail(raw).attachments] == ["отчёт.pdf"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["=?utf-8?Q?", "=?utf-8?B?", "?=", "_", "=C3", "a", " ",
                                 "\udce8", "\ud800", "é", "=?x?Q?"]), max_size=40))
def test_decode_header_never_raises(pieces: list[str]) -> None:
    """Any mix of encoded-word pieces, raw-byte escapes and lone surrogates decodes."""
    assert isinstance(decode_header("".join(pieces)), str)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), newline=st.sampled_from(["\n", "\r\n", "\r"]),
       damage=st.sampled_from(["", "!", "=", "é", "\udcff", " ", "garbage"]),
       at=st.integers(0, 500), cte=st.sampled_from(["base64", "BASE64", " base64", "7bit"]))
def test_base64_payload_decodes_as_the_stdlib_does(
    data: bytes, newline: str, damage: str, at: int, cte: str
) -> None:
    """The parser's faster base64 decode gives the stdlib's bytes and defects, also for
    damaged payloads (bad padding, stray characters, raw 8-bit bytes)."""
    encoded = base64.encodebytes(data).decode().replace("\n", newline)
    encoded = encoded[:at] + damage + encoded[at:]
    decoded = []
    for message in (Message(), MailMessage()):
        message["Content-Transfer-Encoding"] = cte
        message.set_payload(encoded)
        decoded.append((message.get_payload(decode=True),
                        [type(d).__name__ for d in message.defects]))
    assert decoded[0] == decoded[1]
