"""Request bodies of the archive's routes (customers, contacts, sites, equipment,
request types), shared by the JSON API and the CLI.

Types and lengths are checked here; what depends on the store or on the archive's rules
(a known owner, a site of that customer, a free serial, a domain's form) is checked
once, by nexusmail.records, and comes back as InvalidRecord (422) or Conflict (409)
naming the field. A PATCH body changes only the fields it sends; null clears a field
that may be empty.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, MAX_ASSIGNEES, _Body
from nexusmail.tickets.contracts import MAX_HOURS
from nexusmail.tickets.models import Priority

Language = Literal["en", "it", "ro"]
MAX_TEXT = 1_000
MAX_NOTES = 10_000
MAX_PHONE = 50


def sent(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent, as the records functions take them."""
    return {name: _plain(getattr(body, name)) for name in body.model_fields_set}


def every(body: BaseModel) -> dict[str, Any]:
    """Every field, sent or defaulted (for a creation)."""
    return {name: _plain(getattr(body, name)) for name in type(body).model_fields}


def _plain(value: Any) -> Any:
    # A nested body (a request type's names) also carries only what was sent.
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in value.model_fields_set}
    return value


class CustomerIn(_Body):
    name: str = Field(min_length=1, max_length=300)
    tax_id: str | None = Field(None, max_length=50)
    address: str | None = Field(None, max_length=MAX_TEXT)
    phone: str | None = Field(None, max_length=MAX_PHONE)
    work_phone: str | None = Field(None, max_length=MAX_PHONE)
    email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    language: Language | None = None
    notes: str = Field("", max_length=MAX_NOTES)
    mail_domains: list[str] = Field(default_factory=list, max_length=50)
    owner: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    verified: bool = True


class CustomerPatch(_Body):
    name: str | None = Field(None, max_length=300)
    tax_id: str | None = Field(None, max_length=50)
    address: str | None = Field(None, max_length=MAX_TEXT)
    phone: str | None = Field(None, max_length=MAX_PHONE)
    work_phone: str | None = Field(None, max_length=MAX_PHONE)
    email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    language: Language | None = None
    notes: str | None = Field(None, max_length=MAX_NOTES)
    mail_domains: list[str] | None = Field(None, max_length=50)
    owner: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    verified: bool | None = None


class ContactIn(_Body):
    name: str = Field("", max_length=300)
    email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    phone: str | None = Field(None, max_length=MAX_PHONE)
    role: str | None = Field(None, max_length=200)
    preferred_channel: Literal["email", "phone"] | None = None
    language: Language | None = None
    verified: bool = True


class ContactPatch(_Body):
    name: str | None = Field(None, max_length=300)
    email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    phone: str | None = Field(None, max_length=MAX_PHONE)
    role: str | None = Field(None, max_length=200)
    preferred_channel: Literal["email", "phone"] | None = None
    language: Language | None = None
    verified: bool | None = None


class SiteIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field("", max_length=MAX_TEXT)
    access_notes: str = Field("", max_length=MAX_NOTES)


class SitePatch(_Body):
    name: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=MAX_TEXT)
    access_notes: str | None = Field(None, max_length=MAX_NOTES)


class EquipmentIn(_Body):
    customer_id: int = Field(ge=1, le=MAX_ID)
    site_id: int | None = Field(None, ge=1, le=MAX_ID)
    serial: str = Field(min_length=1, max_length=100)
    model: str = Field("", max_length=200)
    description: str = Field("", max_length=MAX_TEXT)
    installed_on: date | None = None
    warranty_until: date | None = None
    notes: str = Field("", max_length=MAX_NOTES)


class EquipmentPatch(_Body):
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    site_id: int | None = Field(None, ge=1, le=MAX_ID)
    serial: str | None = Field(None, max_length=100)
    model: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=MAX_TEXT)
    installed_on: date | None = None
    warranty_until: date | None = None
    notes: str | None = Field(None, max_length=MAX_NOTES)


class NamesIn(_Body):
    en: str = Field("", max_length=100)
    it: str = Field("", max_length=100)
    ro: str = Field("", max_length=100)


class RequestTypeIn(_Body):
    code: str = Field(min_length=1, max_length=50)
    names: NamesIn = Field(default_factory=NamesIn)
    default_priority: Priority = Priority.NORMAL
    default_assignees: list[str] = Field(default_factory=list, max_length=MAX_ASSIGNEES)
    # The type's own SLA for cases no contract gives one (null: the [sla] defaults).
    response_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    resolution_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    # Whether its cases end with the customer's closing mail (null: as configured).
    customer_closing_mail: bool | None = None


class RequestTypePatch(_Body):
    names: NamesIn | None = None
    default_priority: Priority | None = None
    default_assignees: list[str] | None = Field(None, max_length=MAX_ASSIGNEES)
    response_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    resolution_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    customer_closing_mail: bool | None = None


class MergeIn(_Body):
    into: int = Field(ge=1, le=MAX_ID)
