"""Teams: employees assigned together, and the race for who takes the job.

Assigning a team gives every active member an assignment of their own (mailed as any
assignment), all tied to one team dispatch. The first member whose confirmation acts
takes the job: team_dispatches.taken_by is set by an UPDATE guarded on it being empty,
so of two confirmations exactly one changes a row, even with several daemons writing to
one PostgreSQL database. The colleagues' open assignments become `taken`, each gets a
short notice, and their later replies are kept on the thread without acting. When every
member has rejected, the operators are told once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypedDict

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import INTEGRITY_ERRORS, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.models import AssignmentStatus, OutboxKind
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail

log = structlog.get_logger(__name__)

MAX_TEAM_MEMBERS = 50
# The case details every assignment mail carries (tickets.assignments builds them; passed
# in, since that module calls this one).
CaseContext = Callable[[WriteTx, int], dict[str, Any]]
MAX_TEAM_NAME_CHARS = 100


class TeamView(TypedDict):
    id: int
    name: str
    members: list[str]
    created_at: str


def create_team(tx: WriteTx, name: str, members: Sequence[str], *, now: datetime) -> int:
    """A new team of existing employees (by address); its id."""
    addresses = sorted({m.strip().lower() for m in members})
    rows = {r["email"]: r["id"] for r in (
        tx.execute("SELECT id, email FROM employees WHERE email = ?", (a,)).fetchone()
        for a in addresses) if r is not None}
    unknown = [a for a in addresses if a not in rows]
    if unknown:
        raise NotFound(msg("no employee with address {email}", email=", ".join(unknown)))
    try:
        team_id: int = tx.execute("INSERT INTO teams (name, created_at) VALUES (?, ?)"
                                  " RETURNING id", (name, iso(now))).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("a team named {name!r} exists already", name=name)) from None
    tx.executemany("INSERT INTO team_members (team_id, employee_id) VALUES (?, ?)",
                   [(team_id, rows[a]) for a in addresses])
    log.info("team.created", team=name, members=len(addresses))
    return team_id


_TEAMS_SQL = (
    "SELECT t.id, t.name, t.created_at, e.email FROM teams t"
    " LEFT JOIN team_members m ON m.team_id = t.id"
    " LEFT JOIN employees e ON e.id = m.employee_id"
)


async def list_teams(conn: ReadTx, name: str | None = None) -> list[TeamView]:
    """Every team (or the one named), members' addresses sorted."""
    rows = await conn.execute_fetchall(
        _TEAMS_SQL + " ORDER BY t.name, e.email" if name is None
        else _TEAMS_SQL + " WHERE t.name = ? ORDER BY e.email",
        () if name is None else (name,))
    teams: dict[int, TeamView] = {}
    for row in rows:
        team = teams.setdefault(row["id"], {"id": row["id"], "name": row["name"],
                                            "members": [], "created_at": row["created_at"]})
        if row["email"] is not None:
            team["members"].append(row["email"])
    return list(teams.values())


def open_dispatch(tx: WriteTx, number: int, team_name: str, *, now: datetime
                  ) -> tuple[int, list[str]]:
    """A team dispatch for the team named, and its active members' addresses (the caller
    assigns each with this dispatch's id)."""
    team = tx.execute("SELECT id FROM teams WHERE name = ?", (team_name,)).fetchone()
    if team is None:
        raise NotFound(msg("no team named {name!r}", name=team_name))
    members = [r["email"] for r in tx.execute(
        "SELECT e.email FROM team_members m JOIN employees e ON e.id = m.employee_id"
        " WHERE m.team_id = ? AND e.active = 1 ORDER BY e.email", (team["id"],)).fetchall()]
    if not members:
        raise Conflict(msg("team {name!r} has no active member", name=team_name))
    dispatch_id: int = tx.execute(
        "INSERT INTO team_dispatches (team_id, intervention_number, created_at)"
        " VALUES (?, ?, ?) RETURNING id", (team["id"], number, iso(now))).fetchone()[0]
    return dispatch_id, members


def taken_by_colleague(tx: WriteTx, assignment_id: int) -> str:
    """The colleague's name when a team colleague has taken this assignment's job."""
    row = tx.execute(
        "SELECT e.name, e.email FROM assignments a"
        " JOIN team_dispatches d ON d.id = a.team_dispatch_id"
        " JOIN employees e ON e.id = d.taken_by"
        " WHERE a.id = ? AND d.taken_by <> a.employee_id", (assignment_id,)).fetchone()
    return str(row["name"] or row["email"]) if row else ""


def claim_job(tx: WriteTx, assignment_id: int, *, now: datetime, settings: Settings,
              case_context: CaseContext) -> str:
    """For a confirmation on `assignment_id`: "" when it may act (not a team assignment,
    or it took the job just now); else the name of the colleague who has the job."""
    row = tx.execute("SELECT team_dispatch_id, employee_id FROM assignments WHERE id = ?",
                     (assignment_id,)).fetchone()
    if row is None or row["team_dispatch_id"] is None:
        return ""
    dispatch_id = row["team_dispatch_id"]
    # The guard is the point: a second confirmation finds taken_by set and changes nothing,
    # whether it waited on our row lock (PostgreSQL) or on the single writer (SQLite).
    won = tx.execute("UPDATE team_dispatches SET taken_by = ?, taken_at = ?"
                     " WHERE id = ? AND taken_by IS NULL",
                     (row["employee_id"], iso(now), dispatch_id)).rowcount == 1
    if not won:
        return taken_by_colleague(tx, assignment_id) or "a colleague"
    _release_colleagues(tx, dispatch_id, assignment_id, now=now, settings=settings,
                        case_context=case_context)
    return ""


