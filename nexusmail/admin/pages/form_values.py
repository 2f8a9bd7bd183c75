"""Typed values read from a page's form: a whole number, a date, an address, each
refused with a catalogued message naming the field (422), never Python's own English
("Invalid isoformat string", "invalid literal for int()")."""

from __future__ import annotations

from datetime import date

from starlette.datastructures import FormData

from nexusmail.admin.pages.base import PageError, form_text
from nexusmail.i18n import msg
from nexusmail.mail.addresses import check_address


def whole_number(form: FormData, name: str, low: int, high: int) -> int | None:
    """The field as a whole number from `low` to `high`; None when left empty."""
    text = form_text(form, name, 10)
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise PageError(422, msg("{field}: should be a whole number from {low} to {high}",
                                 field=name, low=low, high=high))
    return int(text)


def day(form: FormData, name: str) -> date | None:
    """The field as a date (the browser's date input sends YYYY-MM-DD); None when empty."""
    text = form_text(form, name, 10)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise PageError(422, msg("{field}: should be a date", field=name)) from None


def address(form: FormData, name: str) -> str:
    """The field as an email address, lower-cased."""
    text = form_text(form, name, 254)
    try:
        return check_address(text)
    except ValueError:
        raise PageError(422, msg("{field}: is not an email address", field=name)) from None
