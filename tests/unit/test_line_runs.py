"""Runs of body lines cut out before the stdlib parse: the tree comes out as a whole parse's."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest import line_runs
from nexusmail.ingest.mime_parts import MailMessage

_PARSER = BytesParser(MailMessage, policy=compat32)
TEXT = b"Buongiorno, la caldaia non parte da stamattina.\r\n"
ROMANIAN_8BIT = "Bună ziua, centrala nu porneşte.\r\n".encode("cp1250")


def _tree(message: Message) -> Any:
    payload = message._payload  # type: ignore[attr-defined]
    return (
        message.get_unixfrom(), list(message.raw_items()),
        [type(d).__name__ for d in message.defects], message.preamble, message.epilogue,
        [_tree(p) for p in payload] if isinstance(payload, list) else payload,
    )  # fmt: skip


def _cut_then_parse(raw: bytes) -> Message:
    skeleton, runs = line_runs.cut_runs(raw)
    message = _PARSER.parsebytes(skeleton)
    line_runs.put_back_runs(message, runs)
    return message


def _multipart(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    head = (b"From: a@b.it\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n')
    body = b"".join(b"--BB\r\n" + part + b"\r\n" for part in parts)
    return head + preamble + body + b"--BB--\r\n" + epilogue


CASES = {
    "text parts": _multipart(b"Content-Type: text/plain\r\n\r\n" + TEXT * 20,
                             b"Content-Type: text/html\r\n\r\n<p>" + TEXT * 12),
    "raw 8-bit text": _multipart(b"Content-Type: text/plain; charset=x-weird\r\n\r\n"
                                 + ROMANIAN_8BIT * 12),
    "preamble and epilogue": _multipart(b"\r\n" + TEXT * 9, preamble=TEXT * 10,
                                        epilogue=TEXT * 10),
    "part without a blank line after its headers": _multipart(
        b"Content-Type: text/plain\r\n" + TEXT * 10),
    "lone CRs": _multipart(b"\r\n" + b"a\rb\r-c\r\rd\r\n" * 12 + b"x\r--BB\r\n" + TEXT * 9),
    "unix From lines": _multipart(b"\r\n" + b"From me\r\n" * 10 + TEXT * 10),
    "forwarded mail": _multipart(b"Content-Type: message/rfc822\r\n\r\n" + TEXT * 10,
                                 b"Content-Type: message/rfc822\r\n\r\nSubject: y\r\n\r\n"
                                 + TEXT * 10),
    "delivery status": _multipart(b"Content-Type: message/delivery-status\r\n\r\n"
                                  + TEXT * 10 + b"\r\nAction: failed\r\n" + TEXT * 10),
    "LF line ends": _multipart(b"\n" + TEXT.replace(b"\r\n", b"\n") * 10).replace(
        b"\r\n", b"\n"),
    "no close boundary": _multipart(b"\r\n" + TEXT * 10)[: -len(b"--BB--\r\n")],
    "marker-shaped text": _multipart(
        b"\r\n" + b"NEXUSMAIL-SKIMMED-RUN-0123456789abcdef-0\r\n" * 10),
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_tree_is_the_whole_parses(raw: bytes) -> None:
    """Headers, payloads, preambles, epilogues and defects all as a whole parse reads them."""
    assert _tree(_cut_then_parse(raw)) == _tree(_PARSER.parsebytes(raw))


def test_long_text_is_cut() -> None:
    """The lines of a long text part reach the parser as one marker line."""
    skeleton, runs = line_runs.cut_runs(CASES["text parts"])
    assert len(runs) == 2
    assert skeleton.count(b"\n") < 20


_LINES = st.sampled_from([
    b"testo\r\n", b"a: b\r\n", b" piegato\r\n", b"-\r\n", b"--BB\r\n", b"--BB--\r\n", b"\r\n",
    b"\n", b"From x\r\n", b"x\ry\r\n", b"\r", b"\xe8\xe9\r\n", b"Content-Type: text/plain\r\n",
    b"Content-Type: message/rfc822\r\n", b"NEXUSMAIL-SKIMMED-RUN-0123456789abcdef-0\r\n",
])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINES, max_size=120), repeat=st.integers(1, 12))
def test_any_mix_of_lines_parses_as_a_whole(lines: list[bytes], repeat: int) -> None:
    """Whatever lines follow the header, in any order and repeated, the tree is the same."""
    raw = _multipart(b"".join(line * repeat for line in lines))
    assert _tree(_cut_then_parse(raw)) == _tree(_PARSER.parsebytes(raw))
