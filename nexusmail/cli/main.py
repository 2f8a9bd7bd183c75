"""The `nexusmail` command: run the daemon, and the offline admin commands.

Offline commands (tokens, employees, assignments, showing an intervention) open the
store themselves; SQLite lets them work beside a running daemon, and a mail they queue
(an assignment) is sent by that daemon's outbox worker on its next poll.
Exit codes: 0 done, 1 the action failed (e.g. a duplicate), 2 bad usage or a bad
configuration (the message names the key; never a traceback).
"""

from __future__ import annotations

import argparse
import gettext
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError

from nexusmail import __version__
from nexusmail.admin import tokens
from nexusmail.admin.api.models import AssignmentIn, EmployeeIn
from nexusmail.blobs.store import BlobUnavailable
from nexusmail.cli import (
    backup,
    blobs,
    employees,
    imports,
    mail_import,
    migrate_store,
    operators,
    quarantine,
    records,
    schedules,
)
from nexusmail.cli.argparse_texts import GETTEXT_DOMAIN, catalogues_dir
from nexusmail.cli.check_config import cmd_check_config
from nexusmail.cli.intervention_view import format_intervention
from nexusmail.cli.language import Speech, choose_language, say, speaking, speech, text
from nexusmail.cli.support import (
    EXIT_OK,
    EXIT_USAGE,
    STORE_ERRORS,
    Command,
    fail,
    print_table,
    refuse,
    store_failure,
    validation_problem,
    with_store,
)
from nexusmail.clock import SystemClock
from nexusmail.config import ConfigError, Settings, load_settings
from nexusmail.i18n import N_, message_of, msg
from nexusmail.storage.connections import Storage
from nexusmail.tickets import queries
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import Conflict, NotFound, add_employee
from nexusmail.tickets.reply_tokens import load_reply_keys


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the examples in each epilog."""


def main(argv: Sequence[str] | None = None) -> int:
    # argparse's usage errors through our catalogues, in the locale's language.
    gettext.bindtextdomain(GETTEXT_DOMAIN, catalogues_dir())
    # Until the configuration is read, only the locale can name the language.
    with speaking(Speech(choose_language(os.environ, None))):
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, or a usage error argparse already reported
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        command: Command | None = args.command_fn
        if command is None:  # a group (`nexusmail token`) without its subcommand
            args.help_parser.print_help(sys.stderr)
            return EXIT_USAGE
        if command is _cmd_version:  # needs no configuration, so a broken one cannot stop it
            return _cmd_version(args, None)
        try:
            settings = load_settings(Path(args.config) if args.config else None)
        except ConfigError as exc:
            return refuse(exc, EXIT_USAGE)
    if command is not _cmd_run:
        _quiet_logging()
    language = choose_language(os.environ, settings.web.default_language)
    with speaking(Speech(language, ZoneInfo(settings.scheduler.timezone))):
        return _run_command(command, args, settings)


def _run_command(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    try:
        return command(args, settings)
    except ConfigError as exc:  # e.g. an unreadable [storage] database_password_file
        return refuse(exc, EXIT_USAGE)
    except STORE_ERRORS as exc:
        return store_failure(settings, exc)
    except BlobUnavailable as exc:  # e.g. a wrong bucket or key in [blobs]
        return fail(msg("the blob store cannot be used: {problem}", problem=message_of(exc)))


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before and after the subcommand: the top level sets the
    # default, the subcommands' copy (default SUPPRESS) only overrides when given.
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS,
        help="TOML configuration file (default: embedded defaults; NEXUSMAIL_SECTION__KEY "
             "environment variables override either)",
    )
    parser = argparse.ArgumentParser(
        prog="nexusmail", formatter_class=_Formatter,
        description="Email-centric ticketing daemon for field-service companies.",
        epilog="examples:\n  nexusmail --config /etc/nexusmail/nexusmail.toml run\n"
               "  nexusmail token create --name dispatcher --config nexusmail.toml\n"
               "  nexusmail check-config --config nexusmail.toml",
    )
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML configuration file (also accepted after the subcommand)")
    parser.set_defaults(command_fn=None, help_parser=parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(group: Any, name: str, fn: Command, help_text: str, examples: str
            ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, parents=[config_opt], help=help_text, description=help_text,
            epilog="examples:\n" + examples, formatter_class=_Formatter,
        )
        sub.set_defaults(command_fn=fn)
        return sub

    add(commands, "run", _cmd_run,
        "Run the daemon: SMTP ingest, outbox worker and web server, until SIGTERM.",
        "  nexusmail run\n  nexusmail run --config /etc/nexusmail/nexusmail.toml")

    token = _group(commands, "token", config_opt, "Manage API bearer tokens.",
                   "  nexusmail token create --name dispatcher\n  nexusmail token list\n"
                   "  nexusmail token revoke 3")
    create = add(token, "create", _cmd_token_create,
                 "Create an API token; it is printed once, as the last line.",
                 "  nexusmail token create --name dispatcher\n"
                 "  TOKEN=$(nexusmail token create --name ci | tail -n 1)")
    create.add_argument("--name", required=True, help="who or what uses the token")
    create.add_argument("--operator", default=None, metavar="EMAIL",
                        help="the token acts as this operator, with their role and"
                             " visibility (default: full access)")
    add(token, "list", _cmd_token_list, "List API tokens (never their secrets).",
        "  nexusmail token list")
    revoke = add(token, "revoke", _cmd_token_revoke, "Revoke an API token by its id.",
                 "  nexusmail token revoke 3")
    revoke.add_argument("id", type=int, help="the token's id, as `token list` shows it")

    employee = _group(commands, "employee", config_opt,
                      "Manage employees (the technicians interventions go to).",
                      "  nexusmail employee add mario.rossi@example.it --name 'Mario Rossi'"
                      " --language it\n  nexusmail employee list")
    add_emp = add(employee, "add", _cmd_employee_add, "Add an employee.",
                  "  nexusmail employee add ion.popescu@example.ro --name 'Ion Popescu'"
                  " --language ro")
    add_emp.add_argument("email", help="the employee's mail address")
    add_emp.add_argument("--name", required=True, help="full name, as mails show it")
    add_emp.add_argument("--language", choices=["en", "it", "ro"],
                         help="language of the mails they get (default: [mail] "
                              "default_language)")
    add(employee, "list", _cmd_employee_list, "List employees.", "  nexusmail employee list")
    employees.register(employee, add)
    operators.register(commands, config_opt, add, _group)

    assign_cmd = add(
        commands, "assign", _cmd_assign,
        "Assign an employee to an open intervention and queue their assignment mail.",
        "  nexusmail assign 42 mario.rossi@example.it\n"
        "  (a running daemon sends the mail within [outbound] poll_interval_s)\n"
        "  nexusmail assign 42 ion.popescu@example.ro --config /etc/nexusmail/nexusmail.toml")
    assign_cmd.add_argument("number", type=int, help="the intervention's number (42 for [#42])")
    assign_cmd.add_argument("employee_email", help="the employee's address, as `employee list` "
                                                   "shows it")

    intervention = _group(commands, "intervention", config_opt, "Look at interventions.",
                          "  nexusmail intervention show 42")
    show = add(intervention, "show", _cmd_intervention_show,
               "Print an intervention: its details, assignments and whole thread.",
               "  nexusmail intervention show 42\n"
               "  nexusmail intervention show 42 --json | jq '.assignments'")
    show.add_argument("number", type=int, help="the intervention's number (42 for [#42])")
    show.add_argument("--json", action="store_true",
                      help="print the same JSON as GET /api/v1/interventions/NUMBER")
    schedules.register(commands, config_opt, add, _group)
    quarantine.register(commands, config_opt, add, _group)
    imports.register(mail_import.register(commands, config_opt, add, _group), add)
    backup.register(commands, config_opt, add, _group)
    blobs.register(commands, config_opt, add, _group)
    migrate_store.register(commands, config_opt, add, _group)
    records.register(commands, config_opt, add, _group)

    add(commands, "check-config", cmd_check_config,
        "Validate the configuration and print the effective settings (secrets masked);"
        " log in to every IMAP account and report what is there, changing nothing.",
        "  nexusmail check-config --config /etc/nexusmail/nexusmail.toml\n"
        "  NEXUSMAIL_SMTP__PORT=2526 nexusmail check-config")
    add(commands, "version", _cmd_version, "Print the version.", "  nexusmail version")
    return parser


def _group(commands: Any, name: str, config_opt: argparse.ArgumentParser, help_text: str,
           examples: str) -> Any:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[config_opt], help=help_text, description=help_text,
        epilog="examples:\n" + examples, formatter_class=_Formatter,
    )
    parser.set_defaults(command_fn=None, help_parser=parser)
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from nexusmail.daemon import run_daemon  # the daemon's imports only when running it

    # SIGHUP re-reads the same file (nexusmail.service.reload).
    return run_daemon(settings, config_path=Path(args.config) if args.config else None)


def _cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    name = args.name.strip()
    if not name:
        return fail(msg("--name must not be empty"), EXIT_USAGE)
    now = SystemClock().now()

    async def create(store: Storage) -> str:
        return await store.write(lambda tx: tokens.create_token(
            tx, name, now, operator=args.operator))

    try:
        token = with_store(settings, create, create=True)
    except NotFound as exc:
        return refuse(exc)
    say(msg("Created API token {name!r}. It is shown only now; store it safely:", name=name))
    print(token)
    return EXIT_OK


def _cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Storage) -> list[tokens.TokenInfo]:
        async with store.read() as conn:
            return await tokens.list_tokens(conn)

    when = speech().moment
    rows = [
        [str(t.id), t.name, when(t.created_at),
         text(msg("revoked {when}", when=when(t.revoked_at))) if t.revoked_at
         else speech().account_state(True)]
        for t in with_store(settings, fetch)
    ]
    print_table([N_("ID"), N_("NAME"), N_("CREATED"), N_("STATUS")], rows)
    return EXIT_OK


def _cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    token_id: int = args.id
    now = SystemClock().now()

    async def revoke(store: Storage) -> None:
        await store.write(lambda tx: tokens.revoke_token(tx, token_id, now))

    try:
        with_store(settings, revoke)
    except (NotFound, Conflict) as exc:
        return refuse(exc)
    say(msg("Revoked API token {id}.", id=token_id))
    return EXIT_OK


def _cmd_employee_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        employee = EmployeeIn.model_validate({
            "email": args.email, "name": args.name,
            "language": args.language or settings.mail.default_language,
        })
    except ValidationError as exc:
        return fail(validation_problem(exc), EXIT_USAGE)
    now = SystemClock().now()

    async def insert(store: Storage) -> int:
        return await store.write(lambda tx: add_employee(
            tx, email=employee.email, name=employee.name, language=employee.language, now=now))

    try:
        employee_id = with_store(settings, insert, create=True)
    except Conflict as exc:
        return refuse(exc)
    say(msg("Added employee {id}: {name} <{email}> ({language}).", id=employee_id,
            name=employee.name, email=employee.email, language=employee.language))
    return EXIT_OK


def _cmd_employee_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Storage) -> list[queries.EmployeeView]:
        async with store.read() as conn:
            return await queries.list_employees(conn)

    rows = [
        [str(e["id"]), e["email"], e["name"], speech().word(e["language"]),
         speech().account_state(bool(e["active"]))]
        for e in with_store(settings, fetch)
    ]
    print_table([N_("ID"), N_("EMAIL"), N_("NAME"), N_("LANGUAGE"), N_("STATUS")], rows)
    return EXIT_OK


def _cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    try:
        email = AssignmentIn.model_validate({"employee_email": args.employee_email}).employee_email
    except ValidationError as exc:
        return fail(validation_problem(exc), EXIT_USAGE)
    number: int = args.number
    # Blocking file read (or first-time key creation): fine here, before the loop runs.
    keys = load_reply_keys(settings)
    now = SystemClock().now()

    async def insert(store: Storage) -> int:
        return await store.write(lambda tx: assign(
            tx, number, email, now=now, settings=settings, reply_keys=keys, assigned_by="cli"))

    try:
        assignment_id = with_store(settings, insert)
    except (NotFound, Conflict) as exc:
        return refuse(exc)
    say(msg("Assigned {email} to intervention {number} (assignment {id}); the assignment "
            "mail is queued for the daemon to send.", email=email, number=number,
            id=assignment_id))
    return EXIT_OK


def _cmd_intervention_show(args: argparse.Namespace, settings: Settings) -> int:
    number: int = args.number

    async def fetch(store: Storage) -> queries.InterventionDetail | None:
        async with store.read() as conn:
            return await queries.get_intervention(conn, number)

    detail = with_store(settings, fetch)
    if detail is None:
        return fail(msg("intervention {number} does not exist", number=number))
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
    else:
        print("\n".join(format_intervention(detail)))
    return EXIT_OK


def _cmd_version(args: argparse.Namespace, settings: Settings | None) -> int:
    print(f"nexusmail {__version__}")
    return EXIT_OK


def _quiet_logging() -> None:
    # Offline commands print for a human (and a token on the last stdout line):
    # the store's own log lines go to stderr, warnings and up only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
