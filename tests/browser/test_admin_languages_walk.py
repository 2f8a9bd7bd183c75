"""The operators' desk in a real browser, in each operator's language: an Italian, a
Romanian and an English operator walk every page the navigation offers plus a thread,
a customer's card, a machine's card, a schedule, an employee's card, their settings and
an error page, and read no interface text in a language other than their own."""

from __future__ import annotations

import re

import pytest
from admin_harness import log_in_browser
from admin_languages import english_in_text, operator_speaking, seed_desk
from daemon_harness import Daemon
from playwright.async_api import Page

from nexusmail.i18n import LANGUAGE_NAMES, translations

# Pages that hang off a record rather than the navigation; 999 is a case that does not
# exist, so the error page is walked too.
RECORD_PAGES = ["/interventions/1", "/customers/1", "/equipment/1", "/schedules/1",
                "/request-types/service_schedule",
                "/employees/1", "/settings", "/interventions/999"]
HEADINGS = {"it": "Interventi", "ro": "Intervenții", "en": "Interventions"}
ISO_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b")
LOCAL_DATE = re.compile(r"\b\d\d/\d\d/\d{4}\b")
# A raw stored value such as `same_day` or `in_progress` shown as it is.
RAW_VALUE = re.compile(r"(?<![\w@.-])[a-z]+_[a-z_]+(?![\w@-])")
# Texts of the seeded customer (Italian whatever the operator's language).
CUSTOMER_TEXTS = ("Caldaia in blocco", "Non parte.", "Manutenzione caldaia",
                  "Condominio Verdi", "Sede", "Vaillant", "Rossi Srl")


async def visible_text(page: Page) -> tuple[str, str]:
    """The body's rendered text without the mails' own subjects and texts (the
    acknowledgement went out in the customer's language), the canned replies' titles
    (texts for customers, offered in every language) and codes shown as codes (a
    request type's `service_schedule`); and the placeholder, title and alt texts."""
    text = await page.inner_text("body")
    mail_and_codes = "div.body, div.subject, select[name=canned], code"
    for aside in await page.locator(mail_and_codes).all():
        text = text.replace(await aside.inner_text(), " ")
    attributes = await page.evaluate("""() => Array.from(
        document.querySelectorAll('[placeholder], [title], [alt]'),
        e => [e.getAttribute('placeholder'), e.getAttribute('title'), e.getAttribute('alt')]
             .filter(v => v).join(' ')).join(' ')""")
    return text, str(attributes)


def foreign_left(text: str) -> list[str]:
    """Italian or Romanian interface texts of ours on an English page."""
    for customer_text in CUSTOMER_TEXTS:
        text = text.replace(customer_text, " ")
    left = []
    for language in ("it", "ro"):
        catalogue = translations(language)
        for english in catalogue._catalog:  # type: ignore[attr-defined]  # gettext's table
            source = english[0] if isinstance(english, tuple) else english
            if not source or "%" in source or "{" in source or "<" in source:
                continue
            translated = catalogue.gettext(source)
            if (translated == source or len(translated) < 5
                    or translated in LANGUAGE_NAMES.values()):
                continue
            if re.search(rf"(?<![\w-]){re.escape(translated)}(?![\w-])", text):
                left.append(f"{language}: {translated}")
    return left


@pytest.mark.parametrize("language", ["it", "ro", "en"])
async def test_every_page_reads_in_the_operators_language(
        daemon: Daemon, page: Page, language: str) -> None:
    """Each page reachable from the navigation and each record page, the error page
    included, is marked and written in the operator's language: no English text of ours
    left for an Italian or Romanian operator, no Italian or Romanian one for an English
    operator, no raw stored value for anyone; Italian and Romanian pages give dates as
    dd/mm/yyyy and never as ISO dates."""
    await seed_desk(daemon)
    email = f"op-{language}@firm.test"
    await operator_speaking(daemon, email, language)
    await log_in_browser(page, email, heading=HEADINGS[language])

    navigation = [href for href in await page.locator("header nav a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))") if href]
    assert len(navigation) >= 8, navigation
    dated_pages = 0
    for path in [*navigation, *RECORD_PAGES]:
        response = await page.goto(path)
        assert response is not None, path
        assert response.status in (200, 404), path
        assert await page.get_attribute("html", "lang") == language, path
        text, attributes = await visible_text(page)
        if language == "en":
            assert foreign_left(text + " " + attributes) == [], path
        else:
            assert english_in_text(text, attributes, language) == [], path
            assert ISO_DATE.findall(text) == [], path
            dated_pages += bool(LOCAL_DATE.search(text))
        assert RAW_VALUE.findall(text) == [], path
    if language != "en":
        assert dated_pages >= 3, "the list, the thread and the cards show dd/mm/yyyy dates"
    await page.goto("/interventions/999")
    assert await page.locator("h1").count() == 1, "the error page has our layout"
