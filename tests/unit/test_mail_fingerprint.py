"""Copies of one mail share a content fingerprint; another mail with its Message-ID doesn't."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from nexusmail.mail.fingerprint import content_sha256

MAIL = (b"From: Ana <ana@example.it>\r\nTo: support@firm.test\r\nSubject: Caldaia\r\n"
        b"Message-ID: <one@example.it>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0100\r\n\r\n"
        b"La caldaia non parte.\r\n")


def test_transport_headers_and_line_endings_do_not_make_another_mail() -> None:
    """Trace headers an MTA, a filter or a mail store adds, and LF instead of CRLF,
    leave the fingerprint as it was."""
    relayed = (b"Return-Path: <ana@example.it>\r\nDelivered-To: support+x@firm.test\r\n"
               b"Received: from mx.example.it\r\n\tby mx.firm.test; Mon, 2 Mar 2026\r\n"
               b"X-Spam-Score: 0.1\r\nARC-Seal: i=1; a=rsa-sha256\r\n"
               b"Authentication-Results: mx.firm.test; dmarc=pass\r\n" + MAIL)
    assert content_sha256(relayed) == content_sha256(MAIL)
    assert content_sha256(MAIL.replace(b"\r\n", b"\n")) == content_sha256(MAIL)
    assert content_sha256(MAIL + b"\r\n\r\n") == content_sha256(MAIL)


def test_other_content_under_the_same_message_id_is_another_mail() -> None:
    """A reused Message-ID with another body, subject or date is a different mail."""
    assert content_sha256(MAIL.replace(b"non parte", b"perde acqua")) != content_sha256(MAIL)
    assert content_sha256(MAIL.replace(b"Caldaia", b"Boiler")) != content_sha256(MAIL)
    assert content_sha256(MAIL.replace(b"09:00:00", b"09:05:00")) != content_sha256(MAIL)


@given(st.binary(max_size=2000))
def test_any_bytes_get_a_fingerprint(raw: bytes) -> None:
    """Whatever arrives (no header end, no colon, NULs) gets a hex digest, no error."""
    assert len(content_sha256(raw)) == 64


def _best_of(runs: int, raw: bytes) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        content_sha256(raw)
        best = min(best, time.perf_counter() - started)
    return best


def test_fingerprint_is_linear_in_the_mail() -> None:
    """Ten times the headers and body take at most about ten times as long (best of
    five, a generous margin for a shared machine)."""
    def mail(n: int) -> bytes:
        return b"Received: from x\r\n\tby y\r\n" * (200 * n) + b"\r\n" + b"line\r\n" * (20_000 * n)

    small, large = _best_of(5, mail(1)), _best_of(5, mail(10))
    assert large < 30 * small
