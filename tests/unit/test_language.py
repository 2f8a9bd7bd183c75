"""Guessing the language of a new customer's mail, to answer in kind."""

from __future__ import annotations

import pytest

from nexusmail.mail.language import guess_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Buongiorno, la caldaia non funziona da ieri. Potete mandare un tecnico? Grazie", "it"),
        ("Bună ziua, centrala nu funcționează. Vă rog să trimiteți un tehnician. Mulțumesc",
         "ro"),
        ("Buna ziua, imprimanta nu mai merge si am nevoie de ajutor pentru ea", "ro"),
        ("Hello, the printer is not working since this morning. Please send someone.", "en"),
        ("", None),
        ("12345 !!!", None),
        ("ok", None),
    ],
)
def test_guess_language(text: str, expected: str | None) -> None:
    """Italian, Romanian (with or without diacritics) and English are told apart."""
    assert guess_language(text) == expected


@pytest.mark.parametrize(("text", "sender", "expected"), [
    ("Ok", "mario@rossi-srl.it", "it"),                 # nothing to read: the domain decides
    ("Ok", "ana@firma.ro", "ro"),
    ("Ok", "bob@example.com", None),
    ("", "ana@firma.ro", "ro"),
    ("Grazie", "ana@firma.ro", None),                    # the text leans Italian: no guess
    ("caldaia guasta", "mario@rossi.it", "it"),
    ("The boiler is not working, please send someone", "mario@rossi.it", "en"),  # text wins
    ("Centrala nu funcționează, vă rog", "mario@rossi.it", "ro"),
    ("Ok", "mario@ROSSI.IT", "it"),
])
def test_country_domain_breaks_ties_for_short_mails(
        text: str, sender: str, expected: str | None) -> None:
    """A mail too short to read takes the language of the sender's country domain; a
    mail that says clearly keeps its own language whatever the domain."""
    assert guess_language(text, sender=sender) == expected