def _release_colleagues(tx: WriteTx, dispatch_id: int, winner_id: int, *, now: datetime,
                        settings: Settings, case_context: CaseContext) -> None:
    """The colleagues still open become `taken` and are told, each in their language,
    under their own assignment mail."""
    head = tx.execute(
        "SELECT d.intervention_number, t.name AS team, e.name AS taken_by FROM team_dispatches d"
        " JOIN teams t ON t.id = d.team_id JOIN employees e ON e.id = d.taken_by"
        " WHERE d.id = ?", (dispatch_id,)).fetchone()
    colleagues = tx.execute(
        "SELECT a.id, a.mail_message_id, e.email, e.name, e.language FROM assignments a"
        " JOIN employees e ON e.id = a.employee_id"
        " WHERE a.team_dispatch_id = ? AND a.id <> ? AND a.status IN (?, ?)",
        (dispatch_id, winner_id, AssignmentStatus.PENDING, AssignmentStatus.UNCLEAR),
    ).fetchall()
    number = head["intervention_number"]
    context = case_context(tx, number)
    for colleague in colleagues:
        # Guarded: a colleague's rejection written meanwhile by another daemon stands,
        # and they are not told of a job they already declined.
        released = tx.execute(
            "UPDATE assignments SET status = ?, decided_at = ? WHERE id = ?"
            " AND status IN (?, ?)", (AssignmentStatus.TAKEN, iso(now), colleague["id"],
                                     AssignmentStatus.PENDING, AssignmentStatus.UNCLEAR)
        ).rowcount == 1
        if not released:
            continue
        thread = [colleague["mail_message_id"]] if colleague["mail_message_id"] else []
        notice: dict[str, Any] = {
            **context, "team": head["team"], "taken_by": head["taken_by"],
            "employee_name": colleague["name"], "company_name": settings.mail.company_name,
            "in_reply_to": thread, "references": thread}
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.TAKEN_NOTICE, recipient=colleague["email"],
            template="assignment_taken", language=colleague["language"], context=notice,
            intervention_number=number,
        ), now=now, domain=own_domain(settings))
    log.info("team.job_taken", intervention=number, team=head["team"],
             taken_by=head["taken_by"], released=len(colleagues))


def in_team(tx: WriteTx, assignment_id: int) -> bool:
    row = tx.execute("SELECT team_dispatch_id FROM assignments WHERE id = ?",
                     (assignment_id,)).fetchone()
    return row is not None and row["team_dispatch_id"] is not None


def after_rejection(tx: WriteTx, assignment_id: int, *, now: datetime, settings: Settings,
                    case_context: CaseContext) -> bool:
    """When every member of this assignment's team has rejected, tell the operators
    (once); True when they were told now."""
    row = tx.execute("SELECT team_dispatch_id FROM assignments WHERE id = ?",
                     (assignment_id,)).fetchone()
    if row is None or row["team_dispatch_id"] is None:
        return False
    dispatch_id = row["team_dispatch_id"]
    # Two members rejecting at once on two daemons would each see the other's assignment
    # still open, and nobody would tell the operators: the second reads after the first.
    xact_lock.hold(tx, "team_dispatch", dispatch_id)
    members = tx.execute(
        "SELECT a.status, a.reason, e.email, e.name FROM assignments a"
        " JOIN employees e ON e.id = a.employee_id WHERE a.team_dispatch_id = ?"
        " ORDER BY a.id", (dispatch_id,)).fetchall()
    if any(m["status"] != AssignmentStatus.REJECTED for m in members):
        return False
    told = tx.execute("UPDATE team_dispatches SET all_rejected_at = ? WHERE id = ?"
                      " AND all_rejected_at IS NULL AND taken_by IS NULL",
                      (iso(now), dispatch_id)).rowcount == 1
    if not told:
        return False
    head = tx.execute("SELECT d.intervention_number, t.name FROM team_dispatches d"
                      " JOIN teams t ON t.id = d.team_id WHERE d.id = ?",
                      (dispatch_id,)).fetchone()
    number = head["intervention_number"]
    context = case_context(tx, number)
    context.update(team=head["name"], company_name=settings.mail.company_name,
                   members=[{"name": m["name"], "email": m["email"], "reason": m["reason"]}
                            for m in members])
    for operator in settings.mail.operator_addresses:
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.REJECTION_NOTICE, recipient=operator, template="team_rejected",
            language=settings.mail.default_language, context=context,
            intervention_number=number,
        ), now=now, domain=own_domain(settings))
    log.warning("team.all_rejected", intervention=number, team=head["name"])
    return True


def set_team_members(tx: WriteTx, name: str, members: Sequence[str]) -> int:
    """The team named now has exactly these employees (by address); its id. Jobs it was
    given already stay with the members who were mailed them."""
    team = tx.execute("SELECT id FROM teams WHERE name = ?", (name,)).fetchone()
    if team is None:
        raise NotFound(msg("no team named {name!r}", name=name))
    addresses = sorted({m.strip().lower() for m in members})
    rows = {r["email"]: r["id"] for r in (
        tx.execute("SELECT id, email FROM employees WHERE email = ?", (a,)).fetchone()
        for a in addresses) if r is not None}
    unknown = [a for a in addresses if a not in rows]
    if unknown:
        raise NotFound(msg("no employee with address {email}", email=", ".join(unknown)))
    team_id: int = team["id"]
    tx.execute("DELETE FROM team_members WHERE team_id = ?", (team_id,))
    tx.executemany("INSERT INTO team_members (team_id, employee_id) VALUES (?, ?)",
                   [(team_id, rows[a]) for a in addresses])
    log.info("team.members_set", team=name, members=len(addresses))
    return team_id
