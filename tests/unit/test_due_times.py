"""The deadline shown on a case: the most urgent one still counting, in hours or, under
an hour, in minutes; none for a case that is not open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nexusmail.admin.pages.due_times import DueShown, next_deadline

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TEN = "2026-03-02T10:00:00+00:00"
FIFTEEN_20 = "2026-03-02T15:20:00+00:00"
TWELVE_40 = "2026-03-02T12:40:00+00:00"


@pytest.mark.parametrize(
    ("status", "response", "resolution", "assignments", "expected"),
    [
        ("open", TEN, FIFTEEN_20, [], DueShown("response", True, 2, False)),
        # Confirmed: the response deadline no longer counts.
        ("open", TEN, FIFTEEN_20, ["confirmed"], DueShown("resolution", False, 3, False)),
        ("open", TEN, None, ["pending", "done"], None),
        ("open", None, TWELVE_40, [], DueShown("resolution", False, 40, True)),
        ("open", "2026-03-02T11:59:30+00:00", None, [], DueShown("response", True, 0, True)),
        ("resolved", TEN, FIFTEEN_20, [], None),
        ("closed", TEN, FIFTEEN_20, [], None),
        ("open", None, None, [], None),
    ],
)
def test_next_deadline(status: str, response: str | None, resolution: str | None,
                       assignments: list[str], expected: DueShown | None) -> None:
    """See the module docstring: which deadline, overdue or ahead, and by how much."""
    assert next_deadline(status=status, response_due=response, resolution_due=resolution,
                         assignment_statuses=assignments, now=NOW) == expected
