"""Request bodies of the JSON API, validated by pydantic, and how their errors read.

Our own checks raise catalogued messages (`msg(...)`): the API reads their English,
an admin page the operator's language (admin.pages.form_errors).

Bodies are parsed in pydantic's strict JSON mode: a number where text is expected is
refused instead of silently converted, dates must be ISO `YYYY-MM-DD` strings, and an
unknown field is an error (a typo such as `priorty` must not be dropped silently).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from nexusmail.config import LimitsSettings
from nexusmail.i18n import msg
from nexusmail.mail.addresses import check_address
from nexusmail.tickets.models import Priority

# RFC 5321 section 4.5.3.1.3: a path is at most 256 octets, an address 254 of them.
MAX_ADDRESS_CHARS = 254
# More technicians than this on one intervention is a client bug, not a crew.
MAX_ASSIGNEES = 50


Channel = Literal["mail", "phone", "visit", "web", "schedule"]


def moment(value: str) -> str:
    """A date (2026-03-05) or a date and time (2026-03-05T10:30), in ISO form."""
    try:
        return (date.fromisoformat(value) if len(value) <= 10
                else datetime.fromisoformat(value)).isoformat()
    except ValueError:
        raise ValueError(msg("should be a date (YYYY-MM-DD) or date and time (ISO 8601)")
                         ) from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class EmployeeIn(_Body):
    email: str = Field(max_length=MAX_ADDRESS_CHARS)
    name: str = Field(min_length=1, max_length=200)
    language: Literal["en", "it", "ro"]

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)


class InterventionIn(_Body):
    customer_email: str = Field(max_length=MAX_ADDRESS_CHARS)
    customer_name: str = Field("", max_length=200)
    subject: str = Field(min_length=1)
    description: str = Field(min_length=1)
    request_type: str = Field("", max_length=100)
    priority: Priority = Priority.NORMAL
    desired_from: date | None = None
    desired_to: date | None = None
    # Employees to assign in the same transaction as the creation, so a case
    # never exists, even briefly, without the technicians it was opened for.
    assignees: list[str] = Field(default_factory=list, max_length=MAX_ASSIGNEES)
    # Whether the customer gets a closing mail when the case is resolved; null: as
    # `[reports] customer_closing_mail` says.
    notify_customer_on_resolve: bool | None = None
    # The archive's records it is about (each must belong to the customer), how and
    # when it came, and the language of a customer new to us.
    contact_email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    site_id: int | None = Field(None, ge=1)
    equipment_serial: str | None = Field(None, min_length=1, max_length=100)
    requested_at: str | None = Field(None, max_length=40)
    channel: Channel | None = None
    language: Literal["en", "it", "ro"] | None = None

    @field_validator("customer_email", "contact_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("requested_at")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        return None if value is None else moment(value)

    @field_validator("assignees")
    @classmethod
    def _assignee_addresses(cls, value: list[str]) -> list[str]:
        checked = []
        for item in value:
            try:
                checked.append(check_address(item.strip()))
            except ValueError:
                raise ValueError(msg("{address} is not an email address",
                                     address=repr(item))) from None
        # The same address twice is one assignment, not a conflict with itself.
        return list(dict.fromkeys(checked))

    @field_validator("subject")
    @classmethod
    def _subject_within_limit(cls, value: str, info: ValidationInfo) -> str:
        limits = _limits(info)
        if len(value) > limits.max_subject_chars:
            raise ValueError(msg("is longer than {most} characters ([limits] {setting})",
                                 most=limits.max_subject_chars,
                                 setting="max_subject_chars"))
        return value

    @field_validator("description")
    @classmethod
    def _description_within_limit(cls, value: str, info: ValidationInfo) -> str:
        limits = _limits(info)
        if len(value) > limits.max_body_chars:
            raise ValueError(msg("is longer than {most} characters ([limits] {setting})",
                                 most=limits.max_body_chars, setting="max_body_chars"))
        return value

    @field_validator("desired_to")
    @classmethod
    def _period_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("desired_from")
        if value is not None and isinstance(start, date) and value < start:
            raise ValueError(msg("is before desired_from"))
        return value


class CloseIn(_Body):
    note: str = Field("", max_length=10_000)
    reason: str = Field("", max_length=200)


class ReplyIn(_Body):
    """An operator's answer to the customer (see admin.api.replies)."""

    text: str = Field(min_length=1)
    close: bool = False


class AssignmentIn(_Body):
    employee_email: str = Field(max_length=MAX_ADDRESS_CHARS)
    # Instructions for the technician, shown in the assignment mail.
    note: str = Field("", max_length=2000)

    @field_validator("employee_email")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)


class TeamAssignmentIn(_Body):
    team: str = Field(min_length=1, max_length=100)
    # Instructions for the technicians, shown in every member's assignment mail.
    note: str = Field("", max_length=2000)


def _limits(info: ValidationInfo) -> LimitsSettings:
    context = info.context or {}
    limits = context.get("limits")
    return limits if isinstance(limits, LimitsSettings) else LimitsSettings()


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every field at fault: `language: should be 'en', 'it' or 'ro'`."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def is_malformed_json(exc: ValidationError) -> bool:
    """True when the body was not JSON at all (400), rather than JSON of the wrong shape
    (422)."""
    return any(error["type"] == "json_invalid" for error in exc.errors())
