"""Service-schedule dates (tickets.recurrence): tables across month ends, leap years,
DST changes and `every N`, and hypothesis properties."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexusmail.tickets.recurrence import (
    CatchUp,
    DayRule,
    Interval,
    Recurrence,
    local_date,
    occurrences,
    opening_date,
    plan_due,
    utc_midnight,
)

D = date.fromisoformat
W, M, Q, Y = Interval.WEEKLY, Interval.MONTHLY, Interval.QUARTERLY, Interval.YEARLY


def dates(*texts: str) -> list[date]:
    return [D(t) for t in texts]


@pytest.mark.parametrize(("rule", "expected"), [
    # the seed example: monthly on the 10th
    (Recurrence(M, D("2026-03-10")),
     dates("2026-03-10", "2026-04-10", "2026-05-10", "2026-06-10", "2026-07-10")),
    # the 31st: last day of short months, back to the 31st (leap 2024, common 2025)
    (Recurrence(M, D("2024-01-31")),
     dates("2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31")),
    (Recurrence(M, D("2025-01-31")),
     dates("2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31")),
    (Recurrence(M, D("2025-01-30")),
     dates("2025-01-30", "2025-02-28", "2025-03-30", "2025-04-30", "2025-05-30")),
    (Recurrence(M, D("2025-01-29")),
     dates("2025-01-29", "2025-02-28", "2025-03-29", "2025-04-29", "2025-05-29")),
    (Recurrence(M, D("2025-12-31"), every=2),
     dates("2025-12-31", "2026-02-28", "2026-04-30", "2026-06-30", "2026-08-31")),
    (Recurrence(Q, D("2025-11-30")),
     dates("2025-11-30", "2026-02-28", "2026-05-30", "2026-08-30", "2026-11-30")),
    (Recurrence(Q, D("2023-08-31"), every=2),
     dates("2023-08-31", "2024-02-29", "2024-08-31", "2025-02-28", "2025-08-31")),
    # 29 February: 28 February in common years, the 29th again in leap years
    (Recurrence(Y, D("2024-02-29")),
     dates("2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29")),
    (Recurrence(Y, D("2024-02-29"), every=4),
     dates("2024-02-29", "2028-02-29", "2032-02-29", "2036-02-29", "2040-02-29")),
    (Recurrence(Y, D("2025-12-31"), every=2),
     dates("2025-12-31", "2027-12-31", "2029-12-31", "2031-12-31", "2033-12-31")),
    # weekly, every N, across the Europe/Rome DST changes (29 March, 25 October 2026)
    (Recurrence(W, D("2026-03-22")),
     dates("2026-03-22", "2026-03-29", "2026-04-05", "2026-04-12", "2026-04-19")),
    (Recurrence(W, D("2026-10-18"), every=2),
     dates("2026-10-18", "2026-11-01", "2026-11-15", "2026-11-29", "2026-12-13")),
    (Recurrence(W, D("2025-12-29"), every=3),
     dates("2025-12-29", "2026-01-19", "2026-02-09", "2026-03-02", "2026-03-23")),
    # options: last day of the month, Nth weekday (a 5th one counts as the last)
    (Recurrence(M, D("2026-01-15"), day_rule=DayRule.LAST_DAY),
     dates("2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31")),
    (Recurrence(Q, D("2024-02-29"), day_rule=DayRule.LAST_DAY),
     dates("2024-02-29", "2024-05-31", "2024-08-31", "2024-11-30", "2025-02-28")),
    (Recurrence(M, D("2026-03-09"), day_rule=DayRule.NTH_WEEKDAY),  # 2nd Monday
     dates("2026-03-09", "2026-04-13", "2026-05-11", "2026-06-08", "2026-07-13")),
    (Recurrence(M, D("2026-01-30"), day_rule=DayRule.NTH_WEEKDAY),  # 5th Friday → last
     dates("2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24", "2026-05-29")),
    (Recurrence(Y, D("2026-11-26"), day_rule=DayRule.NTH_WEEKDAY),  # 4th Thursday
     dates("2026-11-26", "2027-11-25", "2028-11-23", "2029-11-22", "2030-11-28")),
])
def test_occurrence_table(rule: Recurrence, expected: list[date]) -> None:
    """Each interval keeps its anchor across month ends, leap years and every N."""
    assert occurrences(rule, limit=5) == expected


def test_until_and_count_end_the_rule() -> None:
    """`until` is inclusive; `count` counts from the first date."""
    assert occurrences(Recurrence(M, D("2026-01-31"), until=D("2026-04-30")), limit=9) == \
        dates("2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30")
    assert occurrences(Recurrence(W, D("2026-01-01"), count=3), limit=9) == \
        dates("2026-01-01", "2026-01-08", "2026-01-15")
    assert occurrences(Recurrence(W, D("2026-01-01"), count=3), on_or_after=D("2026-01-09"),
                       limit=9) == dates("2026-01-15")


def test_occurrences_from_a_later_date_keep_the_anchor() -> None:
    """Starting the listing mid-rule does not restart the rule from that date."""
    rule = Recurrence(M, D("2025-01-31"))
    assert occurrences(rule, on_or_after=D("2026-02-01"), limit=3) == \
        dates("2026-02-28", "2026-03-31", "2026-04-30")


@pytest.mark.parametrize(("fields", "message"), [
    ({"every": 0}, "every:"),
    ({"until": D("2026-01-01"), "count": 2}, "until:"),
    ({"count": 0}, "count:"),
    ({"until": D("2025-01-01")}, "until:"),
    ({"interval": W, "day_rule": DayRule.LAST_DAY}, "day_rule:"),
])
def test_invalid_rules_name_the_field(fields: dict[str, object], message: str) -> None:
    """A rule that cannot be used says which field is at fault."""
    base: dict[str, object] = {"interval": M, "first_date": D("2026-01-10")}
    with pytest.raises(ValueError, match=message):
        Recurrence(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("instant", "expected"), [
    # Europe/Rome: the day starts at 23:00 UTC in winter, 22:00 UTC in summer
    (datetime(2026, 3, 28, 22, 59, tzinfo=UTC), D("2026-03-28")),
    (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), D("2026-03-29")),   # DST starts this day
    (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), D("2026-03-29")),
    (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), D("2026-03-30")),
    (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), D("2026-10-25")),  # DST ends this day
    (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), D("2026-10-25")),
    (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), D("2026-10-26")),
])
def test_company_date_across_dst(instant: datetime, expected: date) -> None:
    """The clock's UTC instant becomes the Rome calendar date, DST or not."""
    assert local_date(instant, "Europe/Rome") == expected
    assert local_date(utc_midnight(expected, "Europe/Rome"), "Europe/Rome") == expected


