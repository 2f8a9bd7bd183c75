"""`nexusmail schedule add|list|show|pause|resume|preview`: service schedules offline.

The same operations as /api/v1/schedules, through the store (SQLite lets them run
beside a daemon, whose scheduler opens what becomes due at its next tick). Dates are
YYYY-MM-DD calendar dates in `[scheduler] timezone`.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from nexusmail.admin.api.schedule_models import MAX_LEAD_DAYS, ScheduleIn
from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    AddGroup,
    fail,
    print_table,
    refuse,
    validation_problem,
    with_store,
)
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.i18n import N_, msg
from nexusmail.storage.connections import Storage
from nexusmail.tickets import schedule_queries
from nexusmail.tickets.cases import NotFound
from nexusmail.tickets.recurrence import DayRule, Interval, local_date
from nexusmail.tickets.schedules import (
    DEFAULT_REQUEST_TYPE,
    InvalidSchedule,
    create_schedule,
    update_schedule,
)

_ADD_EXAMPLES = (
    "  # monthly on the 10th, opened 3 days ahead (on the 7th), assigned to Marco\n"
    "  nexusmail schedule add condominio@example.it --subject 'Manutenzione caldaia' \\\n"
    "      --interval monthly --first-date 2026-04-10 --lead-days 3 \\\n"
    "      --assignee marco.bianchi@firm.it --contract-ref C-2026-17\n"
    "  # every 2 weeks, 8 times\n"
    "  nexusmail schedule add ops@client.ro --subject 'Verificare UPS' --interval weekly \\\n"
    "      --every 2 --first-date 2026-04-06 --count 8 --lead-days 1\n"
    "  # the last day of each quarter, until the contract ends\n"
    "  nexusmail schedule add it@client.com --subject 'Backup audit' --interval quarterly \\\n"
    "      --first-date 2026-03-31 --day-rule last_day --until 2027-12-31 --lead-days 5"
)


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add the `schedule` command group to the CLI's parser."""
    schedule = group(commands, "schedule", config_opt,
                     "Manage service schedules (recurring maintenance dates that open "
                     "interventions ahead of time).",
                     "  nexusmail schedule list\n  nexusmail schedule preview 3 --count 6\n"
                     "  nexusmail schedule pause 3")
    add_cmd = add(schedule, "add", cmd_add,
                  "Add a schedule. The 31st falls on the last day of shorter months; "
                  "29 February on the 28th in other years.", _ADD_EXAMPLES)
    add_cmd.add_argument("customer_email", help="the customer's address (a new one is added)")
    add_cmd.add_argument("--subject", required=True, help="subject of each intervention")
    add_cmd.add_argument("--interval", required=True, choices=[i.value for i in Interval])
    add_cmd.add_argument("--first-date", required=True, type=_date, metavar="YYYY-MM-DD",
                         help="the first occurrence; its day is kept every period")
    add_cmd.add_argument("--lead-days", required=True, type=int, metavar="N",
                         help=f"open the intervention N days before each date (0..{MAX_LEAD_DAYS})")
    add_cmd.add_argument("--every", type=int, default=1, metavar="N",
                         help="every N weeks/months/quarters/years (default 1)")
    add_cmd.add_argument("--day-rule", choices=[r.value for r in DayRule],
                         default=DayRule.SAME_DAY.value,
                         help="same_day (default), last_day, or nth_weekday (the first "
                              "date's weekday and rank, e.g. the 2nd Monday)")
    end = add_cmd.add_mutually_exclusive_group()
    end.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="last possible date")
    end.add_argument("--count", type=int, metavar="N", help="number of occurrences")
    add_cmd.add_argument("--assignee", action="append", default=[], metavar="EMAIL",
                         help="employee assigned to each intervention (repeatable)")
    add_cmd.add_argument("--description", default="", help="description of each intervention")
    add_cmd.add_argument("--customer-name", default="", help="name for a new customer")
    add_cmd.add_argument("--request-type", default=DEFAULT_REQUEST_TYPE)
    add_cmd.add_argument("--contract-ref", default="", help="the maintenance contract")
    list_cmd = add(schedule, "list", cmd_list, "List schedules and their next opening.",
                   "  nexusmail schedule list\n  nexusmail schedule list --json | jq '.[].id'")
    list_cmd.add_argument("--json", action="store_true", help="print JSON, as the API does")
    show = add(schedule, "show", cmd_show,
               "Print a schedule with its recently handled occurrences (opened or skipped).",
               "  nexusmail schedule show 3\n  nexusmail schedule show 3 --json")
    show.add_argument("id", type=int, help="the schedule's id, as `schedule list` shows it")
    show.add_argument("--json", action="store_true",
                      help="print the same JSON as GET /api/v1/schedules/ID")
    for name, fn, help_text in (
        ("pause", cmd_pause, "Pause a schedule: nothing opens until it is resumed."),
        ("resume", cmd_resume, "Resume a schedule from today (a pause's dates are not "
                               "caught up; a date still ahead whose opening passed opens "
                               "at the next tick)."),
    ):
        sub = add(schedule, name, fn, help_text, f"  nexusmail schedule {name} 3")
        sub.add_argument("id", type=int, help="the schedule's id")
    preview = add(schedule, "preview", cmd_preview,
                  "Print the next dates, when each opens, and the intervention of those "
                  "already opened.",
                  "  nexusmail schedule preview 3\n  nexusmail schedule preview 3 --count 24")
    preview.add_argument("id", type=int, help="the schedule's id")
    preview.add_argument("--count", type=int, default=12,
                         help=f"how many dates (1..{schedule_queries.MAX_PREVIEW}, default 12)")
    preview.add_argument("--json", action="store_true", help="print JSON, as the API does")


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = ScheduleIn.model_validate({
            "customer_email": args.customer_email, "customer_name": args.customer_name,
            "subject": args.subject, "description": args.description,
            "interval": args.interval, "every": args.every, "day_rule": args.day_rule,
            "first_date": args.first_date, "until": args.until, "count": args.count,
            "lead_days": args.lead_days, "assignees": args.assignee,
            "request_type": args.request_type, "contract_ref": args.contract_ref,
        })
    except ValidationError as exc:
        return fail(validation_problem(exc), EXIT_USAGE)
    spec, (today, now) = body.spec(), _today(settings)

    async def insert(store: Storage) -> schedule_queries.ScheduleDetail | None:
        schedule_id = await store.write(
            lambda tx: create_schedule(tx, spec, today=today, now=now))
        async with store.read() as conn:
            return await schedule_queries.get_schedule(conn, schedule_id)

    try:
        created = with_store(settings, insert, create=True)
    except InvalidSchedule as exc:
        return refuse(exc, EXIT_USAGE)
    assert created is not None
    say(msg("Added schedule {id}: {subject} for {customer}; next {next}.", id=created["id"],
            subject=created["subject"], customer=created["customer"]["email"],
            next=_next(created)))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Storage) -> list[schedule_queries.ScheduleView]:
        async with store.read() as conn:
            return await schedule_queries.list_schedules(conn)

    items = with_store(settings, fetch)
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return EXIT_OK
    rows = [[str(s["id"]), s["customer"]["email"], s["subject"], _rule(s),
             str(s["lead_days"]), speech().word("active" if s["active"] else "paused"),
             _next(s)]
            for s in items]
    print_table([N_("ID"), N_("CUSTOMER"), N_("SUBJECT"), N_("RULE"), N_("LEAD"),
                 N_("STATUS"), N_("NEXT")], rows)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    detail = _load(settings, args.id)
    if detail is None:
        return EXIT_FAILED
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return EXIT_OK
    print("\n".join(_schedule_card(detail)))
    return EXIT_OK


