"""Service-schedule dates: occurrences, opening dates and the catch-up rule.

Pure: calendar dates in, calendar dates out, no clock and no I/O.
The caller turns its clock's UTC instant into the company's calendar date
(`local_date`) once; everything here works on `date`, so a DST change can never move
an occurrence.

Dates come from dateutil's rrule, never hand-written month arithmetic. Keeping the
anchor day of a monthly/quarterly/yearly rule is `bymonthday=(day, -1), bysetpos=1`:
each month's candidate set is {day, last day}; in a month long enough both are the
same or `day` comes first, in a shorter one only the last day exists, and
`bysetpos=1` takes the first. So the 31st falls on 30 April and 28/29 February and
comes back to 31 May, and 29 February falls on 28 February in common years; the rule
is restated from the anchor every period, so it never drifts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil import rrule as rr

from nexusmail.i18n import Msg, Word, msg


class Interval(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class DayRule(StrEnum):
    """Which day of the month a monthly, quarterly or yearly schedule falls on."""

    SAME_DAY = "same_day"          # the first date's day (31st → last day of short months)
    LAST_DAY = "last_day"          # the last day of the month
    NTH_WEEKDAY = "nth_weekday"    # e.g. the 2nd Monday, as the first date is; a 5th = last


class CatchUp(StrEnum):
    """After downtime, which occurrences whose opening date passed are still opened."""

    UPCOMING = "upcoming"  # only those whose date has not passed yet
    LATEST = "latest"      # those, plus the most recent past one (the default)
    ALL = "all"            # every missed one


# Months per period of the monthly-based intervals.
_MONTHS = {Interval.MONTHLY: 1, Interval.QUARTERLY: 3, Interval.YEARLY: 12}
# The day from which a SAME_DAY anchor may be missing in some month.
_SHORTEST_MONTH = 28


@dataclass(frozen=True)
class Recurrence:
    """A schedule's rule. `until` and `count` bound it (at most one of them)."""

    interval: Interval
    first_date: date
    every: int = 1
    until: date | None = None
    count: int | None = None
    day_rule: DayRule = DayRule.SAME_DAY

    def __post_init__(self) -> None:
        problem = rule_problem(self)
        if problem is not None:
            raise ValueError(problem)


def rule_problem(rule: Recurrence) -> Msg | None:
    """Why `rule` cannot be used, as `field: reason`, or None."""
    if rule.every < 1:
        return msg("{field}: should be at least 1", field="every")
    if rule.until is not None and rule.count is not None:
        return msg("{field}: give either until or count, not both", field="until")
    if rule.count is not None and rule.count < 1:
        return msg("{field}: should be at least 1", field="count")
    if rule.until is not None and rule.until < rule.first_date:
        return msg("{field}: is before first_date", field="until")
    if rule.interval is Interval.WEEKLY and rule.day_rule is not DayRule.SAME_DAY:
        return msg("{field}: {rule} needs a monthly, quarterly or yearly interval",
                   field="day_rule", rule=Word(rule.day_rule))
    return None


def _rrule(rule: Recurrence) -> rr.rrule:
    start = datetime.combine(rule.first_date, time())
    until = datetime.combine(rule.until, time()) if rule.until else None
    if rule.interval is Interval.WEEKLY:
        return rr.rrule(rr.WEEKLY, dtstart=start, interval=rule.every, until=until,
                        count=rule.count, cache=False)
    months = _MONTHS[rule.interval] * rule.every
    # YEARLY with bymonth would also do; MONTHLY with interval 12·N is the same set
    # and keeps one code path for the three.
    day = rule.first_date.day
    if rule.day_rule is DayRule.LAST_DAY:
        by: dict[str, object] = {"bymonthday": -1}
    elif rule.day_rule is DayRule.NTH_WEEKDAY:
        nth = (day - 1) // 7 + 1
        # No month lacks a last Monday; some lack a 5th one, and a skipped month is
        # exactly what users complain about.
        by = {"byweekday": rr.weekday(rule.first_date.weekday(), -1 if nth == 5 else nth)}
    elif day > _SHORTEST_MONTH:
        by = {"bymonthday": (day, -1), "bysetpos": 1}
    else:
        by = {"bymonthday": day}
    return rr.rrule(rr.MONTHLY, dtstart=start, interval=months, until=until,
                    count=rule.count, cache=False, **by)


def iter_occurrences(rule: Recurrence, *, on_or_after: date | None = None) -> Iterator[date]:
    """The occurrence dates in order, from `on_or_after` (default: the first)."""
    dates = _rrule(rule)
    if on_or_after is None or on_or_after <= rule.first_date:
        found: Iterator[datetime] = iter(dates)
    else:
        found = dates.xafter(datetime.combine(on_or_after, time()), inc=True)
    return (moment.date() for moment in found)


def occurrences(rule: Recurrence, *, on_or_after: date | None = None,
                limit: int = 12) -> list[date]:
    """At most `limit` occurrence dates from `on_or_after`."""
    return list(islice(iter_occurrences(rule, on_or_after=on_or_after), limit))


def next_occurrence(rule: Recurrence, on_or_after: date) -> date | None:
    """The first occurrence on or after the date; None when the rule has ended."""
    return next(iter_occurrences(rule, on_or_after=on_or_after), None)


def opening_date(occurrence: date, lead_days: int) -> date:
    """The day the intervention for `occurrence` is opened."""
    return occurrence - timedelta(days=lead_days)


def local_date(moment: datetime, timezone: str) -> date:
    """The company's calendar date at an aware instant (the clock gives UTC)."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def utc_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant at which `day` starts in `timezone` (for tests and previews)."""
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)


@dataclass(frozen=True)
class Opening:
    occurrence: date
    opens_on: date
    late: bool             # opened after its opening date (downtime, pause, edit)


@dataclass(frozen=True)
class DuePlan:
    """What a tick does for one schedule: open these, record these as skipped (never
    silently: they are stored and logged), and where the schedule continues."""

    to_open: tuple[Opening, ...]
    skipped: tuple[date, ...]
    next_occurrence: date | None


def plan_due(rule: Recurrence, lead_days: int, *, from_date: date, today: date,
             catch_up: CatchUp = CatchUp.LATEST) -> DuePlan:
    """The occurrences from `from_date` (the first not handled yet) whose opening date
    is today or earlier, split by the catch-up policy; and the next one after them."""
    horizon = today + timedelta(days=lead_days)  # the last occurrence that opens by today
    due: list[date] = []
    upcoming = iter_occurrences(rule, on_or_after=from_date)
    following: date | None = None
    for occurrence in upcoming:
        if occurrence > horizon:
            following = occurrence
            break
        due.append(occurrence)
    past = [d for d in due if d < today]
    if catch_up is CatchUp.ALL:
        kept = set(due)
    elif catch_up is CatchUp.LATEST:
        kept = set(due[len(past) - 1:]) if past else set(due)
    else:
        kept = set(due[len(past):])
    to_open = tuple(
        Opening(d, opening_date(d, lead_days), opening_date(d, lead_days) < today)
        for d in due if d in kept
    )
    skipped = tuple(d for d in due if d not in kept)
    return DuePlan(to_open, skipped, following)


def next_opening_on(next_occurrence: date | None, lead_days: int) -> date | None:
    """The stored, indexed date on which a schedule next needs a tick's attention."""
    return None if next_occurrence is None else opening_date(next_occurrence, lead_days)
