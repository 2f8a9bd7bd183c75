"""What an inbound mail is, ruled from facts looked up beforehand: a pure function.

The apply step (tickets.apply_mail) gathers the facts inside its transaction, asks
`triage` for a ruling and carries the ruling out. The rules themselves read no store
and no clock, so a table of facts pins every one of them.

A technician's answer changes its assignment only when it provably comes from that
assignment's employee: the From must be the employee, read alike by every parser and
not failed by the firm's own MTA (DMARC), and the mail must prove it answers the
assignment mail (the signed Reply-To token, or In-Reply-To/References naming that
mail's unguessable Message-ID). The subject tag is on every mail of the case, so it
proves nothing. An answer older than the one in force, or the very same answer again,
is a replay. Every answer, acted on or not, is kept on the thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from nexusmail.tickets.models import MatchedBy
from nexusmail.tickets.thread_rules import Thread, ThreadFacts, decide_thread


class Disposition(StrEnum):
    COPY = "copy"                 # an earlier delivery of this same mail: no new effect
    NOISE = "noise"               # auto-reply, bounce, list mail: logged, nothing else
    NO_SENDER = "no_sender"       # no address to thread it by or to answer
    DECISION = "decision"         # a technician's answer that changes its assignment
    KEPT_ANSWER = "kept_answer"   # a technician's answer kept on the thread, not acted on
    FOLLOW_UP = "follow_up"       # joins an existing intervention
    NEW_CASE = "new_case"         # opens an intervention (linked when `related` is set)


@dataclass(frozen=True)
class AnswerFacts:
    """About a mail that names an assignment."""

    number: int                        # the intervention it belongs to
    matched_by: MatchedBy
    from_employee: bool                # the From is the assignment's employee
    sender_doubt: str                  # why the From cannot be believed ("" when it can)
    case_open: bool
    written_at: datetime               # its Date:, never later than its arrival
    decision_written_at: datetime | None   # the Date of the answer in force, if any
    same_answer_applied: bool          # these very words were applied already
    taken_by_colleague: str = ""       # a team colleague confirmed first (their name)


@dataclass(frozen=True)
class MailFacts:
    """Everything the rules read about one inbound mail. Lookups that an earlier fact
    makes moot are not made (a copy or noise is never matched to a case)."""

    copy_of: int | None = None         # the inbound row this mail repeats
    copy_number: int | None = None     # that row's intervention
    noise_reason: str | None = None
    has_sender: bool = True
    answer: AnswerFacts | None = None
    thread: ThreadFacts | None = None
    closed_cases: frozenset[int] = frozenset()   # of the cases `thread` names


@dataclass(frozen=True)
class Ruling:
    disposition: Disposition
    number: int | None = None          # the case joined, answered, or the copy's
    related: int | None = None         # NEW_CASE: the case a stranger's tag named
    reason: str = ""                   # for the inbound log and the thread
    verified: bool = True              # an answer the technician provably wrote
    after_close: bool = False          # FOLLOW_UP: the case is closed (not reopened)


NO_SENDER_NOTE = "no sender address"
NOT_EMPLOYEE_NOTE = "sender is not the assigned employee"
TAG_ONLY_NOTE = "matched by the subject tag only: no proof it answers the assignment mail"
CLOSED_NOTE = "intervention is closed"
OLDER_NOTE = "older than the answer already applied"
REPEATED_NOTE = "the same answer as one already applied (a replay?)"


def triage(facts: MailFacts) -> Ruling:
    """The ruling on one inbound mail."""
    if facts.copy_of is not None:
        return Ruling(Disposition.COPY, facts.copy_number)
    if facts.noise_reason:
        return Ruling(Disposition.NOISE, reason=facts.noise_reason)
    if not facts.has_sender:
        return Ruling(Disposition.NO_SENDER, reason=NO_SENDER_NOTE)
    if facts.answer is not None:
        # Matched before customer threading: it references the same intervention, but
        # it is a decision, not a follow-up.
        return _rule_on_answer(facts.answer)
    thread = decide_thread(facts.thread or ThreadFacts(None, None, False, False))
    if thread.thread is Thread.FOLLOW_UP and thread.number is not None:
        closed = thread.number in facts.closed_cases
        return Ruling(Disposition.FOLLOW_UP, thread.number,
                      reason="after close" if closed else "", after_close=closed)
    if thread.related is not None:
        return Ruling(Disposition.NEW_CASE, related=thread.related,
                      reason=f"tag of #{thread.related} from a non-participant")
    return Ruling(Disposition.NEW_CASE)


def _rule_on_answer(answer: AnswerFacts) -> Ruling:
    doubt = _doubt_about_author(answer)
    if doubt:
        return Ruling(Disposition.KEPT_ANSWER, answer.number, reason=doubt, verified=False)
    # From here on the technician provably wrote it: shown as verified, acted on or not.
    replay = _replay(answer)
    if replay:
        return Ruling(Disposition.KEPT_ANSWER, answer.number, reason=replay)
    if not answer.case_open:
        return Ruling(Disposition.KEPT_ANSWER, answer.number, reason=CLOSED_NOTE)
    if answer.taken_by_colleague:
        return Ruling(Disposition.KEPT_ANSWER, answer.number,
                      reason=f"taken by {answer.taken_by_colleague}")
    return Ruling(Disposition.DECISION, answer.number)


def _doubt_about_author(answer: AnswerFacts) -> str:
    if not answer.from_employee:
        return NOT_EMPLOYEE_NOTE
    if answer.sender_doubt:
        return f"sender in doubt: {answer.sender_doubt}"
    if answer.matched_by is MatchedBy.TAG:
        return TAG_ONLY_NOTE
    return ""


def _replay(answer: AnswerFacts) -> str:
    # The store keeps seconds: compare at that precision.
    written = answer.written_at.replace(microsecond=0)
    if answer.decision_written_at is not None and written < answer.decision_written_at:
        return OLDER_NOTE
    if answer.same_answer_applied:
        return REPEATED_NOTE
    return ""
