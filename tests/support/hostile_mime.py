"""Hypothesis strategies for hostile mail: what the ingest pipeline must survive.

Header soup, oversized header lines, deep multipart nesting, bad base64, invalid and
unknown charsets, NUL bytes, enormous lines, truncated messages, mutated corpus mails,
HTML nested tens of thousands deep, and replies of one long line of verdict words.
Used by tests/integration/test_fuzz_ingest.py and bench/fuzz_ingest.py; every mail
gets a unique Message-ID-free tail so examples do not collapse into duplicates.
"""

from __future__ import annotations

import base64

from hypothesis import strategies as st
from mail_corpus import corpus_files

SUPPORT = "support@firm.test"
CORPUS = [path.read_bytes() for path in corpus_files()]

_HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References",
                 "Date", "Content-Type", "Content-Transfer-Encoding", "MIME-Version",
                 "Reply-To", "Auto-Submitted", "Precedence", "List-Id", "Return-Path",
                 "Content-Disposition", "X-Autoreply", "Sender"]
_CHARSETS = ["utf-8", "us-ascii", "iso-8859-2", "windows-1250", "cp1252", "x-unknown",
             "utf-7", "utf-16", "utf-32", "koi8-r", "gb2312", "shift_jis", "", "utf-8'ro'",
             "\"\"", "unicode-1-1-utf-7", "x-mac-roman", "ISO-2022-JP", "b\x00gus", "%%%"]
_ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode",
              "BASE64", "bogus", ""]
_TYPES = ["text/plain", "text/html", "multipart/mixed", "multipart/alternative",
          "multipart/related", "message/rfc822", "application/pdf", "image/png",
          "message/delivery-status", "multipart/report", "text/x-weird", "/", "text"]

_junk_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                     max_size=80)
_header_value = st.one_of(
    _junk_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
    st.sampled_from([b"=?utf-8?B?not base64?=", b"=?x-unknown?Q?=C3=A8?=", b"=?utf-8?Q?",
                     b"<>", b"<@>", b"\"unterminated", b"a@b@c", b"=?iso-8859-2?B?====?=",
                     b"(((((((((((((((((((comment", b"<" * 300, b";" * 200]),
)


def _eml(headers: list[tuple[bytes, bytes]], body: bytes, nl: bytes = b"\r\n") -> bytes:
    return b"".join(name + b": " + value + nl for name, value in headers) + nl + body


@st.composite
def header_soup(draw: st.DrawFn) -> bytes:
    """Random header names and values, some without a colon or with raw bytes."""
    names = st.one_of(st.sampled_from(_HEADER_NAMES),
                      st.binary(min_size=1, max_size=20).filter(lambda b: b":" not in b))
    headers = draw(st.lists(st.tuples(names.map(lambda n: n if isinstance(n, bytes)
                                                else n.encode()), _header_value),
                            max_size=25))
    body = draw(st.binary(max_size=400))
    nl = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    return _eml([(b"From", b"soup@example.org"), *headers], body, nl)


