"""What an intervention is linked to in the archive, for its detail view: the customer,
the contact who asked, the site, the machine, and how and when the request came."""

from __future__ import annotations

from typing import TypedDict

from nexusmail.records.contacts import ContactView, get_contact, list_contacts
from nexusmail.records.customers import CustomerView, get_customer
from nexusmail.records.equipment import COLUMNS as EQUIPMENT_COLUMNS
from nexusmail.records.equipment import EquipmentView, find_equipment
from nexusmail.records.equipment import view as equipment_view
from nexusmail.records.request_types import RequestTypeView, list_request_types
from nexusmail.records.sites import SiteView, get_site, list_sites
from nexusmail.storage.connections import ReadTx

# Cases stored without a channel say it by their source.
_CHANNEL_OF_SOURCE = {"email": "mail", "schedule": "schedule"}


class InterventionRecords(TypedDict):
    customer: CustomerView
    contact: ContactView | None
    site: SiteView | None
    equipment: EquipmentView | None
    request_type: str
    channel: str | None       # mail | phone | visit | web | schedule
    requested_at: str | None
    owner: str | None
    status: str               # open | on_hold | closed
    status_reason: str


async def intervention_records(conn: ReadTx, number: int) -> InterventionRecords | None:
    """The archive records of intervention `number`; None when there is no such one."""
    rows = list(await conn.execute_fetchall(
        "SELECT customer_id, contact_id, site_id, equipment_id, request_type, channel,"
        " source, requested_at, owner, status, status_reason FROM interventions"
        " WHERE number = ?", (number,)))
    if not rows:
        return None
    row = rows[0]
    customer = await get_customer(conn, row["customer_id"])
    assert customer is not None  # interventions.customer_id references customers
    equipment = None
    if row["equipment_id"] is not None:
        found = list(await conn.execute_fetchall(
            f"SELECT {EQUIPMENT_COLUMNS} FROM equipment WHERE id = ?",  # noqa: S608
            (row["equipment_id"],)))
        equipment = equipment_view(found[0]) if found else None
    return {
        "customer": customer,
        "contact": (await get_contact(conn, row["contact_id"])
                    if row["contact_id"] is not None else None),
        "site": await get_site(conn, row["site_id"]) if row["site_id"] is not None else None,
        "equipment": equipment,
        "request_type": row["request_type"],
        "channel": row["channel"] or _CHANNEL_OF_SOURCE.get(row["source"]),
        "requested_at": row["requested_at"],
        "owner": row["owner"],
        "status": row["status"],
        "status_reason": row["status_reason"],
    }


class CaseLine(TypedDict):
    number: int
    subject: str
    status: str
    request_type: str
    equipment_id: int | None
    created_at: str


async def customer_interventions(conn: ReadTx, customer_id: int,
                                 limit: int = 100) -> list[CaseLine]:
    """A customer's latest interventions, newest first (the interventions_by_customer
    index answers it)."""
    rows = await conn.execute_fetchall(
        "SELECT number, subject, status, request_type, equipment_id, created_at"
        " FROM interventions WHERE customer_id = ? ORDER BY number DESC LIMIT ?",
        (customer_id, limit))
    return [{"number": r["number"], "subject": r["subject"], "status": r["status"],
             "request_type": r["request_type"], "equipment_id": r["equipment_id"],
             "created_at": r["created_at"]} for r in rows]


class LinkChoices(TypedDict):
    contacts: list[ContactView]
    sites: list[SiteView]
    equipment: list[EquipmentView]
    request_types: list[RequestTypeView]


async def link_choices(conn: ReadTx, customer_id: int) -> LinkChoices:
    """What a case of this customer can be linked to: its contacts, sites and machines,
    and the list of request types."""
    return {
        "contacts": await list_contacts(conn, customer_id),
        "sites": await list_sites(conn, customer_id),
        "equipment": (await find_equipment(conn, customer_id=customer_id,
                                           limit=200))["items"],
        "request_types": await list_request_types(conn),
    }
