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


class MessageKind(StrEnum):
    CUSTOMER_MAIL = "customer_mail"
    ACKNOWLEDGEMENT = "acknowledgement"
    ASSIGNMENT_MAIL = "assignment_mail"
    TECHNICIAN_REPLY = "technician_reply"
    NOTE = "note"
    STATUS_CHANGE = "status_change"
    OUTBOUND_MAIL = "outbound_mail"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class Status(StrEnum):
    OPEN = "open"
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
