"""Subject tags "[#42]" and the reply/forward prefixes of Italian, Romanian and other clients."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexusmail.tickets.tags import format_tag, parse_tag, strip_reply_prefixes, tagged_subject


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_parse_tag_round_trips_format_tag(number: int) -> None:
    """parse_tag(format_tag(n)) == n for every intervention number."""
    assert parse_tag(format_tag(number)) == number


@given(st.integers(min_value=1, max_value=10**9), st.text(max_size=60))
def test_tagged_subject_is_found_first(number: int, subject: str) -> None:
    """Whatever the subject, the tag tagged_subject puts in front is the one parse_tag finds."""
    assert parse_tag(tagged_subject(number, subject)) == number


def test_format_tag() -> None:
    """The tag is "[#" number "]"; negative numbers are a programming error."""
    assert format_tag(42) == "[#42]"
    with pytest.raises(ValueError, match="negative"):
        format_tag(-1)


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("[#42] Caldaia", 42),
        ("Re: [#42] Caldaia", 42),
        ("R: RIF: I: Fwd: AW: WG: TR: SV: Răspuns: [#7] x", 7),
        ("Caldaia rotta [#12]", 12),
        ("Re:[#0012]", 12),
        ("[#3] Re: [#4]", 3),
        ("[# 42] Caldaia", None),
        ("#42 Caldaia", None),
        ("[42] Caldaia", None),
        ("[#] Caldaia", None),
        ("[#4a2]", None),
        ("", None),
    ],
)
def test_parse_tag(subject: str, number: int | None) -> None:
    """The first strict "[#digits]" anywhere is the tag; near misses are not."""
    assert parse_tag(subject) == number


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Caldaia", "Caldaia"),
        ("RE: re: Caldaia", "Caldaia"),
        ("R: RIF: Sopralluogo", "Sopralluogo"),
        ("I: Forno non si accende", "Forno non si accende"),
        ("Fwd: Fw: FW: caldaia", "caldaia"),
        ("AW: WG: Heizung", "Heizung"),
        ("TR: SV: x", "x"),
        ("Răspuns: Pompa", "Pompa"),
        ("RASPUNS: Pompa", "Pompa"),
        ("Redirecționare: Pompa", "Pompa"),
        ("Re[2]: Re(3): Caldaia", "Caldaia"),
        ("Re : Caldaia", "Caldaia"),
        ("Re:Caldaia", "Caldaia"),
        ("  Re:   Caldaia  ", "Caldaia"),
        ("Re: [#12] Re: Caldaia", "[#12] Re: Caldaia"),
        ("Recupero crediti", "Recupero crediti"),
        ("Rif. ordine 12", "Rif. ordine 12"),
        ("Information", "Information"),
        ("Caldaia Re: rotta", "Caldaia Re: rotta"),
        ("", ""),
    ],
)
def test_strip_reply_prefixes(subject: str, expected: str) -> None:
    """Only a leading run of reply/forward prefixes goes; words that start alike stay."""
    assert strip_reply_prefixes(subject) == expected


@pytest.mark.parametrize(
    ("number", "subject", "expected"),
    [
        (42, "Caldaia rotta", "[#42] Caldaia rotta"),
        (42, "[#42] Caldaia rotta", "[#42] Caldaia rotta"),
        (42, "Re: [#42] Caldaia rotta", "[#42] Re: Caldaia rotta"),
        (42, "Caldaia [#7]", "[#42] Caldaia [#7]"),
        (42, "", "[#42]"),
        (42, "  spazi   multipli ", "[#42] spazi multipli"),
    ],
)
def test_tagged_subject(number: int, subject: str, expected: str) -> None:
    """The tag goes in front once; an existing copy of the same tag is not doubled."""
    assert tagged_subject(number, subject) == expected
