"""The assignment mail's facts for the road: instructions, site and access, the machine
with its warranty and last interventions, in en/it/ro, text and HTML; and the
warranty state by date."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from test_assignment_templates import CASE, compose

from nexusmail.tickets.assignment_road import warranty_state

ROAD: dict[str, Any] = {
    **CASE,
    "note": "Portare il ricambio della valvola.",
    "site": {"name": "Centrale termica", "address": "Via Roma 12 (cortile)",
             "access_notes": "Chiavi dal portiere, 8-12"},
    "equipment": {"serial": "AB1234", "model": "Vaillant ecoTEC", "warranty": "expired",
                  "warranty_until": "2025-01-31",
                  "history": [{"number": 40, "date": "2025-11-03", "subject": "Perdita",
                               "status": "closed", "reason": "valvola sostituita"},
                              {"number": 12, "date": "2024-02-10", "subject": "Rumore",
                               "status": "on_hold", "reason": ""}]},
}
WORDS = {
    "en": ["Instructions", "expired on 31 January 2025", "on hold", "3 November 2025"],
    "it": ["Istruzioni", "scaduta il 31 gennaio 2025", "sospeso", "3 novembre 2025"],
    "ro": ["Instrucțiuni", "expirată la 31 ianuarie 2025", "suspendată", "3 noiembrie 2025"],
}
FACTS = ["Portare il ricambio della valvola.", "Centrale termica", "Via Roma 12 (cortile)",
         "Chiavi dal portiere, 8-12", "Vaillant ecoTEC", "AB1234", "#40", "Perdita",
         "valvola sostituita", "#12", "Rumore"]


@pytest.mark.parametrize("language", ["en", "it", "ro"])
def test_the_mail_carries_site_machine_and_history(language: str) -> None:
    """Text and HTML both show the note, the site with its access notes, the machine
    with model, serial and warranty, and each earlier case with how it ended."""
    _, text, html = compose("assignment", language, ROAD)
    for part in (text, html):
        for fact in [*FACTS, *WORDS[language]]:
            assert fact.lower() in part.lower(), (language, fact)


@pytest.mark.parametrize("language", ["en", "it", "ro"])
def test_a_case_without_them_shows_none_of_it(language: str) -> None:
    """Without note, site or machine (and for mails queued before these existed), the
    mail has none of their headings."""
    _, text, _ = compose("assignment", language, CASE)
    assert WORDS[language][0].upper() not in text
    assert "AB1234" not in text


@pytest.mark.parametrize(("until", "state"), [
    (None, ""), ("", ""), ("2026-03-05", "under"), ("2026-03-04", "expired"),
    ("2027-01-01", "under")])
def test_warranty_state(until: str | None, state: str) -> None:
    """Covered through its last day, expired the day after, unknown without a date."""
    assert warranty_state(until, date(2026, 3, 5)) == state