def _schedule_card(d: schedule_queries.ScheduleDetail) -> list[str]:
    day = speech().day
    rule = text(msg("rule:       {rule} from {day}", rule=_rule(d), day=day(d["first_date"])))
    if d["until"]:
        rule += text(msg(" until {day}", day=day(d["until"])))
    if d["count"]:
        rule += text(msg(", {count} times", count=d["count"]))
    lines = [
        text(msg("schedule {id}: {subject}  ({state})", id=d["id"], subject=d["subject"],
                 state=speech().word("active" if d["active"] else "paused"))),
        text(msg("customer:   {name} <{email}>", name=d["customer"]["name"],
                 email=d["customer"]["email"])),
        text(msg("contract:   {contract}   type: {type}", contract=d["contract_ref"] or "-",
                 type=d["request_type"])),
        rule,
        text(msg("lead days:  {days}   assignees: {assignees}", days=d["lead_days"],
                 assignees=", ".join(d["assignees"]) or "-")),
        text(msg("next:       {next}", next=_next(d))), "", text(msg("recently handled:")),
    ]
    for h in d["recent"]:
        what = (msg("intervention {number}", number=h["intervention_number"])
                if h["outcome"] == "opened"
                else msg("skipped (downtime, [scheduler] catch_up)"))
        lines.append(text(msg("  {day}  opens {opens_on}  {what}", day=day(h["date"]),
                              opens_on=day(h["opens_on"]), what=what))
                     + ("  " + text(msg("LATE")) if h["late"] else ""))
    if not d["recent"]:
        lines.append("  " + text(msg("(none yet)")))
    return lines


