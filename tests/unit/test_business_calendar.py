"""Business hours on the company calendar: weekends, Italian and Romanian public
holidays (Easter Monday, Orthodox Easter), closures, DST in both directions in Rome
and Bucharest, year ends; and the [calendar] keys with errors that name them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nexusmail.config import CalendarSettings, ConfigError, load_settings
from nexusmail.tickets.business_calendar import (
    BusinessCalendar,
    add_business_hours,
    add_business_time,
    public_holidays,
)

ROME, BUCHAREST = ZoneInfo("Europe/Rome"), ZoneInfo("Europe/Bucharest")
ALL_WEEK = frozenset(range(7))
WHOLE_DAY = ((0, 24 * 60),)

IT = BusinessCalendar(ROME, country="IT")
RO = BusinessCalendar(BUCHAREST, country="RO",
                      closures=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
SPLIT = BusinessCalendar(ROME, working_hours=((8 * 60 + 30, 12 * 60 + 30), (14 * 60, 18 * 60)),
                         country="IT")
ROME_24_7 = BusinessCalendar(ROME, working_days=ALL_WEEK, working_hours=WHOLE_DAY)
BUCHAREST_24_7 = BusinessCalendar(BUCHAREST, working_days=ALL_WEEK, working_hours=WHOLE_DAY)
BUCHAREST_NIGHTS = BusinessCalendar(BUCHAREST, working_days=ALL_WEEK,
                                    working_hours=((0, 6 * 60),))


def at(zone: ZoneInfo, text: str) -> datetime:
    """A local wall-clock time, e.g. at(ROME, "2026-03-03 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "expected"),
    [
        # Within a day, across the evening, ending exactly at closing time.
        (IT, "2026-03-03 09:00", 2, "2026-03-03 11:00"),
        (IT, "2026-03-03 16:30", 2, "2026-03-04 09:30"),
        (IT, "2026-03-03 16:30", 1, "2026-03-03 17:30"),
        (IT, "2026-03-03 09:00", 0.25, "2026-03-03 09:15"),
        (IT, "2026-03-03 08:30", 9, "2026-03-03 17:30"),
        (IT, "2026-03-03 08:30", 9.5, "2026-03-04 09:00"),
        # Before opening, at night, on a Saturday: counting starts at the next opening.
        (IT, "2026-03-03 07:00", 1, "2026-03-03 09:30"),
        (IT, "2026-03-03 23:00", 1, "2026-03-04 09:30"),
        (IT, "2026-03-07 10:00", 1, "2026-03-09 09:30"),
        # Over a weekend.
        (IT, "2026-03-06 16:30", 2, "2026-03-09 09:30"),
        # Italian holidays: Easter Monday 2026-04-06, Republic Day 2026-06-02.
        (IT, "2026-04-03 17:00", 1, "2026-04-07 09:00"),
        (IT, "2026-06-01 17:00", 1, "2026-06-03 09:00"),
        # Romanian: Orthodox Good Friday 2026-04-10 and Easter Monday 2026-04-13;
        # St Andrew 2026-11-30 and National Day 2026-12-01.
        (RO, "2026-04-09 17:00", 1, "2026-04-14 09:00"),
        (RO, "2026-11-27 17:00", 1, "2026-12-02 09:00"),
        # Year ends. Italy: 1 January on a Friday, then the weekend.
        (IT, "2026-12-31 17:00", 1, "2027-01-04 09:00"),
        # Romania: a closure on 24 December, Christmas on Friday and Saturday.
        (RO, "2026-12-23 17:00", 1, "2026-12-28 09:00"),
        # Closure on 31 December, 1-2 January, then Epiphany and St John (6-7 January).
        (RO, "2026-12-30 17:00", 10, "2027-01-05 09:00"),
        (RO, "2026-12-30 17:00", 19, "2027-01-08 09:00"),
        # Split hours: the lunch break does not count.
        (SPLIT, "2026-03-03 12:00", 1, "2026-03-03 14:30"),
        (SPLIT, "2026-03-03 17:30", 1, "2026-03-04 09:00"),
    ],
)
def test_business_hours_table(calendar: BusinessCalendar, start: str, hours: float,
                              expected: str) -> None:
    """N working hours from a local time land on the expected local time."""
    zone = calendar.timezone
    assert add_business_hours(at(zone, start), hours, calendar) == at(zone, expected)


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "expected"),
    [
        # Rome, clocks forward on Sunday 2026-03-29 02:00 -> 03:00: Friday's last hour and
        # Monday's first are 1 business hour, the Monday in summer time.
        (IT, "2026-03-27T17:00+01:00", 1, "2026-03-30T09:00+02:00"),
        # Rome, clocks back on Sunday 2026-10-25 03:00 -> 02:00.
        (IT, "2026-10-23T17:00+02:00", 1, "2026-10-26T09:00+01:00"),
        # Around the clock: 24 business hours are 24 real hours, not "same time tomorrow".
        (ROME_24_7, "2026-03-28T12:00+01:00", 24, "2026-03-29T13:00+02:00"),
        (ROME_24_7, "2026-10-24T12:00+02:00", 24, "2026-10-25T11:00+01:00"),
        (BUCHAREST_24_7, "2026-03-28T12:00+02:00", 24, "2026-03-29T13:00+03:00"),
        (BUCHAREST_24_7, "2026-10-24T12:00+03:00", 24, "2026-10-25T11:00+02:00"),
        # The day clocks change is 23 or 25 hours long.
        (ROME_24_7, "2026-03-29T00:00+01:00", 23, "2026-03-30T00:00+02:00"),
        (ROME_24_7, "2026-10-25T00:00+02:00", 25, "2026-10-26T00:00+01:00"),
        # Working hours 00:00-06:00 in Bucharest hold the hour that is skipped (03:00 ->
        # 04:00 on 2026-03-29: 5 hours that night) or repeated (04:00 -> 03:00 on
        # 2026-10-25: 7 hours).
        (BUCHAREST_NIGHTS, "2026-03-29T00:00+02:00", 5, "2026-03-29T06:00+03:00"),
        (BUCHAREST_NIGHTS, "2026-03-29T00:00+02:00", 6, "2026-03-30T01:00+03:00"),
        (BUCHAREST_NIGHTS, "2026-10-25T00:00+03:00", 7, "2026-10-25T06:00+02:00"),
    ],
)
def test_business_hours_across_dst(calendar: BusinessCalendar, start: str, hours: float,
                                   expected: str) -> None:
    """Working hours are local wall-clock times; business time is real elapsed time."""
    start_instant = datetime.fromisoformat(start).astimezone(calendar.timezone)
    result = add_business_hours(start_instant, hours, calendar)
    assert result == datetime.fromisoformat(expected)
    assert result.utcoffset() == datetime.fromisoformat(expected).utcoffset()


