"""Reading hours worked and travel time from a technician's report."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.mail.hours import ReportedTime, read_hours

# (text, work minutes, travel minutes); None: nothing (or no single figure) read.
HOURS_FORMS: list[tuple[str, int | None, int | None]] = [
    # -- English -------------------------------------------------------------------
    ("Done, 2h", 120, None),
    ("Done, 2 h", 120, None),
    ("done 2hrs", 120, None),
    ("Finished, 3 hours.", 180, None),
    ("Done in 1 hour", 60, None),
    ("1.5h, replaced the fan", 90, None),
    ("1.5 hours", 90, None),
    ("Done, 2h30, replaced the fan", 150, None),
    ("2h 30m", 150, None),
    ("2:30", 150, None),
    ("90 min", 90, None),
    ("45 mins", 45, None),
    ("an hour", 60, None),
    ("an hour and a half", 90, None),
    ("two and a half hours", 150, None),
    ("two hours", 120, None),
    ("half an hour", 30, None),
    ("1 hour 15 minutes", 75, None),
    ("1 hour and 20 minutes", 80, None),
    ("20 min", 20, None),
    ("3 HOURS", 180, None),
    ("2h work + 1h travel", 120, 60),
    ("travel 40 min, work 2h", 120, 40),
    ("Hours: 3", 180, None),
    ("a quarter of an hour", 15, None),
    ("2 hrs plus 30 min travel", 120, 30),
    # -- Italian -------------------------------------------------------------------
    ("Fatto, 2 ore, sostituita la scheda", 120, None),
    ("fatto 2 ore e mezza", 150, None),
    ("2 ore e mezzo", 150, None),
    ("1,5 ore", 90, None),
    ("Tempo 1,5 h + 40 min di viaggio", 90, 40),
    ("un'ora", 60, None),
    ("un'ora e mezza", 90, None),
    ("una ora", 60, None),
    ("due ore", 120, None),
    ("tre ore e mezza", 210, None),
    ("mezz'ora", 30, None),
    ("mezzora", 30, None),
    ("un quarto d'ora", 15, None),
    ("tre quarti d'ora", 45, None),
    ("2 ore e 30 minuti", 150, None),
    ("2 ore e 30, sostituita la pompa", 150, None),
    ("90 minuti", 90, None),
    ("90'", 90, None),
    ("40 minuti di viaggio", None, 40),
    ("lavoro 2h, viaggio 1h", 120, 60),
    ("viaggio 1h lavoro 3h", 180, 60),
    ("3 ore di lavoro e 1 ora di viaggio", 180, 60),
    ("Ore lavorate: 4", 240, None),
    ("ore: 2,5", 150, None),
    ("FATTO 2H30", 150, None),
    ("2 ore stamattina + 1 ora oggi pomeriggio", 180, None),
    ("20 minuti", 20, None),
    ("1 ora e 20", 80, None),
    # -- Romanian ------------------------------------------------------------------
    ("Gata, 3 ore. Am schimbat pompa.", 180, None),
    ("Terminat, o oră și jumătate", 90, None),
    ("o oră", 60, None),
    ("două ore", 120, None),
    ("doua ore", 120, None),
    ("2 ore și 30 de minute", 150, None),
    ("2 ore si jumatate", 150, None),
    ("2 ore jumătate", 150, None),
    ("trei ore", 180, None),
    ("jumătate de oră", 30, None),
    ("40 de minute deplasare", None, 40),
    ("2,5 ore", 150, None),
    ("1 oră și 15 minute", 75, None),
    ("o ora si un sfert", 75, None),
    ("lucrat 2 ore, deplasare 1 oră", 120, 60),
    ("Terminat, o oră şi jumătate", 90, None),
    ("un sfert de oră", 15, None),
    # -- Traps: no time stated, or not one figure ------------------------------------
    ("Fatto, chiamatemi al +39 333 1234567", None, None),
    ("tel. 0264 123 456", None, None),
    ("Done on 12/03/2025", None, None),
    ("Fatto il 12.03 ore 9", None, None),
    ("Fatto il 12 ore 10", None, None),
    ("Siamo andati in 2 tecnici", None, None),
    ("matricola 2H45-778", None, None),
    ("S/N: 12h30", None, None),
    ("Arrivo ore 9", None, None),
    ("arrivato alle 9, finito", None, None),
    ("alle 9h ero lì", None, None),
    ("ajuns la 10:30", None, None),
    ("at 2:30 I left", None, None),
    ("dalle 14:00 alle 16:30", None, None),
    ("finished at 17:30", None, None),
    ("5 m di tubo", None, None),
    ("3 ore, previste 2 ore", None, None),
    ("Fatto", None, None),
    ("Sostituito il relè da 24 V e 2 A", None, None),
    ("modello X200 2018", None, None),
    ("3 pezzi", None, None),
]


@pytest.mark.parametrize(("text", "work", "travel"), HOURS_FORMS,
                         ids=[case[0] for case in HOURS_FORMS])
def test_hours_forms(text: str, work: int | None, travel: int | None) -> None:
    """Each way of writing time gives its minutes of work and travel; the traps none."""
    assert read_hours(text) == ReportedTime(work, travel)


def test_the_table_covers_three_languages_and_traps() -> None:
    """At least 60 forms, among them at least 15 traps that read as no time."""
    assert len(HOURS_FORMS) >= 60
    assert sum(1 for _, work, travel in HOURS_FORMS if work is None and travel is None) >= 15


def test_twenty_minutes_is_a_third_of_an_hour() -> None:
    """Hours are exact to the minute, never rounded to a decimal."""
    reading = read_hours("1 ora e 20 minuti + 20 min di viaggio")
    assert reading.hours == Fraction(4, 3)
    assert reading.travel_hours == Fraction(1, 3)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_no_time_or_a_sane_one(text: str) -> None:
    """Nothing raises; a time read is a positive number of minutes under 100 hours."""
    reading = read_hours(text)
    for minutes in (reading.work_minutes, reading.travel_minutes):
        assert minutes is None or 0 < minutes <= 100 * 60


@given(st.integers(1, 12), st.sampled_from([0, 10, 15, 20, 30, 45]),
       st.sampled_from(["{h} ore e {m} minuti", "{h}h{m:02d}", "{h} hours {m} minutes",
                        "{h} ore și {m} de minute", "{h}:{m:02d}"]))
def test_hours_and_minutes_read_back_exactly(hours: int, minutes: int, form: str) -> None:
    """Whole hours and minutes written in each form come back as the same minutes."""
    if form == "{h}:{m:02d}" and hours >= 10:
        hours = 9  # "10:30" reads as a time of day
    text = "Fatto, " + form.format(h=hours, m=minutes)
    assert read_hours(text).work_minutes == hours * 60 + minutes