def test_plan_opens_lead_days_ahead() -> None:
    """Monthly on the 10th with 3 lead days opens on the 7th, not before, on time."""
    rule = Recurrence(M, D("2026-03-10"))
    before = plan_due(rule, 3, from_date=D("2026-03-10"), today=D("2026-03-06"))
    assert before.to_open == ()
    assert before.next_occurrence == D("2026-03-10")
    plan = plan_due(rule, 3, from_date=D("2026-03-10"), today=D("2026-03-07"))
    assert [(o.occurrence, o.opens_on, o.late) for o in plan.to_open] == [
        (D("2026-03-10"), D("2026-03-07"), False)]
    assert plan.next_occurrence == D("2026-04-10")
    assert plan.skipped == ()


@pytest.mark.parametrize(("policy", "opened", "skipped"), [
    (CatchUp.LATEST, ["2026-05-04", "2026-05-11"], ["2026-04-20", "2026-04-27"]),
    (CatchUp.UPCOMING, ["2026-05-11"], ["2026-04-20", "2026-04-27", "2026-05-04"]),
    (CatchUp.ALL, ["2026-04-20", "2026-04-27", "2026-05-04", "2026-05-11"], []),
])
def test_catch_up_policies(policy: CatchUp, opened: list[str], skipped: list[str]) -> None:
    """Past-date occurrences open by catch-up policy (late); the rest come back as skipped."""
    rule = Recurrence(W, D("2026-04-20"))
    plan = plan_due(rule, 2, from_date=D("2026-04-20"), today=D("2026-05-10"), catch_up=policy)
    assert [o.occurrence.isoformat() for o in plan.to_open] == opened
    assert all(o.late for o in plan.to_open)
    assert [d.isoformat() for d in plan.skipped] == skipped
    assert plan.next_occurrence == D("2026-05-18")


rules = st.builds(
    Recurrence,
    interval=st.sampled_from(list(Interval)),
    first_date=st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31)),
    every=st.integers(1, 6),
)


@given(rules)
def test_dates_strictly_increase_and_keep_the_anchor(rule: Recurrence) -> None:
    """Dates strictly increase, whole periods apart, on the anchor day or the month's last."""
    found = occurrences(rule, limit=30)
    assert found[0] == rule.first_date
    assert all(a < b for a, b in itertools.pairwise(found))
    anchor = rule.first_date
    for n, day in enumerate(found):
        if rule.interval is Interval.WEEKLY:
            assert day - anchor == timedelta(weeks=n * rule.every)
            continue
        step = {Interval.MONTHLY: 1, Interval.QUARTERLY: 3, Interval.YEARLY: 12}[rule.interval]
        months = (day.year - anchor.year) * 12 + day.month - anchor.month
        assert months == n * step * rule.every
        last = calendar.monthrange(day.year, day.month)[1]
        assert day.day == min(anchor.day, last)


@given(rules, st.integers(0, 400), st.dates(min_value=date(2000, 1, 1),
                                             max_value=date(2090, 1, 1)))
def test_opening_is_date_minus_lead_days(rule: Recurrence, lead: int, today: date) -> None:
    """Each opening is its date minus the lead days, by today; the next one opens later."""
    plan = plan_due(rule, lead, from_date=rule.first_date, today=today,
                    catch_up=CatchUp.ALL)
    for opening in plan.to_open:
        assert opening.opens_on == opening_date(opening.occurrence, lead)
        assert opening.opens_on == opening.occurrence - timedelta(days=lead)
        assert opening.opens_on <= today
        assert opening.late == (opening.opens_on < today)
    if plan.next_occurrence is not None:
        assert opening_date(plan.next_occurrence, lead) > today
