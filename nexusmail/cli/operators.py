"""`nexusmail operator add|password|list`: the people who log in to the admin page.

The password never travels on the command line (it would show in `ps` and the shell
history): it is asked for twice on a terminal, or read as the first line of standard
input otherwise (`printf '%s\\n' "$PW" | nexusmail operator add ...`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from nexusmail.admin.api.models import MAX_ADDRESS_CHARS
from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import (
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    AddGroup,
    fail,
    refuse,
    with_store,
)
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.i18n import LANGUAGES, Msg, message_of, msg
from nexusmail.mail.addresses import check_address
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets import operators
from nexusmail.tickets.cases import Conflict, NotFound


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add the `operator` command group to the CLI's parser."""
    operator = group(commands, "operator", config_opt,
                     "Manage operators (who log in to the admin page).",
                     "  nexusmail operator add anna@firm.it --name 'Anna Conti'\n"
                     "  nexusmail operator list")
    add_cmd = add(operator, "add", cmd_add,
                  "Add an operator; the password is asked for (or read from standard input).",
                  "  nexusmail operator add anna@firm.it --name 'Anna Conti'\n"
                  "  printf '%s\\n' \"$PASSWORD\" | nexusmail operator add anna@firm.it")
    add_cmd.add_argument("email", help="the address the operator logs in with")
    add_cmd.add_argument("--name", default="", help="full name, as the page shows it")
    add_cmd.add_argument("--language", choices=LANGUAGES, default=None,
                         help="the admin page's language for them (default: their browser's,"
                              " then [web] default_language); they can change it in Settings")
    add_cmd.add_argument("--role", choices=operators.ROLES, default=None,
                         help="admin: everything, operators and tokens included; dispatcher:"
                              " cases, customers, schedules; viewer: read only (default:"
                              " admin for the first operator, dispatcher after)")
    add_cmd.add_argument("--own-customers-only", action="store_true",
                         help="they see and act only on interventions of customers they own")
    password = add(operator, "password", cmd_password,
                   "Set a new password for an operator (ends their open sessions).",
                   "  nexusmail operator password anna@firm.it")
    password.add_argument("email", help="the operator's login address")
    add(operator, "list", cmd_list, "List operators.", "  nexusmail operator list")
    for name, fn, help_text in (
            ("disable", cmd_disable, "Retire an operator: no login from now on, their open "
             "sessions end at once; their records and history stay."),
            ("enable", cmd_enable, "Bring a retired operator back: they can log in again.")):
        switch = add(operator, name, fn, help_text, f"  nexusmail operator {name} anna@firm.it")
        switch.add_argument("email", help="the operator's login address")


def read_password(stdin: TextIO | None = None) -> str:
    """The new password: twice by getpass on a terminal, else stdin's first line."""
    stream = stdin or sys.stdin
    if stream.isatty():
        first = getpass.getpass(text(msg("Password: ")))
        if getpass.getpass(text(msg("Again: "))) != first:
            raise ValueError(msg("the two passwords differ"))
        password = first
    else:
        password = stream.readline().rstrip("\r\n")
    operators.check_password_rules(password)
    return password


def _checked_email(email: str) -> str:
    email = email.strip()
    try:
        if len(email) > MAX_ADDRESS_CHARS:
            raise ValueError(msg("is too long"))
        return check_address(email)
    except ValueError as exc:
        raise ValueError(msg("{email!r} {problem}", email=email,
                             problem=message_of(exc))) from None


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        email = _checked_email(args.email)
        password_hash = operators.hash_password(read_password())
    except ValueError as exc:
        return refuse(exc, EXIT_USAGE)
    now = SystemClock().now()

    def add_one(tx: WriteTx) -> tuple[int, str]:
        # The default role depends on who came before: decided in the same transaction.
        role = args.role or operators.default_role(tx)
        return operators.add_operator(
            tx, email=email, name=args.name, password_hash=password_hash, now=now,
            language=args.language, role=role,
            own_customers_only=args.own_customers_only), role

    async def insert(store: Storage) -> tuple[int, str]:
        return await store.write(add_one)

    try:
        operator_id, role = with_store(settings, insert, create=True)
    except Conflict as exc:
        return fail(msg("{problem} (`nexusmail operator password {email}` sets a new password)",
                        problem=message_of(exc), email=email))
    say(msg("Added operator {id}: {email}. They can log in to the admin page now.",
            id=operator_id, email=email))
    role_name = speech().word(role)
    say(msg("Role: {role}, own customers only.", role=role_name) if args.own_customers_only
        else msg("Role: {role}.", role=role_name))
    return EXIT_OK


def cmd_password(args: argparse.Namespace, settings: Settings) -> int:
    try:
        email = _checked_email(args.email)
        password_hash = operators.hash_password(read_password())
    except ValueError as exc:
        return refuse(exc, EXIT_USAGE)
    now = SystemClock().now()

    async def update(store: Storage) -> None:
        await store.write(lambda tx: operators.set_password(
            tx, email=email, password_hash=password_hash, now=now))

    try:
        with_store(settings, update)
    except NotFound as exc:
        return refuse(exc)
    say(msg("Set a new password for {email}.", email=email))
    return EXIT_OK


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(args, settings, active=False)


def cmd_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(args, settings, active=True)


def _set_active(args: argparse.Namespace, settings: Settings, *, active: bool) -> int:
    try:
        email = _checked_email(args.email)
    except ValueError as exc:
        return refuse(exc, EXIT_USAGE)
    now = SystemClock().now()

    async def update(store: Storage) -> bool:
        return await store.write(lambda tx: operators.set_active(
            tx, email=email, active=active, now=now))

    try:
        changed = with_store(settings, update)
    except NotFound as exc:
        return refuse(exc)
    said: Msg
    if active:
        said = (msg("Operator {email} enabled.", email=email) if changed
                else msg("Operator {email} was enabled already.", email=email))
    else:
        said = (msg("Operator {email} disabled.", email=email) if changed
                else msg("Operator {email} was disabled already.", email=email))
    say(said)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Storage) -> list[tuple[int, str, str, bool, str, str, bool]]:
        async with store.read() as conn:
            return await operators.list_operators(conn)

    rows = with_store(settings, fetch)
    if not rows:
        say(msg("(none)"))
        return EXIT_OK
    word = speech().word
    for operator_id, email, name, active, created_at, role, own_only in rows:
        state = speech().account_state(active)
        limit = "  " + text(msg("own customers only")) if own_only else ""
        print(f"{operator_id}  {email}  {name or '-'}  {state}  {word(role)}{limit}  "
              f"{speech().moment(created_at)}")
    return EXIT_OK