def test_result_keeps_the_start_time_zone_and_zero_is_the_start() -> None:
    """A UTC start gives a UTC result; adding nothing returns the start, even at night."""
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Rome
    assert add_business_hours(start, 1, IT) == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    night = at(ROME, "2026-03-03 23:00")
    assert add_business_hours(night, 0, IT) == night


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_impossible_durations_are_refused(hours: float) -> None:
    """Negative, NaN or infinite hours are an error, not a strange deadline."""
    with pytest.raises(ValueError, match=r"hours|negative"):
        add_business_hours(at(ROME, "2026-03-03 09:00"), hours, IT)


def test_a_naive_start_is_refused() -> None:
    """Without a time zone the instant is ambiguous."""
    with pytest.raises(ValueError, match="aware"):
        add_business_hours(datetime(2026, 3, 3, 9, 0), 1, IT)


def test_holiday_tables_include_both_easters() -> None:
    """Italy has (western) Easter Monday; Romania Orthodox Good Friday, Easter and
    Easter Monday, as in the holidays library."""
    assert date(2026, 4, 6) in public_holidays("IT", 2026)
    assert {date(2026, 4, 10), date(2026, 4, 12), date(2026, 4, 13)} <= public_holidays(
        "RO", 2026)
    assert date(2026, 4, 6) not in public_holidays("RO", 2026)
    assert public_holidays("", 2026) == frozenset()


