"""Refusals raised with a catalogued message: English for the API and the logs,
the operator's language on a page, values kept."""

from __future__ import annotations

from nexusmail.i18n import Word, message_of, msg
from nexusmail.tickets.cases import Conflict


def test_a_refusal_is_english_as_text_and_translated_on_a_page() -> None:
    """`str()` of the refusal is the English text the API answers; `message_of` gives
    the message a page translates, with the same values."""
    exc = Conflict(msg("{email} is already assigned to {number}",
                       email="luca@firm.test", number=1))
    assert str(exc) == "luca@firm.test is already assigned to 1"
    shown = message_of(exc)
    assert not isinstance(shown, str)
    assert shown.translated("it") == "luca@firm.test è già assegnato all'intervento 1"


def test_stored_words_and_quoted_refusals_are_translated_too() -> None:
    """A stored word stays raw in English (as the API always said it) and is labelled
    on a page; a refusal quoted inside another is translated with it."""
    exc = Conflict(msg("intervention {number} is {status}, not open", number=4,
                       status=Word("on_hold")))
    assert str(exc) == "intervention 4 is on_hold, not open"
    assert "on_hold" not in message_of(exc).translated("it")  # type: ignore[union-attr]
    quoted = msg("assignees: {problem}", problem=message_of(exc))
    assert str(quoted) == "assignees: intervention 4 is on_hold, not open"
    assert quoted.translated("ro").startswith("responsabili: intervenția 4 este în starea")


def test_a_plain_exception_keeps_its_text() -> None:
    """An exception raised with plain text is shown as it is."""
    assert message_of(ValueError("bad")) == "bad"
