"""Request types: the list an operator picks a case's type from, with a name per
language, a default priority, default assignees and, optionally, its own SLA (response
and resolution hours for a case of this type that no contract gives them). An
intervention's request_type holds one of these codes, or free text as before."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from nexusmail.i18n import msg
from nexusmail.records import fields
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.contracts import MAX_HOURS
from nexusmail.tickets.models import Status

SERVICE_SCHEDULE = "service_schedule"
# Codes are what clients and imports write: short, lower case, no spaces.
MAX_CODE_CHARS = 50
_CODE = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_CODE_CHARS - 1}}}$")
MAX_NAME_CHARS = 100
MAX_ASSIGNEES = 50
SLA_FIELDS = ("response_hours", "resolution_hours")


class Names(TypedDict):
    en: str
    it: str
    ro: str


class RequestTypeView(TypedDict):
    code: str
    names: Names
    default_priority: str
    default_assignees: list[str]     # employee emails
    response_hours: float | None     # None: the [sla] default; 0: no deadline
    resolution_hours: float | None
    customer_closing_mail: bool | None  # None: as [reports] customer_closing_mail


def code(value: Any) -> str:
    text = (fields.text_or_none(value) or "").lower()
    if not _CODE.match(text):
        raise InvalidRecord(msg(
            "{field}: should be 1 to 50 lower-case letters, digits, '_' or '-',"
            " starting with a letter or digit", field="code"))
    return text


def _names(value: Mapping[str, Any]) -> dict[str, str]:
    names = {}
    for language, name in value.items():
        if language not in fields.LANGUAGES:
            raise InvalidRecord(msg("{field}: should be one of en, it, ro",
                                    field=f"names.{language}"))
        text = fields.text_or_none(name) or ""
        if len(text) > MAX_NAME_CHARS:
            raise InvalidRecord(msg("{field}: is longer than {most} characters",
                                    field=f"names.{language}", most=MAX_NAME_CHARS))
        names[language] = text
    return names


def sla_hours(value: Any, field: str) -> float | None:
    """A response or resolution time in hours (fractions allowed), or None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRecord(msg("{field}: is not a number of hours", field=field))
    try:
        hours = float(value)
    except ValueError:
        raise InvalidRecord(msg("{field}: is not a number of hours", field=field)) from None
    if not math.isfinite(hours) or hours < 0 or hours > MAX_HOURS:
        raise InvalidRecord(msg("{field}: should be between 0 and {most}", field=field,
                                most=f"{MAX_HOURS:g}"))
    return hours


