"""Names the tickets layer stores: outcomes, message kinds, states. Decisions are values."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What became of an inbound mail (inbound.outcome)."""

    NEW_REQUEST = "new_request"
    FOLLOW_UP = "follow_up"
    TECHNICIAN_REPLY = "technician_reply"
    NOISE = "noise"
    UNMATCHED = "unmatched"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    # Kept back by the loop guard: its sender is muted (kept opening new cases). Listed
    # and retried with the quarantined mails once the sender is unmuted.
    HELD = "held"


class MessageKind(StrEnum):
    CUSTOMER_MAIL = "customer_mail"
    ACKNOWLEDGEMENT = "acknowledgement"
    ASSIGNMENT_MAIL = "assignment_mail"
    TECHNICIAN_REPLY = "technician_reply"
    NOTE = "note"
    STATUS_CHANGE = "status_change"
    OUTBOUND_MAIL = "outbound_mail"
    OPERATOR_REPLY = "operator_reply"      # an operator's answer mailed to the customer
    ACTIVITY = "activity"                  # time an operator recorded (a call, a visit...)


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class Status(StrEnum):
    OPEN = "open"
    ON_HOLD = "on_hold"    # suspended, with a reason (waiting for parts, for the customer)
    # Every confirmed technician reported the job done: an operator closes or reopens it.
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Source(StrEnum):
    EMAIL = "email"
    API = "api"
    SCHEDULE = "schedule"


class AssignmentStatus(StrEnum):
    """Where a technician's assignment stands (assignments.status)."""

    PENDING = "pending"        # mailed, no answer read yet
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNCLEAR = "unclear"        # answered, but not readable as yes or no
    DONE = "done"              # reported the job done (a work report)
    TAKEN = "taken"            # a team colleague confirmed first: this one no longer acts


class MatchedBy(StrEnum):
    """How an inbound reply was tied to its assignment, strongest proof first."""

    TOKEN = "token"  # noqa: S105 (a name, not a secret) the signed Reply-To address of the assignment mail
    MESSAGE_ID = "message_id"  # In-Reply-To/References naming the assignment mail
    TAG = "tag"                # only the case tag in the subject: proves nothing


class OutboxStatus(StrEnum):
    """An outbox row's state; only `pending` rows are ever sent."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxKind(StrEnum):
    """Why an outgoing mail was queued (outbox.kind; rate limits count per kind)."""

    ACKNOWLEDGEMENT = "acknowledgement"
    ASSIGNMENT = "assignment"
    DECISION_ECHO = "decision_echo"
    REJECTION_NOTICE = "rejection_notice"
    OPERATOR_REPLY = "operator_reply"      # written by a person: no Auto-Submitted header
    REPORT_ECHO = "report_echo"            # to the technician: what their report recorded
    REPORT_NOT_DONE = "report_not_done"    # to operators: a job is not finished, and why
    RESOLVED_NOTICE = "resolved_notice"    # to operators: every technician reported done
    CUSTOMER_CLOSING = "customer_closing"  # to the customer: the job is done, the report
    ASSIGNMENT_REMINDER = "assignment_reminder"  # to the technician: no reply yet
    SLA_ALERT = "sla_alert"                # to operators: no reply, or a deadline near
    CONTRACT_HOURS = "contract_hours"      # to operators: a contract's prepaid hours run low
    PEER_MUTED = "peer_muted"              # to the operators: the loop guard muted a sender
    TAKEN_NOTICE = "taken_notice"          # to a team member: a colleague took the job
