"""The operators' languages: which one a request gets, dates and numbers as each
country writes them, and a label for every value the pages show."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import pytest

from nexusmail.i18n import LABELS, LANGUAGES, Formats, msg, negotiate, translations
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.models import (
    AssignmentStatus,
    OutboxStatus,
    Priority,
    Source,
    Status,
)
from nexusmail.tickets.recurrence import DayRule, Interval

ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(("header", "expected"), [
    ("it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7", "it"),
    ("ro-RO,ro;q=0.9", "ro"),
    ("en-GB,en;q=0.9", "en"),
    ("de-DE,de;q=0.9,ro;q=0.5,it;q=0.4", "ro"),     # the best of ours by weight
    ("it;q=0.2, ro;q=0.8", "ro"),
    ("fr-FR,fr;q=0.9", None),
    ("it;q=0", None),                                # explicitly refused
    ("", None),
    ("it;q=abc, ro", "ro"),                          # a broken weight is skipped
    ("*", None),
])
def test_accept_language_picks_the_best_of_ours(header: str, expected: str | None) -> None:
    """The browser's Accept-Language gives the page language by weight, ignoring the
    languages we do not speak; None leaves it to the operator default."""
    assert negotiate(header) == expected


@pytest.mark.parametrize(("language", "moment", "day", "size"), [
    ("it", "03/12/2026 15:05", "03/12/2026", "1,5 KB"),
    ("ro", "03/12/2026 15:05", "03/12/2026", "1,5 KB"),
    ("en", "3 Dec 2026, 15:05", "3 Dec 2026", "1.5 KB"),
])
def test_dates_and_sizes_as_each_country_writes_them(
        language: str, moment: str, day: str, size: str) -> None:
    """Italian and Romanian pages show dd/mm/yyyy with a four-digit year and a
    24-hour time in the company's zone; sizes use the country's decimal comma."""
    formats = Formats(language, ROME)
    assert formats.moment("2026-12-03T14:05:00+00:00") == moment
    assert formats.moment(datetime(2026, 12, 3, 14, 5, tzinfo=UTC)) == moment
    assert formats.day("2026-12-03") == day
    assert formats.day(date(2026, 12, 3)) == day
    assert formats.size(1536) == size
    assert formats.size(512) == "512 B"


def test_summer_time_is_the_company_zones() -> None:
    """A July timestamp is two hours ahead of UTC in Rome (and never shown in UTC)."""
    assert Formats("it", ROME).moment("2026-07-01T08:00:00+00:00") == "01/07/2026 10:00"


def test_odd_stored_values_are_shown_as_they_are() -> None:
    """Empty, naive and unreadable values do not break a page."""
    formats = Formats("it", ROME)
    assert formats.moment(None) == ""
    assert formats.moment("2026-12-03T14:05:00") == "2026-12-03T14:05:00"
    assert formats.moment("yesterday") == "yesterday"
    assert formats.day("") == ""
    assert formats.day("soon") == "soon"


@pytest.mark.parametrize("values", [Status, Priority, AssignmentStatus, Attention, Source,
                                    OutboxStatus, Interval, DayRule])
def test_every_stored_value_has_a_translated_label(values: type[StrEnum]) -> None:
    """No raw enum value on any page: each has a label, translated in it and ro."""
    for value in values:
        assert value.value in LABELS, value
        for language in ("it", "ro"):
            assert translations(language).gettext(LABELS[value.value]) != "", value


def test_messages_are_translated_when_shown_and_filled_after() -> None:
    """A page message keeps its English text and values until shown; then the
    operator's catalogue translates the text and the values are filled in."""
    message = msg("Intervention #{number} closed.", number=42)
    assert str(message) == "Intervention #42 closed."
    assert message.translated("it") == "Intervento n. 42 chiuso."
    assert message.translated("ro") == "Intervenția nr. 42 a fost închisă."
    assert set(LANGUAGES) == {"en", "it", "ro"}
