"""Reading what a mailed request is about: a type of the firm's list named in the
subject or first lines, and urgency words, in Italian, Romanian and English."""

from __future__ import annotations

import time

import pytest

from nexusmail.tickets.models import Priority
from nexusmail.tickets.request_guess import Guess, guess_request, priority_for

TYPES = [("repair", "repair"), ("repair", "Guasto"), ("repair", "Defecțiune"),
         ("installation", "installation"), ("installation", "Installazione"),
         ("installation", "Instalare"), ("service_schedule", "service schedule"),
         ("service_schedule", "Manutenzione programmata")]


@pytest.mark.parametrize(("subject", "body", "expected"), [
    ("Guasto caldaia", "", Guess("repair")),
    ("GUASTO", "", Guess("repair")),
    ("Defectiune centrala", "", Guess("repair")),                 # without diacritics
    ("Centrală", "Avem o defecțiune la centrală.", Guess("repair")),  # first lines count
    ("Richiesta installazione climatizzatore", "", Guess("installation")),
    ("URGENTE: guasto caldaia", "", Guess("repair", urgent=True)),
    ("Urgență", "", Guess("", urgent=True)),
    ("Please help ASAP", "", Guess("", urgent=True)),
    ("Guasto dopo l'installazione", "", Guess("")),               # two types: the operator picks
    ("Guastoni", "", Guess("")),                                  # not a whole word
    ("Informazioni", "Non è urgente, quando potete.", Guess("", urgent=True)),
    ("", "", Guess("")),
])
def test_guess_table(subject: str, body: str, expected: Guess) -> None:
    """A type only when exactly one is named as whole words; urgency from a few words
    that mean it (a reader could argue "non è urgente": an operator lowers it)."""
    assert guess_request(subject, body, TYPES) == expected


def test_priority_from_the_type_raised_by_urgency() -> None:
    """The type's default priority, high when the customer says it is urgent, never
    lowered below what the type gives."""
    assert priority_for(Guess("repair"), "normal") is Priority.NORMAL
    assert priority_for(Guess("repair", urgent=True), "normal") is Priority.HIGH
    assert priority_for(Guess("", urgent=True), None) is Priority.HIGH
    assert priority_for(Guess("leak", urgent=True), "urgent") is Priority.URGENT
    assert priority_for(Guess(""), None) is Priority.NORMAL


def test_a_huge_mail_is_read_in_bounded_time() -> None:
    """Only the subject's start and the body's first lines are read."""
    started = time.perf_counter()
    guess_request("guasto " * 100_000, "urgente " * 1_000_000, TYPES * 50)
    assert time.perf_counter() - started < 1.0
