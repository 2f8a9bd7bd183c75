"""Which intervention an inbound mail belongs to: pure rules over looked-up facts.

A mail joins an intervention when its In-Reply-To/References name a
Message-ID we sent or received for it, or when its subject carries the tag [#N] and the
sender already took part in N. A tag from a stranger opens a new intervention linked
to N: otherwise anyone could write into anyone's case by guessing a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Thread(StrEnum):
    FOLLOW_UP = "follow_up"
    NEW = "new"
    NEW_LINKED = "new_linked"   # a stranger's tag: new case, linked to the tagged one


@dataclass(frozen=True)
class ThreadFacts:
    referenced_number: int | None      # from In-Reply-To/References, via our thread refs
    tag_number: int | None             # [#N] in the subject
    tag_exists: bool                   # intervention N exists
    sender_is_participant: bool        # the sender took part in N


@dataclass(frozen=True)
class ThreadDecision:
    thread: Thread
    number: int | None = None          # the intervention joined (FOLLOW_UP)
    related: int | None = None         # the one linked to (NEW_LINKED)


def decide_thread(facts: ThreadFacts) -> ThreadDecision:
    if facts.referenced_number is not None:
        return ThreadDecision(Thread.FOLLOW_UP, number=facts.referenced_number)
    if facts.tag_number is not None and facts.tag_exists:
        if facts.sender_is_participant:
            return ThreadDecision(Thread.FOLLOW_UP, number=facts.tag_number)
        return ThreadDecision(Thread.NEW_LINKED, related=facts.tag_number)
    return ThreadDecision(Thread.NEW)
