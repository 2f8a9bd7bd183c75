"""How a page words pydantic's refusals: each error type as a catalogued phrase naming
the field by its label in the reader's language; our own checks by their message; an
unknown type as a plain "not valid", never pydantic's English."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from nexusmail.admin.pages.form_errors import validation_message
from nexusmail.i18n import msg


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_days: int = Field(0, ge=0)
    first_date: date | None = None
    verified: bool = False
    subject: str = "x"
    customer_email: str = "a@b.it"
    link: HttpUrl | None = None

    @field_validator("customer_email")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(msg("is not an email address"))
        return value


def shown(values: dict[str, object], language: str) -> str:
    with pytest.raises(ValidationError) as refused:
        _Form.model_validate(values)
    return validation_message(refused.value).translated(language)


@pytest.mark.parametrize(("values", "language", "expected"), [
    ({"lead_days": "tre"}, "it", "Giorni di anticipo per aprirla: deve essere un numero."),
    ({"lead_days": -1}, "it", "Giorni di anticipo per aprirla: deve essere almeno 0."),
    ({"lead_days": -1}, "ro", "Cu câte zile înainte se deschide: trebuie să fie cel puțin 0."),
    ({"first_date": "2026-13-40"}, "it", "Prima data: deve essere una data (giorno/mese/anno)."),
    ({"first_date": "2026-03-04T10:30"}, "ro",
     "Prima dată: trebuie să fie o dată (zi/lună/an)."),
    ({"verified": "forse"}, "it", "Verificato: deve essere sì o no."),
    ({"subject": None}, "ro", "Subiect: nu este valid."),
    ({"customer_email": "nobody"}, "it", "Email del cliente: non è un indirizzo email"),
    ({"customer_email": "nobody"}, "en", "customer_email: is not an email address"),
    ({"link": "not a url"}, "ro", "link: nu este valid."),
    ({"priorty": "high"}, "it", "priorty: non è un campo di questo modulo."),
])
def test_each_error_type_reads_in_the_readers_language(
    values: dict[str, object], language: str, expected: str
) -> None:
    """The field's label (its key in English, and for a field without a label), then
    the problem in the reader's words."""
    assert shown(values, language) == expected
