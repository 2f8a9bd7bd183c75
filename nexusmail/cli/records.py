"""`nexusmail customer|contact|site|equipment|request-type ...`: the customer archive
offline.

The same operations and checks as the archive's JSON API (admin.api.records), through
the store: bodies are validated by the API's models, the rules are nexusmail.records'.
A refused value exits 2 naming the field; a clash or an unknown id exits 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from nexusmail.admin.api.records_models import (
    ContactIn,
    CustomerIn,
    CustomerPatch,
    EquipmentIn,
    RequestTypeIn,
    SiteIn,
    every,
    sent,
)
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
from nexusmail.i18n import N_, Msg, msg
from nexusmail.records import contacts, customers, equipment, request_types, sites
from nexusmail.records.customer_search import search_customers
from nexusmail.records.fields import InvalidRecord
from nexusmail.records.merge import merge_customers
from nexusmail.storage.connections import ReadTx, Storage, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# The customer fields given as options, with the body field each fills.
_CUSTOMER_OPTIONS = (("--tax-id", "tax_id"), ("--address", "address"), ("--phone", "phone"),
                     ("--work-phone", "work_phone"), ("--email", "email"),
                     ("--notes", "notes"), ("--owner", "owner"))


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add the archive's command groups to the CLI's parser."""
    _register_customers(commands, config_opt, add, group)
    _register_parts(commands, config_opt, add, group)


def _register_customers(commands: Any, config_opt: argparse.ArgumentParser,
                        add: AddCommand, group: AddGroup) -> None:
    customer = group(commands, "customer", config_opt,
                     "Manage customers: details, mail domains, owner; merge duplicates.",
                     "  nexusmail customer list --q rossi\n  nexusmail customer show 12")
    list_cmd = add(customer, "list", cmd_customer_list,
                   "List customers by name; --q finds part of a name, tax id, email or "
                   "phone (a contact's too) or a mail domain.",
                   "  nexusmail customer list\n  nexusmail customer list --q IT0123")
    list_cmd.add_argument("--q", default="", help="text to look for")
    list_cmd.add_argument("--limit", type=int, default=50, help="at most this many (1..200)")
    list_cmd.add_argument("--json", action="store_true", help="print JSON, as the API does")
    show = add(customer, "show", cmd_customer_show,
               "Print a customer with its contacts, sites and equipment.",
               "  nexusmail customer show 12\n  nexusmail customer show 12 --json")
    show.add_argument("id", type=int, help="the customer's id, as `customer list` shows it")
    show.add_argument("--json", action="store_true", help="print JSON")
    add_cmd = add(customer, "add", cmd_customer_add,
                  "Add a customer (verified; owned by --owner, else by [customers] "
                  "default_owner).",
                  "  nexusmail customer add 'Rossi Impianti Srl' --tax-id IT01234567890 \\\n"
                  "      --email info@rossi-impianti.it --domain rossi-impianti.it")
    add_cmd.add_argument("name", help="the company's or person's name")
    edit = add(customer, "edit", cmd_customer_edit,
               "Change a customer's details: only the options given change; an empty "
               "value clears one. --domain replaces the list of mail domains.",
               "  nexusmail customer edit 12 --owner anna@firm.it --phone ''")
    edit.add_argument("id", type=int, help="the customer's id")
    edit.add_argument("--name", help="a new name")
    for parser, default in ((add_cmd, ""), (edit, None)):
        for option, _ in _CUSTOMER_OPTIONS:
            parser.add_argument(option, default=default)
        parser.add_argument("--language", choices=["en", "it", "ro"])
        parser.add_argument("--domain", action="append", metavar="DOMAIN",
                            help="a mail domain the customer writes from (repeatable)")
    merge = add(customer, "merge", cmd_customer_merge,
                "Merge a duplicate customer into another: its contacts, domains, sites, "
                "equipment, interventions and schedules move; it stays, marked merged.",
                "  nexusmail customer merge 31 --into 12")
    merge.add_argument("id", type=int, help="the duplicate")
    merge.add_argument("--into", type=int, required=True, help="the customer that stays")


