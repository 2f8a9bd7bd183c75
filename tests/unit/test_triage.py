"""The ruling on an inbound mail from its facts: copies, noise, answers, threading."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from nexusmail.tickets.models import MatchedBy
from nexusmail.tickets.thread_rules import ThreadFacts
from nexusmail.tickets.triage import (
    CLOSED_NOTE,
    NO_SENDER_NOTE,
    NOT_EMPLOYEE_NOTE,
    OLDER_NOTE,
    REPEATED_NOTE,
    TAG_ONLY_NOTE,
    AnswerFacts,
    Disposition,
    MailFacts,
    Ruling,
    triage,
)

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PROVEN = AnswerFacts(number=7, matched_by=MatchedBy.TOKEN, from_employee=True,
                     sender_doubt="", case_open=True, written_at=NOON,
                     decision_written_at=None, same_answer_applied=False)


def answer(**changes: object) -> MailFacts:
    return MailFacts(answer=replace(PROVEN, **changes))  # type: ignore[arg-type]


def kept(reason: str, *, verified: bool) -> Ruling:
    return Ruling(Disposition.KEPT_ANSWER, 7, reason=reason, verified=verified)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        # A copy is a copy before anything else, even of noise or of an answer.
        (MailFacts(copy_of=3, copy_number=7, noise_reason="auto-reply", answer=PROVEN),
         Ruling(Disposition.COPY, 7)),
        (MailFacts(noise_reason="bounce", answer=PROVEN),
         Ruling(Disposition.NOISE, reason="bounce")),
        (MailFacts(has_sender=False), Ruling(Disposition.NO_SENDER, reason=NO_SENDER_NOTE)),
        # Answers: only a provable one from the employee, on an open case, decides.
        (answer(), Ruling(Disposition.DECISION, 7)),
        (answer(matched_by=MatchedBy.MESSAGE_ID), Ruling(Disposition.DECISION, 7)),
        (answer(matched_by=MatchedBy.TAG), kept(TAG_ONLY_NOTE, verified=False)),
        (answer(from_employee=False), kept(NOT_EMPLOYEE_NOTE, verified=False)),
        (answer(sender_doubt="2 From headers"),
         kept("sender in doubt: 2 From headers", verified=False)),
        # A doubtful author is named first, even when the mail is also a replay.
        (answer(sender_doubt="x", same_answer_applied=True),
         kept("sender in doubt: x", verified=False)),
        # Replays: the technician wrote it, but it must not flip the decision in force.
        (answer(decision_written_at=datetime(2026, 3, 2, 12, 0, 1, tzinfo=UTC)),
         kept(OLDER_NOTE, verified=True)),
        (answer(decision_written_at=NOON), Ruling(Disposition.DECISION, 7)),
        (answer(written_at=NOON.replace(microsecond=900_000), decision_written_at=NOON),
         Ruling(Disposition.DECISION, 7)),
        (answer(same_answer_applied=True), kept(REPEATED_NOTE, verified=True)),
        (answer(case_open=False), kept(CLOSED_NOTE, verified=True)),
        # A team colleague confirmed first: the member wrote it, but the job is not theirs.
        (answer(taken_by_colleague="Luca Bianchi"),
         kept("taken by Luca Bianchi", verified=True)),
        (answer(taken_by_colleague="Luca", sender_doubt="x"), kept("sender in doubt: x",
                                                                  verified=False)),
        # An answer is never threaded as a customer's follow-up.
        (MailFacts(answer=PROVEN, thread=ThreadFacts(9, None, False, False)),
         Ruling(Disposition.DECISION, 7)),
        # Threading.
        (MailFacts(), Ruling(Disposition.NEW_CASE)),
        (MailFacts(thread=ThreadFacts(9, None, False, False)),
         Ruling(Disposition.FOLLOW_UP, 9)),
        (MailFacts(thread=ThreadFacts(9, None, False, False), closed_cases=frozenset({9})),
         Ruling(Disposition.FOLLOW_UP, 9, reason="after close", after_close=True)),
        (MailFacts(thread=ThreadFacts(None, 9, True, True)), Ruling(Disposition.FOLLOW_UP, 9)),
        (MailFacts(thread=ThreadFacts(None, 9, True, False)),
         Ruling(Disposition.NEW_CASE, related=9, reason="tag of #9 from a non-participant")),
        (MailFacts(thread=ThreadFacts(None, 9, False, False)), Ruling(Disposition.NEW_CASE)),
    ],
)
def test_triage(facts: MailFacts, expected: Ruling) -> None:
    """Each combination of facts gets the one ruling the rules give it."""
    assert triage(facts) == expected
