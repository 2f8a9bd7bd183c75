"""Threading rules: which intervention a mail joins."""

from __future__ import annotations

import pytest

from nexusmail.tickets.thread_rules import Thread, ThreadDecision, ThreadFacts, decide_thread


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (ThreadFacts(None, None, False, False), ThreadDecision(Thread.NEW)),
        (ThreadFacts(7, None, False, False), ThreadDecision(Thread.FOLLOW_UP, number=7)),
        # A reference wins over a tag naming another case.
        (ThreadFacts(7, 9, True, False), ThreadDecision(Thread.FOLLOW_UP, number=7)),
        (ThreadFacts(None, 9, True, True), ThreadDecision(Thread.FOLLOW_UP, number=9)),
        (ThreadFacts(None, 9, True, False), ThreadDecision(Thread.NEW_LINKED, related=9)),
        # A tag naming no existing case is just text.
        (ThreadFacts(None, 999, False, False), ThreadDecision(Thread.NEW)),
    ],
)
def test_decide_thread(facts: ThreadFacts, expected: ThreadDecision) -> None:
    """References join; a tag joins only for participants; a stranger's tag links."""
    assert decide_thread(facts) == expected
