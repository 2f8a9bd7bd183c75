"""The clock deadlines are counted on: N business hours after an instant.

Deadlines, reminders and escalations ask `adder_of(settings)` for a function
`(start, hours) -> instant` over the company's business calendar ([calendar]: working
days and hours, public holidays, closures, time zone); `company_zone` is the zone its
days are read in (which contract covers a case, what "due today" means).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from nexusmail.config import Settings
from nexusmail.tickets.business_calendar import BusinessCalendar, add_business_hours

AddBusinessHours = Callable[[datetime, float], datetime]


def adder_of(settings: Settings) -> AddBusinessHours:
    """The function that adds business hours for these settings."""
    calendar = BusinessCalendar.from_settings(settings.calendar)
    return partial(_add, calendar=calendar)


def company_zone(settings: Settings) -> str:
    return settings.calendar.timezone


def _add(start: datetime, hours: float, *, calendar: BusinessCalendar) -> datetime:
    return add_business_hours(start, hours, calendar)