def _register_parts(commands: Any, config_opt: argparse.ArgumentParser,
                    add: AddCommand, group: AddGroup) -> None:
    contact = group(commands, "contact", config_opt, "Manage a customer's contacts.",
                    "  nexusmail contact add 12 --name 'Giulia Bianchi' --email g@rossi.it")
    add_contact = add(contact, "add", cmd_contact_add, "Add a contact to a customer.",
                      "  nexusmail contact add 12 --name 'Giulia Bianchi' --phone '333 123'"
                      " --channel phone")
    add_contact.add_argument("customer_id", type=int)
    for option in ("--name", "--email", "--phone", "--role"):
        add_contact.add_argument(option, default=None)
    add_contact.add_argument("--channel", choices=["email", "phone"],
                             help="how they want to be reached")
    add_contact.add_argument("--language", choices=["en", "it", "ro"])

    site = group(commands, "site", config_opt, "Manage a customer's sites.",
                 "  nexusmail site add 12 'Magazzino' --address 'Via Po 3, Torino'")
    add_site = add(site, "add", cmd_site_add, "Add a site to a customer.",
                   "  nexusmail site add 12 Sede --access-notes 'Chiavi in portineria'")
    add_site.add_argument("customer_id", type=int)
    add_site.add_argument("name")
    add_site.add_argument("--address", default="")
    add_site.add_argument("--access-notes", default="", help="keys, opening hours")

    machines = group(commands, "equipment", config_opt,
                     "Manage the installed base: machines by serial number.",
                     "  nexusmail equipment list --serial AB-1234X")
    add_eq = add(machines, "add", cmd_equipment_add, "Add a machine to a customer.",
                 "  nexusmail equipment add 12 AB-1234X --model 'Vaillant ecoTEC' \\\n"
                 "      --site-id 3 --installed-on 2021-10-01 --warranty-until 2026-09-30")
    add_eq.add_argument("customer_id", type=int)
    add_eq.add_argument("serial")
    add_eq.add_argument("--site-id", type=int)
    for option in ("--model", "--description", "--notes"):
        add_eq.add_argument(option, default="")
    for option in ("--installed-on", "--warranty-until"):
        add_eq.add_argument(option, metavar="YYYY-MM-DD")
    list_eq = add(machines, "list", cmd_equipment_list,
                  "List machines, of one customer or by serial.",
                  "  nexusmail equipment list --customer 12")
    list_eq.add_argument("--customer", type=int)
    list_eq.add_argument("--serial")
    list_eq.add_argument("--json", action="store_true", help="print JSON, as the API does")
    show_eq = add(machines, "show", cmd_equipment_show,
                  "Print a machine with its intervention history.",
                  "  nexusmail equipment show 7")
    show_eq.add_argument("id", type=int)
    show_eq.add_argument("--json", action="store_true", help="print JSON, as the API does")

    kinds = group(commands, "request-type", config_opt,
                  "Manage the list of request types.", "  nexusmail request-type list")
    list_rt = add(kinds, "list", cmd_request_type_list, "List request types.",
                  "  nexusmail request-type list --json")
    list_rt.add_argument("--json", action="store_true", help="print JSON, as the API does")
    add_rt = add(kinds, "add", cmd_request_type_add, "Add a request type.",
                 "  nexusmail request-type add repair --en Repair --it Riparazione \\\n"
                 "      --ro Reparatie --priority high --assignee marco@firm.it")
    add_rt.add_argument("code", help="lower case, digits, '_' or '-'")
    for language in ("en", "it", "ro"):
        add_rt.add_argument(f"--{language}", default="", help=f"name in {language}")
    add_rt.add_argument("--priority", default="normal",
                        choices=["low", "normal", "high", "urgent"])
    add_rt.add_argument("--assignee", action="append", default=[], metavar="EMAIL",
                        help="employee assigned by default (repeatable)")
    add_rt.add_argument("--response-hours", type=float, metavar="HOURS",
                        help="SLA response time of its cases when no contract sets one"
                             " (business hours; 0: none; absent: the [sla] default)")
    add_rt.add_argument("--resolution-hours", type=float, metavar="HOURS",
                        help="SLA resolution time, as --response-hours")
    add_rt.add_argument("--closing-mail", action=argparse.BooleanOptionalAction,
                        help="whether its resolved cases mail the customer a closing"
                             " report (absent: [reports] customer_closing_mail)")