def closing_mail(value: Any) -> int | None:
    """The type's closing-mail switch as stored: 1, 0, or None for as configured."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    raise InvalidRecord(msg("{field}: should be true, false or null",
                            field="customer_closing_mail"))


def _assignee_ids(tx: WriteTx, emails: Sequence[str]) -> list[int]:
    if len(emails) > MAX_ASSIGNEES:
        raise InvalidRecord(msg("{field}: more than {most}", field="default_assignees",
                                most=MAX_ASSIGNEES))
    ids = []
    for raw in dict.fromkeys(emails):
        email = fields.email(raw, "default_assignees")
        row = tx.execute("SELECT id, active FROM employees WHERE email = ?",
                         (email,)).fetchone()
        if row is None:
            raise InvalidRecord(msg("{field}: no employee has the address {address}",
                                    field="default_assignees", address=email))
        if not row[1]:
            raise InvalidRecord(msg("{field}: employee {address} is retired",
                                    field="default_assignees", address=email))
        ids.append(int(row[0]))
    return ids


def create_request_type(tx: WriteTx, values: Mapping[str, Any]) -> str:
    """Add a type to the list; return its code. Its English name defaults to the code."""
    new_code = code(values.get("code"))
    # Two operators adding one code at once (two daemons): one adds it, one gets Conflict.
    xact_lock.hold(tx, "request_type", new_code)
    if tx.execute("SELECT 1 FROM request_types WHERE code = ?", (new_code,)).fetchone():
        raise Conflict(msg("code: a request type {code} exists already", code=new_code))
    names = {"en": "", "it": "", "ro": "", **_names(values.get("names") or {})}
    names["en"] = names["en"] or new_code
    priority = fields.choice(values.get("default_priority"), fields.PRIORITIES,
                             "default_priority") or "normal"
    position = tx.execute("SELECT coalesce(max(position), 0) + 1 FROM request_types"
                          ).fetchone()[0]
    sla = [sla_hours(values.get(f), f) for f in SLA_FIELDS]
    tx.execute(
        "INSERT INTO request_types (code, name_en, name_it, name_ro, default_priority,"
        " position, response_hours, resolution_hours, customer_closing_mail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_code, names["en"], names["it"], names["ro"], priority, position, *sla,
         closing_mail(values.get("customer_closing_mail"))))
    _set_assignees(tx, new_code, _assignee_ids(tx, values.get("default_assignees") or []))
    return new_code


def update_request_type(tx: WriteTx, type_code: str, changes: Mapping[str, Any]) -> None:
    """Change names (those given), the default priority, the assignees (replaced) or
    the SLA hours (null clears them); open cases of the type get their deadlines worked
    out again by the next sweep when the hours change."""
    if tx.execute("SELECT 1 FROM request_types WHERE code = ?", (type_code,)).fetchone() is None:
        raise NotFound(msg("request type {code} does not exist", code=type_code))
    for language, name in _names(changes.get("names") or {}).items():
        # The column name comes from fields.LANGUAGES, checked in _names.
        tx.execute(f"UPDATE request_types SET name_{language} = ? WHERE code = ?",  # noqa: S608
                   (name, type_code))
    if changes.get("default_priority") is not None:
        priority = fields.choice(changes["default_priority"], fields.PRIORITIES,
                                 "default_priority")
        tx.execute("UPDATE request_types SET default_priority = ? WHERE code = ?",
                   (priority, type_code))
    if "default_assignees" in changes:
        _set_assignees(tx, type_code, _assignee_ids(tx, changes["default_assignees"] or []))
    sla = {f: sla_hours(changes[f], f) for f in SLA_FIELDS if f in changes}
    for field, hours in sla.items():
        # The column name comes from SLA_FIELDS.
        tx.execute(f"UPDATE request_types SET {field} = ? WHERE code = ?",  # noqa: S608
                   (hours, type_code))
    if "customer_closing_mail" in changes:  # null: back to as configured
        tx.execute("UPDATE request_types SET customer_closing_mail = ? WHERE code = ?",
                   (closing_mail(changes["customer_closing_mail"]), type_code))
    if sla:
        tx.execute("UPDATE interventions SET sla_planned_at = NULL"
                   " WHERE request_type = ? AND status = ?", (type_code, Status.OPEN))


def _set_assignees(tx: WriteTx, type_code: str, employee_ids: list[int]) -> None:
    tx.execute("DELETE FROM request_type_assignees WHERE request_type = ?", (type_code,))
    tx.executemany(
        "INSERT INTO request_type_assignees (request_type, employee_id) VALUES (?, ?)",
        [(type_code, e) for e in employee_ids])


async def list_request_types(conn: ReadTx) -> list[RequestTypeView]:
    """The list in its order (position, then code)."""
    rows = await conn.execute_fetchall(
        "SELECT code, name_en, name_it, name_ro, default_priority, response_hours,"
        " resolution_hours, customer_closing_mail FROM request_types ORDER BY position, code")
    assignees = await conn.execute_fetchall(
        "SELECT a.request_type, e.email FROM request_type_assignees a"
        " JOIN employees e ON e.id = a.employee_id")
    by_type: dict[str, list[str]] = {}
    for a in sorted(assignees, key=lambda a: str(a["email"])):  # the same order on both stores
        by_type.setdefault(a["request_type"], []).append(a["email"])
    return [
        {"code": r["code"],
         "names": {"en": r["name_en"], "it": r["name_it"], "ro": r["name_ro"]},
         "default_priority": r["default_priority"],
         "default_assignees": by_type.get(r["code"], []),
         "response_hours": r["response_hours"], "resolution_hours": r["resolution_hours"],
         "customer_closing_mail": None if r["customer_closing_mail"] is None
         else bool(r["customer_closing_mail"])}
        for r in rows
    ]


async def get_request_type(conn: ReadTx, type_code: str) -> RequestTypeView | None:
    return next((t for t in await list_request_types(conn) if t["code"] == type_code), None)


def display_name(kind: RequestTypeView, language: str) -> str:
    """The type's name in `language`, else in English, else its code."""
    names = kind["names"]
    by_language = {"en": names["en"], "it": names["it"], "ro": names["ro"]}
    return by_language.get(language) or names["en"] or kind["code"]
