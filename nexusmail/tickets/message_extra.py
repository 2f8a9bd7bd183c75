"""What a thread message's `extra` JSON column may hold, and reading and writing it.

`messages.extra` carries the facts that only some kinds of message have; each key is
written by one part (named below) and read by the thread page, the JSON API and the
CLI. Rows written by older versions may lack any key, so every key is optional.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict, cast


class MessageExtra(TypedDict, total=False):
    # Customer mail (tickets/apply_mail.py).
    defects: list[str]          # what the MIME parser had to repair
    after_close: bool           # arrived while the case was closed
    # A technician's reply (tickets/assignments.py).
    assignment_id: int
    employee: str
    matched_by: str             # a MatchedBy value
    acted: bool                 # whether it changed the assignment
    reason: str                 # the reason read from the reply
    not_acted: str              # why it did not act, when it did not
    applied_by: str             # the operator who applied it later by hand
    # A work report (tickets/reports.py) and an operator's activity (tickets/activities.py):
    # whole minutes, None when the report stated none that could be read.
    work_minutes: int | None
    travel_minutes: int | None
    hours_unread: bool          # a done report without readable hours: an operator fills them
    activity_kind: str          # an ActivityKind value (operator's activity entries)
    applied_at: str
    # The operator's note for a reply applied by hand: that reply's messages.id.
    applied_message: int
    # Notes: who opened the case (tickets/new_requests.py, tickets/schedules.py).
    entry: str                  # operator | schedule | edit
    schedule_id: int
    occurrence: str             # ISO date of the scheduled visit
    opens_on: str               # ISO date the case was opened for it
    late: bool                  # opened after its day (the daemon was down)
    assignee_failed: str        # an assignee the schedule could not assign
    # Status changes (tickets/cases.py, tickets/case_edits.py): a Status value.
    status: str
    # Edits of a case (tickets/case_edits.py): column -> [old, new]; entry is "edit".
    changes: dict[str, list[Any]]
    # Intervention entries (admin API and pages): the correspondence register number.
    register_ref: str
    # Outgoing mail (tickets/outbox.py): an OutboxStatus value and the relay's refusal.
    delivery: str
    delivery_error: str
    # Deadline notes (tickets/deadlines.py): remind | escalate | resolution_warning.
    sla_step: str
    # Action-sequence notes (tickets/sequence_plan.py, tickets/sequence_steps.py): the
    # sequence's code, the step's number, and started | scheduled | mailed | blocked |
    # again | done | finished | stopped.
    sequence: str
    sequence_step: int
    sequence_event: str


def load_extra(text: str | None) -> MessageExtra:
    """The stored JSON as a MessageExtra; {} for an empty, broken or non-object value."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return cast(MessageExtra, value) if isinstance(value, dict) else {}


def dump_extra(extra: MessageExtra) -> str:
    """The JSON stored in messages.extra (non-ASCII kept readable)."""
    return json.dumps(extra, ensure_ascii=False)