CALENDARS = [IT, RO, SPLIT, ROME_24_7, BUCHAREST_NIGHTS]
_days = st.dates(date(2025, 1, 1), date(2028, 12, 31))
_minutes = st.integers(0, 24 * 60 - 1)


def _local(calendar: BusinessCalendar, day: date, minute: int) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=calendar.timezone)


@given(st.sampled_from(CALENDARS), _days, _minutes, st.integers(0, 200 * 60),
       st.integers(0, 200 * 60))
def test_adding_is_additive_from_working_instants(calendar: BusinessCalendar, day: date,
                                                  minute: int, a: int, b: int) -> None:
    """From an instant inside working hours, adding a then b is adding a + b."""
    start = _local(calendar, day, minute)
    assume(calendar.is_working_instant(start))
    first, second = timedelta(minutes=a), timedelta(minutes=b)
    assert add_business_time(add_business_time(start, first, calendar), second,
                             calendar) == add_business_time(start, first + second, calendar)


@given(st.sampled_from(CALENDARS), _days, _minutes, st.integers(0, 200 * 60),
       st.integers(0, 200 * 60))
def test_adding_is_monotonic_and_lands_in_working_time(calendar: BusinessCalendar, day: date,
                                                       minute: int, a: int, b: int) -> None:
    """More business time never gives an earlier instant nor less real time, and a
    positive amount lands inside a working period or at its end."""
    start = _local(calendar, day, minute)
    low, high = sorted((timedelta(minutes=a), timedelta(minutes=b)))
    early, late = (add_business_time(start, d, calendar) for d in (low, high))
    # Compared in UTC: Python compares and subtracts two datetimes of one zone by their
    # wall clocks, which across the autumn DST change is an hour off (fold=1).
    start_utc, early_utc, late_utc = (t.astimezone(UTC) for t in (start, early, late))
    assert start_utc <= early_utc <= late_utc
    assert late_utc - start_utc >= high
    if high:
        tick = timedelta(microseconds=1)
        assert calendar.is_working_instant(late - tick)


def test_calendar_from_settings() -> None:
    """[calendar] as written in the config file becomes the calendar."""
    settings = CalendarSettings.model_validate({
        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat"],
        "working_hours": ["14:00-18:00", "08:00-12:00"], "country": "RO",
        "closures": ["2026-08-14"], "timezone": "Europe/Bucharest"})
    calendar = BusinessCalendar.from_settings(settings)
    assert calendar.working_days == frozenset(range(6))
    assert calendar.working_hours == ((480, 720), (840, 1080))
    assert calendar.closures == frozenset({date(2026, 8, 14)})
    assert calendar.timezone == BUCHAREST
    assert CalendarSettings.model_validate(
        {"working_hours": "00:00-24:00"}).working_hours == ((0, 1440),)
    assert CalendarSettings.model_validate(settings.model_dump()) == settings


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('working_hours = "8-17"', "[calendar] working_hours"),
        ('working_hours = "17:30-08:30"', "[calendar] working_hours"),
        ('working_hours = ["08:00-13:00", "12:00-18:00"]', "overlap"),
        ('working_hours = "08:00-24:30"', "[calendar] working_hours"),
        ("working_days = []", "[calendar] working_days"),
        ('working_days = ["lun"]', "[calendar] working_days"),
        ('country = "FR"', "[calendar] country"),
        ('closures = ["2026-02-30"]', "[calendar] closures"),
        ('timezone = "Europe/Nowhere"', "[calendar] timezone"),
    ],
)
def test_bad_calendar_keys_are_named(tmp_path: Path, toml: str, expected: str) -> None:
    """A wrong [calendar] value stops the start with the key in the message."""
    path = tmp_path / "n.toml"
    path.write_text(f"[calendar]\n{toml}\n")
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
        load_settings(path, environ={})
