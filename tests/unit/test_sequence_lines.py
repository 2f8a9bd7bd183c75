"""`nexusmail show` prints a case's action sequence: each step with its assignee, state,
due day and, for a blocked one, why; nothing for a case without one."""

from __future__ import annotations

from nexusmail.cli.intervention_view import sequence_lines
from nexusmail.tickets.sequence_queries import RunStepView, SequenceRunView


def step(number: int, **changes: object) -> RunStepView:
    base: RunStepView = {
        "number": number, "action": "call", "status": "planned", "due": None,
        "employee_email": "luca@firm.test", "team": None, "expected_hours": None,
        "notes": "", "postpone_days": 0, "needs_report": False, "problem": ""}
    return {**base, **changes}  # type: ignore[typeddict-item]


def test_a_run_is_shown_step_by_step() -> None:
    """Team or employee, state, due day when known, the reason of a blocked step."""
    run: SequenceRunView = {
        "code": "MAN-1", "description": "", "state": "running", "current_step": 2,
        "started_by": "api:desk", "started_at": "2026-03-02T09:00:00+00:00",
        "finished_at": None, "steps": [
            step(1, team="Caldaie", employee_email=None, status="done", due="2026-03-02"),
            step(2, action="visit", status="blocked", due="2026-03-04",
                 problem="its employee is not active"),
            step(3, action="quote")]}
    assert sequence_lines(run) == [
        "", "sequence MAN-1:  running",
        "  1. call  team Caldaie  done  due 2026-03-02",
        "  2. visit  luca@firm.test  blocked  due 2026-03-04  (its employee is not active)",
        "  3. quote  luca@firm.test  planned"]


def test_no_run_prints_nothing() -> None:
    """A case without a sequence keeps its old output."""
    assert sequence_lines(None) == []
