"""Serial numbers found as whole words in a mail's subject and body: not inside longer
tokens, several or none, without regard to case, through the punctuation people put
around them; never the serials that ordinary words and numbers would match."""

from __future__ import annotations

import pytest

from nexusmail.tickets.serials import find_serials, is_findable, lookup_forms, serial_candidates

MACHINES = ("AB1234", "12-345/B", "XC-9000.2", "SN77-01", "4711002", "ro_555x")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Caldaia AB1234 ferma", ("AB1234",)),
        ("caldaia ab1234 ferma", ("AB1234",)),
        ("SN:12-345/B non parte", ("12-345/B",)),
        ("matricola 12-345/B.", ("12-345/B",)),
        ("(12-345/B), grazie", ("12-345/B",)),
        ("serie: «AB1234»", ("AB1234",)),
        ("mod. XC-9000.2 in sala", ("XC-9000.2",)),
        ("Nr. 4711002, urgent", ("4711002",)),
        ("ro_555x defect", ("ro_555x",)),
        ("AB1234 e 12-345/B e di nuovo AB1234", ("AB1234", "12-345/B")),
        ("12-345/B poi AB1234", ("12-345/B", "AB1234")),
        ("AB12345 non è la nostra", ()),
        ("XAB1234", ()),
        ("AB1234X", ()),
        ("AB1234-7", ()),
        ("12-345/BC", ()),
        ("112-345/B", ()),
        ("345/B", ()),
        ("SN77-01/2", ()),
        ("AB 1234", ()),
        ("AB1234è", ()),
        ("nessun numero qui", ()),
        ("", ()),
    ],
)
def test_find_serials(text: str, found: tuple[str, ...]) -> None:
    """Only whole tokens count; punctuation around a serial cuts it, letters, digits
    or inner joiners glued to it make another, longer serial."""
    assert find_serials(MACHINES, text) == found


def test_subject_then_body_in_order() -> None:
    """Serials are reported in order of first appearance, subject first, each once."""
    assert find_serials(MACHINES, "Guasto 12-345/B", "Anche AB1234, e 12-345/B") == (
        "12-345/B", "AB1234")


@pytest.mark.parametrize(
    ("serial", "findable"),
    [("AB1234", True), ("A1B2", True), ("123456", True), ("12345", False),
     ("2024", False), ("A12", False), ("CALDAIA", False), ("AB 1234", False),
     ("AB#12", False), ("x" * 60 + "1", True), ("x" * 70 + "1", False), ("  ab12  ", True)],
)
def test_is_findable(serial: str, findable: bool) -> None:
    """Serials too short, without a digit, short all-digit ones (years, quantities) or
    with characters that cut tokens are never looked for in text."""
    assert is_findable(serial) is findable


def test_unfindable_serials_are_never_found() -> None:
    """A machine whose serial is a year is not linked to every mail that names the year."""
    assert find_serials(["2024", "CALDAIA"], "Nel 2024 la caldaia si è fermata") == ()


def test_serial_candidates() -> None:
    """The tokens worth looking up are the findable ones, as first written, once each
    whatever their case, in order; glued abbreviations read off."""
    assert serial_candidates("Guasto AB1234 del 2024", "rif. ab1234 e Nr.12-345/b!") == (
        "AB1234", "Nr.12-345/b", "12-345/b")


def test_serial_candidates_are_bounded() -> None:
    """A body of thousands of codes yields at most `limit` candidates."""
    text = " ".join(f"X{n:05d}" for n in range(10_000))
    assert len(serial_candidates(text, limit=50)) == 50


def test_lookup_forms() -> None:
    """Each candidate is looked up as written, in upper and in lower case, once each."""
    assert lookup_forms(["Ab12x", "CD34"]) == ("Ab12x", "AB12X", "ab12x", "CD34", "cd34")


@pytest.mark.parametrize(
    ("text", "found"),
    [("Nr.4711002", ("4711002",)), ("matr.AB1234 ferma", ("AB1234",)),
     ("S.N.AB1234", ("AB1234",)), ("mod.XC-9000.2", ("XC-9000.2",)),
     ("7.AB1234", ()), ("Nr-4711002", ())],
)
def test_abbreviations_glued_with_a_full_stop(text: str, found: tuple[str, ...]) -> None:
    """"Nr.", "matr.", "S.N." written against the serial are read off; a number before
    the stop, or a dash, makes another token."""
    assert find_serials(MACHINES, text) == found


def test_serial_candidates_read_only_the_start_of_a_huge_text() -> None:
    """A serial near the top is found; one buried past the scanned start of a 1 MB
    body is not looked for, so a pasted log cannot make every mail slow to read."""
    filler = "parola " * 150_000
    assert serial_candidates("Caldaia", "matricola AB1234 " + filler + " CD5678") == ("AB1234",)