# Customers


def cmd_customer_list(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 200:
        return fail(msg("--limit should be from 1 to 200"), EXIT_USAGE)
    page = with_store(settings, _reader(
        lambda conn: search_customers(conn, args.q or None, limit=args.limit)))
    if args.json:
        return _print_json(page)
    print_table([N_("ID"), N_("NAME"), N_("TAX ID"), N_("EMAIL"), N_("PHONE"), N_("OWNER")],
                [[str(c["id"]), c["name"], c["tax_id"] or "-", c["email"] or "-",
                  c["phone"] or "-", c["owner"] or "-"] for c in page["items"]])
    if page["total"] > len(page["items"]):
        say(msg("({count} in all; --limit shows more)",
                count=speech().number(page["total"])))
    return EXIT_OK


def cmd_customer_show(args: argparse.Namespace, settings: Settings) -> int:
    customer_id: int = args.id

    async def card(conn: ReadTx) -> dict[str, Any] | None:
        found = await customers.get_customer(conn, customer_id)
        if found is None:
            return None
        return {**found, "contacts": await contacts.list_contacts(conn, customer_id),
                "sites": await sites.list_sites(conn, customer_id),
                "equipment": (await equipment.find_equipment(
                    conn, customer_id=customer_id, limit=200))["items"]}

    shown = with_store(settings, _reader(card))
    if shown is None:
        return fail(msg("customer {id} does not exist", id=customer_id))
    if args.json:
        return _print_json(shown)
    print("\n".join(line.rstrip() for line in _customer_card(shown)))
    return EXIT_OK


def _customer_card(c: dict[str, Any]) -> list[str]:
    head = text(msg("customer {id}: {name}", id=c["id"], name=c["name"]))
    if c["merged_into"]:
        head += "  " + text(msg("(merged into {id})", id=c["merged_into"]))
    if not c["verified"]:
        head += "  " + text(msg("(unverified)"))
    lines = [
        head,
        text(msg("tax id:     {tax_id}   language: {language}", tax_id=c["tax_id"] or "-",
                 language=speech().word(c["language"]) if c["language"] else "-")),
        text(msg("address:    {address}", address=c["address"] or "-")),
        text(msg("phone:      {phone}   work: {work_phone}", phone=c["phone"] or "-",
                 work_phone=c["work_phone"] or "-")),
        text(msg("email:      {email}   domains: {domains}", email=c["email"] or "-",
                 domains=", ".join(c["mail_domains"]) or "-")),
        text(msg("owner:      {owner}", owner=c["owner"] or "-")),
    ]
    if c["notes"]:
        lines.append(text(msg("notes:      {notes}", notes=c["notes"])))
    lines += ["", text(msg("contacts:"))] + [
        f"  {p['id']}  {p['name'] or '-'}  {p['email'] or '-'}  {p['phone'] or '-'}"
        f"  {p['role'] or ''}" for p in c["contacts"]]
    lines += ["", text(msg("sites:"))] + [
        f"  {s['id']}  {s['name']}  {s['address']}" for s in c["sites"]]
    lines += ["", text(msg("equipment:"))] + [
        f"  {e['id']}  {e['serial']}  {e['model']}  "
        + text(msg("warranty until {day}", day=speech().day(e["warranty_until"])))
        for e in c["equipment"]]
    return lines


def cmd_customer_add(args: argparse.Namespace, settings: Settings) -> int:
    raw: dict[str, Any] = {"name": args.name, "language": args.language,
                           "mail_domains": args.domain or []}
    raw.update({field: getattr(args, field) or None for _, field in _CUSTOMER_OPTIONS})
    raw["notes"] = args.notes or ""
    body = _validate(CustomerIn, raw)
    if body is None:
        return EXIT_USAGE
    values, now = every(body), SystemClock().now()
    owner = settings.customers.default_owner or None
    return _write(settings, lambda tx: customers.create_customer(tx, values, now=now,
                                                                 default_owner=owner),
                  lambda new_id: msg("Added customer {id}: {name}.", id=new_id,
                                     name=args.name))


def cmd_customer_edit(args: argparse.Namespace, settings: Settings) -> int:
    raw: dict[str, Any] = {}
    for _, field in (*_CUSTOMER_OPTIONS, ("--name", "name"), ("--language", "language")):
        value = getattr(args, field)
        if value is not None:
            raw[field] = value or None
    if args.domain is not None:
        raw["mail_domains"] = [d for d in args.domain if d]
    body = _validate(CustomerPatch, raw)
    if body is None:
        return EXIT_USAGE
    changes, now, customer_id = sent(body), SystemClock().now(), args.id
    if not changes:
        return fail(msg("give at least one option to change"), EXIT_USAGE)
    return _write(settings,
                  lambda tx: customers.update_customer(tx, customer_id, changes, now=now),
                  lambda _: msg("Customer {id} changed: {fields}.", id=customer_id,
                                fields=", ".join(sorted(changes))))


def cmd_customer_merge(args: argparse.Namespace, settings: Settings) -> int:
    source, into, now = args.id, args.into, SystemClock().now()
    return _write(
        settings, lambda tx: merge_customers(tx, source, into, now=now),
        lambda moved: msg("Customer {source} merged into {into}: {contacts} contacts, "
                          "{sites} sites, {machines} machines, {interventions} "
                          "interventions moved.", source=source, into=into,
                          contacts=moved.contacts, sites=moved.sites,
                          machines=moved.equipment, interventions=moved.interventions))


# Contacts, sites, equipment, request types


def cmd_contact_add(args: argparse.Namespace, settings: Settings) -> int:
    body = _validate(ContactIn, {"name": args.name or "", "email": args.email,
                                 "phone": args.phone, "role": args.role,
                                 "preferred_channel": args.channel, "language": args.language})
    if body is None:
        return EXIT_USAGE
    values, now, customer_id = every(body), SystemClock().now(), args.customer_id
    return _write(settings, lambda tx: contacts.add_contact(tx, customer_id, values, now=now),
                  lambda new_id: msg("Added contact {id} to customer {customer}.", id=new_id,
                                     customer=customer_id))


def cmd_site_add(args: argparse.Namespace, settings: Settings) -> int:
    body = _validate(SiteIn, {"name": args.name, "address": args.address,
                              "access_notes": args.access_notes})
    if body is None:
        return EXIT_USAGE
    values, now, customer_id = every(body), SystemClock().now(), args.customer_id
    return _write(settings, lambda tx: sites.add_site(tx, customer_id, values, now=now),
                  lambda new_id: msg("Added site {id} to customer {customer}.", id=new_id,
                                     customer=customer_id))


def cmd_equipment_add(args: argparse.Namespace, settings: Settings) -> int:
    body = _validate(EquipmentIn, {
        "customer_id": args.customer_id, "site_id": args.site_id, "serial": args.serial,
        "model": args.model, "description": args.description, "notes": args.notes,
        "installed_on": args.installed_on, "warranty_until": args.warranty_until})
    if body is None:
        return EXIT_USAGE
    values, now = every(body), SystemClock().now()
    return _write(settings, lambda tx: equipment.add_equipment(tx, values, now=now),
                  lambda new_id: msg("Added equipment {id}: {serial}.", id=new_id,
                                     serial=args.serial))


def cmd_equipment_list(args: argparse.Namespace, settings: Settings) -> int:
    page = with_store(settings, _reader(lambda conn: equipment.find_equipment(
        conn, customer_id=args.customer, serial_text=args.serial, limit=200)))
    if args.json:
        return _print_json(page)
    print_table([N_("ID"), N_("CUSTOMER"), N_("SITE"), N_("SERIAL"), N_("MODEL"),
                 N_("WARRANTY UNTIL")],
                [[str(e["id"]), str(e["customer_id"]), str(e["site_id"] or "-"), e["serial"],
                  e["model"] or "-", speech().day(e["warranty_until"])]
                 for e in page["items"]])
    return EXIT_OK


def cmd_equipment_show(args: argparse.Namespace, settings: Settings) -> int:
    equipment_id: int = args.id
    found = with_store(settings, _reader(
        lambda conn: equipment.get_equipment(conn, equipment_id)))
    if found is None:
        return fail(msg("equipment {id} does not exist", id=equipment_id))
    if args.json:
        return _print_json(found)
    e, day, word = found, speech().day, speech().word
    print("\n".join([
        text(msg("equipment {id}: {serial}  {model}", id=e["id"], serial=e["serial"],
                 model=e["model"])).rstrip(),
        text(msg("customer:   {customer}   site: {site}", customer=e["customer_id"],
                 site=e["site_id"] or "-")),
        text(msg("installed:  {installed}   warranty until: {warranty}",
                 installed=day(e["installed_on"]), warranty=day(e["warranty_until"]))),
        *([text(msg("notes:      {notes}", notes=e["notes"]))] if e["notes"] else []),
        "", text(msg("interventions:")),
        *[f"  #{i['number']}  {speech().moment(i['created_at'])[:10]}  {word(i['status'])}"
          f"{' (' + word(i['status_reason']) + ')' if i['status_reason'] else ''}"
          f"  {i['subject']}" for i in e["interventions"]],
        *(["  " + text(msg("(none)"))] if not e["interventions"] else []),
    ]))
    return EXIT_OK


def cmd_request_type_list(args: argparse.Namespace, settings: Settings) -> int:
    items = with_store(settings, _reader(request_types.list_request_types))
    if args.json:
        return _print_json(items)
    print_table([N_("CODE"), "EN", "IT", "RO", N_("PRIORITY"), N_("ASSIGNEES"),
                 N_("RESPONSE H"), N_("RESOLUTION H")],
                [[t["code"], t["names"]["en"], t["names"]["it"], t["names"]["ro"],
                  speech().word(t["default_priority"]),
                  ", ".join(t["default_assignees"]) or "-",
                  _hours_text(t["response_hours"]), _hours_text(t["resolution_hours"])]
                 for t in items])
    return EXIT_OK


def cmd_request_type_add(args: argparse.Namespace, settings: Settings) -> int:
    body = _validate(RequestTypeIn, {
        "code": args.code, "names": {"en": args.en, "it": args.it, "ro": args.ro},
        "default_priority": args.priority, "default_assignees": args.assignee,
        "response_hours": args.response_hours, "resolution_hours": args.resolution_hours,
        "customer_closing_mail": args.closing_mail})
    if body is None:
        return EXIT_USAGE
    values = every(body)
    return _write(settings, lambda tx: request_types.create_request_type(tx, values),
                  lambda code: msg("Added request type {code}.", code=code))


def _hours_text(hours: float | None) -> str:
    return "-" if hours is None else speech().number(hours)


# Shared steps


def _validate(model: type[M], raw: dict[str, Any]) -> M | None:
    """The body, or None after printing the fields at fault (lax mode: the CLI's
    values are strings, a date is typed as text)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fail(validation_problem(exc))
        return None


def _write(settings: Settings, fn: Callable[[WriteTx], T],
           done: Callable[[T], Msg]) -> int:
    async def run(store: Storage) -> T:
        return await store.write(fn)

    try:
        result = with_store(settings, run)
    except InvalidRecord as exc:
        return refuse(exc, EXIT_USAGE)
    except (Conflict, NotFound) as exc:
        return refuse(exc, EXIT_FAILED)
    say(done(result))
    return EXIT_OK


def _reader(fn: Callable[[ReadTx], Awaitable[T]]) -> Callable[[Storage], Awaitable[T]]:
    async def run(store: Storage) -> T:
        async with store.read() as conn:
            return await fn(conn)

    return run


def _print_json(value: Any) -> int:
    print(json.dumps(value, ensure_ascii=False, indent=2))
    return EXIT_OK
