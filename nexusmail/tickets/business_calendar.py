"""Business hours: an instant plus N working hours, on the company's calendar.

The calendar is a value built from [calendar]: working days, working hours (one or
more ranges of the local day), the country's public holidays (the `holidays` library:
Easter Monday in Italy, Orthodox Good Friday, Easter and Pentecost in Romania),
company closures and the time zone. Working hours are wall-clock times of the local
day, while time is counted in real elapsed time: on the night clocks change, a
"00:00-24:00" day has 23 or 25 hours. All arithmetic is done in UTC, since adding a
timedelta to a zone-aware datetime moves the wall clock, not the elapsed time.

Pure: no clock, no store; the holiday tables are computed, not read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from nexusmail.config import CalendarSettings

WEEKDAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
# A calendar with no working time left (every day a closure, say) must not loop for
# ever: ten years without a working minute is a configuration error.
_MAX_DAYS_SCANNED = 3660


@lru_cache(maxsize=128)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The national public holidays of `country` ("IT", "RO"; "" for none) in `year`."""
    if not country:
        return frozenset()
    return frozenset(holidays.country_holidays(country, years=year).keys())


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: ZoneInfo
    working_days: frozenset[int] = frozenset(range(5))  # Monday is 0
    # (start, end) minutes from local midnight, sorted and apart; end may be 24:00.
    working_hours: tuple[tuple[int, int], ...] = ((8 * 60 + 30, 17 * 60 + 30),)
    country: str = ""
    closures: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> BusinessCalendar:
        return cls(
            timezone=ZoneInfo(settings.timezone),
            working_days=frozenset(WEEKDAY_NUMBERS[d] for d in settings.working_days),
            working_hours=settings.working_hours,
            country=settings.country,
            closures=frozenset(settings.closures),
        )

    def is_working_day(self, day: date) -> bool:
        return (day.weekday() in self.working_days and day not in self.closures
                and day not in public_holidays(self.country, day.year))

    def periods(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The working periods of a local day as UTC instants (none on a day off)."""
        if not self.is_working_day(day):
            return
        for start, end in self.working_hours:
            begins, ends = self._instant(day, start), self._instant(day, end)
            if begins < ends:  # a range inside a skipped hour (clocks forward) is empty
                yield begins, ends

    def is_working_instant(self, moment: datetime) -> bool:
        """True when `moment` lies inside a working period (its end excluded)."""
        moment = moment.astimezone(UTC)
        local_day = moment.astimezone(self.timezone).date()
        # A period ending at 24:00 belongs to the day before the local date of its end.
        days = (local_day - timedelta(days=1), local_day)
        return any(b <= moment < e for day in days for b, e in self.periods(day))

    def _instant(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            day, minutes = day + timedelta(days=1), 0
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.timezone)
        return local.astimezone(UTC)


def add_business_time(start: datetime, duration: timedelta,
                      calendar: BusinessCalendar) -> datetime:
    """`start` plus `duration` of working time, in `start`'s time zone.

    Counting begins at `start` if it is inside a working period, else at the next
    period's start. A result that falls exactly on a period's end is that end (17:30,
    not the next morning). A zero duration gives `start` itself.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be a timezone-aware datetime")
    if duration < timedelta(0):
        raise ValueError("business time cannot be negative")
    if not duration:
        return start
    moment = start.astimezone(UTC)
    remaining = duration
    # From the day before: a period ending at 24:00 may still hold `start`.
    day = moment.astimezone(calendar.timezone).date() - timedelta(days=1)
    for _ in range(_MAX_DAYS_SCANNED):
        for begins, ends in calendar.periods(day):
            if ends <= moment:
                continue
            available = ends - max(begins, moment)
            if remaining <= available:
                return (max(begins, moment) + remaining).astimezone(start.tzinfo)
            remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"no working time in {_MAX_DAYS_SCANNED} days: check [calendar]")


def add_business_hours(start: datetime, hours: float, calendar: BusinessCalendar) -> datetime:
    """`start` plus `hours` working hours (fractions allowed), in `start`'s time zone."""
    if not math.isfinite(hours):
        raise ValueError(f"business hours must be a finite number, not {hours!r}")
    return add_business_time(start, timedelta(hours=hours), calendar)


def add_business_days(day: date, days: int, calendar: BusinessCalendar) -> date:
    """The `days`-th working day after `day` (`day` itself for 0, working or not): a
    step postponed by 2 days after a Friday is due on Tuesday."""
    if days < 0:
        raise ValueError("business days cannot be negative")
    for _ in range(_MAX_DAYS_SCANNED):
        if not days:
            return day
        day += timedelta(days=1)
        days -= calendar.is_working_day(day)
    raise ValueError(f"no working day in {_MAX_DAYS_SCANNED} days: check [calendar]")


def working_day_start(day: date, calendar: BusinessCalendar) -> datetime:
    """The instant (UTC) the working time of `day` begins; midnight of a day without
    working time, which then starts at once."""
    for begins, _ in calendar.periods(day):
        return begins
    return datetime.combine(day, time(0), tzinfo=calendar.timezone).astimezone(UTC)
