"""Business days for postponed sequence steps: N working days after a day, skipping
weekends, Italian and Romanian holidays and closures; and the instant a working day
starts, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from nexusmail.tickets.business_calendar import (
    BusinessCalendar,
    add_business_days,
    working_day_start,
)

ROME, BUCHAREST = ZoneInfo("Europe/Rome"), ZoneInfo("Europe/Bucharest")
IT = BusinessCalendar(ROME, country="IT")
RO = BusinessCalendar(BUCHAREST, country="RO",
                      closures=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))


@pytest.mark.parametrize(("calendar", "day", "days", "due"), [
    (IT, date(2026, 3, 2), 0, date(2026, 3, 2)),     # 0: the same day
    (IT, date(2026, 3, 7), 0, date(2026, 3, 7)),     # 0 on a Saturday: still that day
    (IT, date(2026, 3, 2), 2, date(2026, 3, 4)),     # Monday + 2: Wednesday
    (IT, date(2026, 3, 6), 2, date(2026, 3, 10)),    # Friday + 2: Tuesday
    (IT, date(2026, 3, 7), 1, date(2026, 3, 9)),     # Saturday + 1: Monday
    (IT, date(2026, 4, 3), 1, date(2026, 4, 7)),     # Good Friday + 1: Easter Monday off
    (IT, date(2026, 12, 23), 2, date(2026, 12, 28)),  # Christmas and St Stephen's off
    (RO, date(2026, 4, 9), 1, date(2026, 4, 14)),    # Orthodox Good Friday to Easter Monday
    (RO, date(2026, 12, 23), 1, date(2026, 12, 28)),  # a closure, then Christmas
    (RO, date(2026, 12, 30), 1, date(2027, 1, 4)),   # a closure, New Year, a weekend
])
def test_business_days_skip_days_off(calendar: BusinessCalendar, day: date, days: int,
                                     due: date) -> None:
    """The due day is the N-th working day after the day a step was finished."""
    assert add_business_days(day, days, calendar) == due


def test_negative_days_are_refused() -> None:
    """A step cannot be due before the one it follows."""
    with pytest.raises(ValueError, match="negative"):
        add_business_days(date(2026, 3, 2), -1, IT)


@pytest.mark.parametrize(("day", "start"), [
    (date(2026, 3, 27), datetime(2026, 3, 27, 7, 30, tzinfo=UTC)),   # CET: 08:30 = 07:30Z
    (date(2026, 3, 30), datetime(2026, 3, 30, 6, 30, tzinfo=UTC)),   # CEST: 08:30 = 06:30Z
    (date(2026, 3, 28), datetime(2026, 3, 27, 23, 0, tzinfo=UTC)),   # Saturday: midnight
])
def test_a_working_day_starts_at_its_first_working_hour(day: date, start: datetime) -> None:
    """A postponed step is mailed when its due day's working time begins, on either side
    of the spring clock change."""
    assert working_day_start(day, IT) == start
