"""Request bodies for service schedules, shared by the JSON API and the CLI.

Field checks live here (types, ranges, addresses); whether the date rule as a whole
can be used (until after first_date, until or count, day_rule for the interval) is
decided once, by tickets.schedules, and comes back as InvalidSchedule naming the field.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field, field_validator

from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, MAX_ASSIGNEES, _Body
from nexusmail.mail.addresses import check_address
from nexusmail.tickets.recurrence import DayRule, Interval
from nexusmail.tickets.schedules import DEFAULT_REQUEST_TYPE, ScheduleSpec

# A lead time beyond a year, a step beyond a century or a count beyond ten thousand
# is a typo, and each would make every preview and tick walk that far.
MAX_LEAD_DAYS = 366
MAX_EVERY = 100
MAX_COUNT = 10_000


def _addresses(value: list[str]) -> list[str]:
    checked = []
    for item in value:
        try:
            checked.append(check_address(item.strip()))
        except ValueError:
            raise ValueError(f"{item!r} is not an email address") from None
    return list(dict.fromkeys(checked))


class ScheduleIn(_Body):
    customer_email: str = Field(max_length=MAX_ADDRESS_CHARS)
    customer_name: str = Field("", max_length=200)
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=100_000)
    interval: Interval
    every: int = Field(1, ge=1, le=MAX_EVERY)
    day_rule: DayRule = DayRule.SAME_DAY
    first_date: date
    until: date | None = None
    count: int | None = Field(None, ge=1, le=MAX_COUNT)
    lead_days: int = Field(ge=0, le=MAX_LEAD_DAYS)
    assignees: list[str] = Field(default_factory=list, max_length=MAX_ASSIGNEES)
    request_type: str = Field(DEFAULT_REQUEST_TYPE, min_length=1, max_length=100)
    contract_ref: str = Field("", max_length=100)

    @field_validator("customer_email")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)

    @field_validator("assignees")
    @classmethod
    def _assignee_addresses(cls, value: list[str]) -> list[str]:
        return _addresses(value)

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(
            customer_email=self.customer_email, customer_name=self.customer_name,
            subject=self.subject, description=self.description, interval=self.interval,
            every=self.every, day_rule=self.day_rule, first_date=self.first_date,
            until=self.until, count=self.count, lead_days=self.lead_days,
            assignees=tuple(self.assignees), request_type=self.request_type,
            contract_ref=self.contract_ref,
        )


class SchedulePatch(_Body):
    """Only the fields sent change; `until` and `count` may be set to null to clear."""

    active: bool = True
    subject: str = Field("", min_length=1, max_length=500)
    description: str = Field("", max_length=100_000)
    interval: Interval = Interval.MONTHLY
    every: int = Field(1, ge=1, le=MAX_EVERY)
    day_rule: DayRule = DayRule.SAME_DAY
    first_date: date = date.min
    until: date | None = None
    count: int | None = Field(None, ge=1, le=MAX_COUNT)
    lead_days: int = Field(0, ge=0, le=MAX_LEAD_DAYS)
    assignees: list[str] = Field(default_factory=list, max_length=MAX_ASSIGNEES)
    request_type: str = Field(DEFAULT_REQUEST_TYPE, min_length=1, max_length=100)
    contract_ref: str = Field("", max_length=100)

    @field_validator("assignees")
    @classmethod
    def _assignee_addresses(cls, value: list[str]) -> list[str]:
        return _addresses(value)

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as tickets.schedules.update_schedule takes them."""
        sent = {name: getattr(self, name) for name in self.model_fields_set}
        if "assignees" in sent:
            sent["assignees"] = tuple(sent["assignees"])
        return sent
