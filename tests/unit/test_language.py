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
