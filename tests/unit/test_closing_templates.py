"""The customer's closing mail written per request type: the type's own template in the
customer's language, else the general closing mail; a firm's own in templates_dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nexusmail.clock import FakeClock
from nexusmail.config import MailSettings
from nexusmail.dispatch.compose import Composer, OutboxRow

SETTINGS = MailSettings(company_name="Termoidraulica Rossi S.r.l.",
                        support_addresses=("assistenza@rossi.example",))
CONTEXT = {"number": 42, "tag": "[#42]", "subject": "Caldaia",
           "reports": [{"technician": "Luca Bianchi", "text": "sostituita la scheda"}],
           "total_hours": "2,5 h", "request_type": "service_schedule",
           "request_type_name": "Manutenzione programmata"}


def closing_row(language: str, variant: str | None, **context: Any) -> OutboxRow:
    values = {**CONTEXT, **context}
    if variant is not None:
        values["template_variant"] = variant
    return OutboxRow(id=1, message_id="nm.1@rossi.example", kind="customer_closing",
                     recipient="cliente@example.it", language=language,
                     template="case_resolved", context=values)


def firm_templates(root: Path, files: dict[str, str]) -> MailSettings:
    for name, text in files.items():
        path = root / "mail" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return SETTINGS.model_copy(update={"templates_dir": root})


@pytest.mark.parametrize(("language", "subject_words", "text_words"), [
    ("en", "maintenance done", "scheduled maintenance of your request #42"),
    ("it", "manutenzione eseguita", "manutenzione programmata della sua richiesta #42"),
    ("ro", "revizie efectuată", "revizia programată pentru solicitarea dumneavoastră #42"),
])
def test_the_shipped_maintenance_closing_in_each_language(
    language: str, subject_words: str, text_words: str
) -> None:
    """A scheduled maintenance closes with its own mail in en, it and ro, with the
    reports and the hours of the general one."""
    composed = Composer(SETTINGS, clock=FakeClock()).compose(
        closing_row(language, "closing/service_schedule"))
    assert composed.language == language
    assert subject_words in composed.subject
    assert composed.subject.startswith("Re: [#42] Caldaia")
    assert text_words in composed.body_text
    assert "Luca Bianchi: sostituita la scheda" in composed.body_text
    assert "2,5 h" in composed.body_text


def test_a_type_without_its_own_mail_gets_the_general_one() -> None:
    """No template for the type: the general closing mail, as before."""
    composed = Composer(SETTINGS).compose(closing_row("it", "closing/repair"))
    assert composed.subject == "Re: [#42] Caldaia – completato"
    assert "è stato completato" in composed.body_text


def test_a_firm_writes_its_own_for_a_type(tmp_path: Path) -> None:
    """A firm's closing mail for its type, in templates_dir, is used; without a subject
    of its own it takes the general one."""
    settings = firm_templates(tmp_path, {
        "it/closing/repair.txt.j2": "Riparazione ({{ request_type_name }}) #{{ number }}"
                                    " chiusa. Ore: {{ total_hours }}",
    })
    composed = Composer(settings).compose(
        closing_row("it", "closing/repair", request_type="repair",
                    request_type_name="Riparazione"))
    assert composed.body_text == "Riparazione (Riparazione) #42 chiusa. Ore: 2,5 h\n"
    assert composed.subject == "Re: [#42] Caldaia – completato"
    assert composed.message.get_content_type() == "text/plain"


def test_a_firm_overrides_the_shipped_one(tmp_path: Path) -> None:
    """templates_dir wins file by file over the packaged closing mail of a type."""
    settings = firm_templates(tmp_path, {
        "en/closing/service_schedule.subject.j2": "{{ tag }} Service visit report",
        "en/closing/service_schedule.txt.j2": "Our own words for #{{ number }}.",
    })
    composed = Composer(settings).compose(closing_row("en", "closing/service_schedule"))
    assert composed.subject == "[#42] Service visit report"
    assert composed.body_text == "Our own words for #42.\n"


def test_the_customers_language_comes_before_the_type(tmp_path: Path) -> None:
    """A type written only in English: an Italian customer gets the Italian general mail,
    an unknown language the English one of the type."""
    settings = firm_templates(tmp_path, {"en/closing/repair.txt.j2": "Repair #{{ number }}"})
    composer = Composer(settings)
    italian = composer.compose(closing_row("it", "closing/repair"))
    assert "è stato completato" in italian.body_text
    german = composer.compose(closing_row("de", "closing/repair"))
    assert (german.language, german.body_text) == ("en", "Repair #42\n")


@pytest.mark.parametrize("variant", ["closing/../../etc/passwd", "../closing/repair",
                                     "closing/Repair", "closing", "closing/a/b", 42, ""])
def test_a_variant_that_names_no_plain_file_is_ignored(tmp_path: Path, variant: Any) -> None:
    """Anything but `folder/code` in plain characters names no file: the general mail."""
    settings = firm_templates(tmp_path, {"it/closing/repair.txt.j2": "Riparazione"})
    composed = Composer(settings).compose(closing_row("it", variant))
    assert "è stato completato" in composed.body_text