@st.composite
def oversized_headers(draw: st.DrawFn) -> bytes:
    """Header lines far beyond RFC 5322's 998 characters, folded or not; many headers."""
    size = draw(st.integers(1_000, 200_000))
    fold = draw(st.booleans())
    filler = (b"x" * 70 + b"\r\n ") * (size // 73) if fold else b"y" * size
    name = draw(st.sampled_from([b"Subject", b"To", b"References", b"X-Big", b"Content-Type"]))
    many = [(b"X-H%d" % i, b"v") for i in range(draw(st.integers(0, 3000)))]
    return _eml([(b"From", b"big@example.org"), (name, filler), *many], b"body\r\n")


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    """Multipart nested hundreds of levels deep, closed or not."""
    depth = draw(st.integers(2, 600))
    closed = draw(st.booleans())
    kind = draw(st.sampled_from([b"multipart/mixed", b"multipart/alternative",
                                 b"message/rfc822"]))
    parts = []
    for level in range(depth):
        if kind == b"message/rfc822":
            parts.append(b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % level)
        else:
            parts.append(b"Content-Type: %s; boundary=\"b%d\"\r\n\r\n--b%d\r\n"
                         % (kind, level, level))
    body = b"".join(parts) + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    if closed and kind != b"message/rfc822":
        body += b"".join(b"--b%d--\r\n" % level for level in reversed(range(depth)))
    return b"From: deep@example.org\r\nSubject: nest\r\nMIME-Version: 1.0\r\n" + body


@st.composite
def bad_parts(draw: st.DrawFn) -> bytes:
    """Parts with bad base64 / qp, lying or unknown charsets and encodings."""
    n = draw(st.integers(1, 6))
    chunks = []
    for i in range(n):
        ctype = draw(st.sampled_from(_TYPES))
        charset = draw(st.sampled_from(_CHARSETS))
        cte = draw(st.sampled_from(_ENCODINGS))
        payload = draw(st.one_of(
            st.binary(max_size=300),
            st.binary(max_size=200).map(lambda b: base64.b64encode(b)[:-1] + b"!*"),
            st.sampled_from([b"====", b"QUJD\x00REVG", b"=\r\n=ZZ=", b"\xff\xfe\x00h\x00i",
                             b"begin 644 x\r\n", b"=?=?=?"]),
        ))
        filename = draw(st.one_of(st.none(), _header_value))
        disposition = b"" if filename is None else (
            b"Content-Disposition: attachment; filename=\"" + filename + b"\"\r\n")
        chunks.append(b"--XyZ\r\nContent-Type: " + ctype.encode() + b"; charset=\""
                      + charset.encode("utf-8", "replace") + b"\"\r\nContent-Transfer-Encoding: "
                      + cte.encode() + b"\r\n" + disposition + b"\r\n" + payload + b"\r\n")
        if draw(st.booleans()) and i == n - 1:
            chunks.append(b"--XyZ--\r\n")
    return (b"From: parts@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n" + b"".join(chunks))


@st.composite
def enormous_line(draw: st.DrawFn) -> bytes:
    """One body line of up to a few MB, plain or claimed to be base64 / qp."""
    size = draw(st.integers(10_000, 3_000_000))
    cte = draw(st.sampled_from([b"7bit", b"base64", b"quoted-printable"]))
    char = draw(st.sampled_from([b"a", b"=", b"\x00", b"\xe8", b"A"]))
    return (b"From: line@example.org\r\nSubject: long\r\nContent-Transfer-Encoding: " + cte
            + b"\r\n\r\n" + char * size + b"\r\n")


@st.composite
def nested_html(draw: st.DrawFn) -> bytes:
    """An HTML body nested tens of thousands deep (divs, blockquotes, tables, unclosed)."""
    depth = draw(st.integers(1_000, 80_000))
    tag = draw(st.sampled_from(["div", "blockquote", "table><tr><td", "span", "b", "font"]))
    closed = draw(st.booleans())
    close = "</" + tag.split(">")[0] + ">" if closed else ""
    html = f"<{tag}>" * depth + "testo" + close * depth
    return (b"From: nested@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n")


_VERDICT_WORDS = ["ok", "si", "da", "no", "nu", "confermo", "rifiuto", "confirm", "refuz",
                  "non posso", "can't", "sure", "va bene", "?", ",", "forse", "if"]


@st.composite
def keyword_reply(draw: st.DrawFn) -> bytes:
    """A technician-style reply: a tag in the subject and one long line (or many lines)
    of verdict words, the shape that made reply reading quadratic."""
    words = draw(st.lists(st.sampled_from(_VERDICT_WORDS), min_size=1, max_size=8))
    repeat = draw(st.integers(1_000, 60_000))
    separator = draw(st.sampled_from([" ", "", "\n", " . "]))
    body = (separator.join(words) + " ") * repeat
    return (b"From: luca@firm.test\r\nSubject: Re: [#1] Caldaia\r\nIn-Reply-To: "
            b"<nm.x@firm.test>\r\n\r\n" + body.encode() + b"\r\n")


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    """A corpus mail with bytes flipped, cut, inserted (NULs too) or duplicated."""
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    # A fresh Message-ID, or most mutants would be duplicates of the first one.
    fresh = b"<" + draw(st.binary(min_size=6, max_size=6)).hex().encode() + b"."
    raw = bytearray(bytes(raw).replace(b"Message-ID: <", b"Message-ID: " + fresh, 1))
    for _ in range(draw(st.integers(1, 8))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["flip", "cut", "nul", "insert", "dup", "truncate"]))
        if op == "flip":
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del raw[at: at + draw(st.integers(1, 64))]
        elif op == "nul":
            raw[at:at] = b"\x00" * draw(st.integers(1, 4))
        elif op == "insert":
            raw[at:at] = draw(st.sampled_from([b"\r\n", b"\r\n\r\n", b"--", b"=?utf-8?B?",
                                               b"boundary=\"\"", b"\r\n.\r\n", b"\xff"]))
        elif op == "dup":
            raw[at:at] = raw[at: at + draw(st.integers(1, 2000))]
        else:
            del raw[at:]
    return bytes(raw)


def hostile_mail() -> st.SearchStrategy[bytes]:
    """Any of the hostile kinds, with a unique-ish tail so each example is a new mail."""
    kinds = st.one_of(header_soup(), oversized_headers(), deep_nesting(), bad_parts(),
                      enormous_line(), mutated_corpus(), nested_html(), keyword_reply(),
                      st.binary(max_size=2000))
    return st.tuples(kinds, st.binary(min_size=8, max_size=8)).map(
        lambda pair: pair[0] + b"\r\n" + pair[1].hex().encode())


def small_hostile_mail() -> st.SearchStrategy[bytes]:
    """The hostile kinds minus the multi-megabyte ones (for sending over SMTP quickly)."""
    kinds = st.one_of(header_soup(), deep_nesting(), bad_parts(), mutated_corpus())
    return st.tuples(kinds, st.binary(min_size=8, max_size=8)).map(
        lambda pair: pair[0] + b"\r\n" + pair[1].hex().encode())


def labelled_hostile_mail() -> st.SearchStrategy[tuple[str, bytes]]:
    """(kind, raw) pairs over every hostile kind, for counting outcomes per kind."""
    kinds = {"header_soup": header_soup(), "oversized_headers": oversized_headers(),
             "deep_nesting": deep_nesting(), "bad_parts": bad_parts(),
             "enormous_line": enormous_line(), "mutated_corpus": mutated_corpus(),
             "nested_html": nested_html(), "keyword_reply": keyword_reply(),
             "random_bytes": st.binary(max_size=2000)}
    return st.one_of(*(
        st.tuples(st.just(name), strategy, st.binary(min_size=8, max_size=8)).map(
            lambda t: (t[0], t[1] + b"\r\n" + t[2].hex().encode()))
        for name, strategy in kinds.items()))