def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(settings, args.id, active=False)


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(settings, args.id, active=True)


def cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    count: int = args.count
    if not 1 <= count <= schedule_queries.MAX_PREVIEW:
        return fail(msg("--count should be from 1 to {most}", most=schedule_queries.MAX_PREVIEW),
                    EXIT_USAGE)
    schedule_id: int = args.id
    today, _ = _today(settings)

    async def fetch(store: Storage) -> list[schedule_queries.PreviewItem] | None:
        async with store.read() as conn:
            return await schedule_queries.preview(conn, schedule_id, today=today, count=count)

    items = with_store(settings, fetch)
    if items is None:
        return fail(msg("schedule {id} does not exist", id=schedule_id))
    if args.json:
        print(json.dumps(items, indent=2))
        return EXIT_OK
    day = speech().day
    print_table([N_("DATE"), N_("OPENS ON"), N_("INTERVENTION")],
                 [[day(i["date"]), day(i["opens_on"]), str(i["intervention_number"] or "-")]
                  for i in items])
    return EXIT_OK


def _set_active(settings: Settings, schedule_id: int, *, active: bool) -> int:
    today, now = _today(settings)

    async def change(store: Storage) -> schedule_queries.ScheduleDetail | None:
        await store.write(lambda tx: update_schedule(tx, schedule_id, {"active": active},
                                                     today=today, now=now))
        async with store.read() as conn:
            return await schedule_queries.get_schedule(conn, schedule_id)

    try:
        detail = with_store(settings, change)
    except NotFound as exc:
        return refuse(exc)
    assert detail is not None
    say(msg("Schedule {id} resumed; next {next}.", id=schedule_id, next=_next(detail))
        if active else msg("Schedule {id} paused.", id=schedule_id))
    return EXIT_OK


def _load(settings: Settings, schedule_id: int) -> schedule_queries.ScheduleDetail | None:
    async def fetch(store: Storage) -> schedule_queries.ScheduleDetail | None:
        async with store.read() as conn:
            return await schedule_queries.get_schedule(conn, schedule_id)

    detail = with_store(settings, fetch)
    if detail is None:
        fail(msg("schedule {id} does not exist", id=schedule_id))
    return detail


def _rule(s: schedule_queries.ScheduleView) -> str:
    word = speech().word
    rule = word(s["interval"])
    if s["every"] > 1:
        rule = text(msg("every {count} {interval}", count=s["every"], interval=rule))
    if s["day_rule"] != DayRule.SAME_DAY:
        rule += f" ({word(s['day_rule'])})"
    return rule


def _next(s: schedule_queries.ScheduleView) -> str:
    if s["next_occurrence_on"] is None:
        return text(msg("none (the rule has ended)"))
    return text(msg("{day}, opens {opens_on}", day=speech().day(s["next_occurrence_on"]),
                    opens_on=speech().day(s["next_opening_on"])))


def _today(settings: Settings) -> tuple[date, datetime]:
    now = SystemClock().now()
    return local_date(now, settings.scheduler.timezone), now


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            text(msg("{value!r} is not a YYYY-MM-DD date", value=value))) from None



