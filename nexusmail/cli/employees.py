"""`nexusmail employee disable|enable EMAIL`: retire a technician (no new assignments,
so no assignment mail) and bring them back. Adding and listing live in cli.main."""

from __future__ import annotations

import argparse
from typing import Any

from nexusmail.cli.language import say
from nexusmail.cli.support import EXIT_OK, AddCommand, refuse, with_store
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.storage.connections import Storage
from nexusmail.tickets.cases import NotFound, set_employee_active


def register(employee: Any, add: AddCommand) -> None:
    """Add `disable` and `enable` to the `employee` command group."""
    for name, fn, text in (
            ("disable", cmd_disable, "Retire an employee: they can no longer be assigned "
             "(so get no assignment mail); their past assignments stay."),
            ("enable", cmd_enable, "Bring a retired employee back: they can be assigned.")):
        switch = add(employee, name, fn, text, f"  nexusmail employee {name} luca@firm.it")
        switch.add_argument("email", help="the employee's address")


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(args.email, settings, active=False)


def cmd_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_active(args.email, settings, active=True)


def _set_active(email: str, settings: Settings, *, active: bool) -> int:
    async def update(store: Storage) -> int:
        return await store.write(lambda tx: set_employee_active(tx, email, active=active))

    try:
        with_store(settings, update)
    except NotFound as exc:
        return refuse(exc)
    address = email.strip().lower()
    say(msg("Employee {email} enabled.", email=address) if active
        else msg("Employee {email} disabled.", email=address))
    return EXIT_OK
