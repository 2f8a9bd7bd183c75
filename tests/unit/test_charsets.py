"""Charset fallback for mail that lies about its encoding, and RFC 2047 header decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest.charsets import decode_bytes, decode_header, normalize_romanian

ROMANIAN = "Bună ziua, centrala nu porneşte. Mulţumesc, Ştefan Ţurcanu şi soţia"
ITALIAN = "Perché la caldaia è rotta? Città, più, così: costo 50 €"


@pytest.mark.parametrize(
    ("payload", "declared", "expected"),
    [
        # honest labels
        (ROMANIAN.encode("cp1250"), "windows-1250", ROMANIAN),
        (ROMANIAN.encode("iso-8859-2"), "iso-8859-2", ROMANIAN),
        (ROMANIAN.encode("iso-8859-2"), "latin2", ROMANIAN),
        (ITALIAN.encode("cp1252"), "windows-1252", ITALIAN),
        (ITALIAN.encode("utf-8"), "UTF-8", ITALIAN),
        ("Ciao è".encode("iso-8859-1"), '"ISO-8859-1"', "Ciao è"),
        # lying labels
        (ROMANIAN.encode("cp1250"), "iso-8859-1", ROMANIAN),
        (ROMANIAN.encode("cp1250"), "us-ascii", ROMANIAN),
        (ITALIAN.encode("cp1252"), "utf-8", ITALIAN),
        (ITALIAN.encode("utf-8"), "iso-8859-1", ITALIAN),
        (ROMANIAN.encode("utf-8"), "windows-1250", ROMANIAN),
        # missing or meaningless labels
        (ROMANIAN.encode("cp1250"), None, ROMANIAN),
        (ITALIAN.encode("cp1252"), None, ITALIAN),
        (ITALIAN.encode("cp1252"), "x-unknown", ITALIAN),
        (ITALIAN.encode("cp1252"), "unknown-8bit", ITALIAN),
        (ROMANIAN.encode("utf-8"), None, ROMANIAN),
        (ITALIAN.encode("cp1252"), "no-such-charset", ITALIAN),
        (ITALIAN.encode("cp1252"), "base64", ITALIAN),
        (b"plain ascii", "utf-16", "plain ascii"),
        (b"", "utf-8", ""),
        # utf-8 that was read as cp1252 and encoded again ("Ã¨")
        (ITALIAN.encode("utf-8").decode("cp1252").encode("utf-8"), "utf-8", ITALIAN),
    ],
)
def test_decode_bytes(payload: bytes, declared: str | None, expected: str) -> None:
    """The declared charset is used when honest; lies and gaps fall back sensibly."""
    assert decode_bytes(payload, declared) == expected


def test_decode_bytes_last_resort_replaces() -> None:
    """Bytes valid in no candidate charset decode with replacement characters, no error."""
    text = decode_bytes(b"\x81\x8d\x8f\x90\x9d", "utf-8")
    assert isinstance(text, str)
    assert text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, "utf-8", "iso-8859-1", "cp1250",
                                                 "utf-16", "utf-7", "bogus", "ascii"]))
def test_decode_bytes_never_raises(payload: bytes, declared: str | None) -> None:
    """Any bytes under any label decode to a str that can be written as utf-8."""
    decode_bytes(payload, declared).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?Intervento_caldaia?= =?utf-8?q?_urgente?=", "Intervento caldaia urgente"),
        ("Re: =?iso-8859-2?Q?Defec=FEiune?= la centrala", "Re: Defecţiune la centrala"),
        ("=?utf-8?B?w4g=?= rotta", "È rotta"),
        ("=?utf-8?B?ww==?= =?utf-8?B?iCByb3R0YQ==?=", "È rotta"),  # split character
        ("=?utf-8?Q?Intervento caldaia?=", "Intervento caldaia"),  # space inside
        ("=?utf-8?B?w4ggcm90dGE?=", "È rotta"),  # missing padding
        ("=?windows-1250?Q?=AAtefan?=", "Ştefan"),
        ("=?bogus?Q?caf=E8?=", "cafè"),
        ("=?utf-8*it?Q?Ciao?=", "Ciao"),
        ("no encoding here", "no encoding here"),
        ("=?utf-8?Q?a?= b =?utf-8?Q?c?=", "a b c"),
    ],
)
def test_decode_header(value: str, expected: str) -> None:
    """RFC 2047 encoded-words decode, including the broken forms mailers send."""
    assert decode_header(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mulţumesc şi", "Mulțumesc și"),
        ("ŞTEFAN ŢURCANU", "ȘTEFAN ȚURCANU"),
        ("already ș ț", "already ș ț"),
        ("Perché", "Perché"),
    ],
)
def test_normalize_romanian(text: str, expected: str) -> None:
    """Cedilla ş ţ become comma-below ș ț; nothing else changes."""
    assert normalize_romanian(text) == expected


@given(st.text(max_size=200))
def test_normalize_romanian_is_idempotent(text: str) -> None:
    """Normalising twice is normalising once."""
    once = normalize_romanian(text)
    assert normalize_romanian(once) == once
