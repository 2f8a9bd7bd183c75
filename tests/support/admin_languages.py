"""What the language walks share: a small desk to walk (a case, a schedule, a machine,
a technician), operators who speak a language, and the check that none of our English
interface texts is left on a page in another language.

    await seed_desk(daemon)
    await operator_speaking(daemon, "op-it@firm.test", "it")
    assert english_left(response.text, "it") == []              # a page's HTML
    assert english_in_text(visible, attributes, "it") == []      # a browser's visible text
"""

from __future__ import annotations

import html
import re
from datetime import date

from admin_harness import add_employees, add_operator, customer_mail
from daemon_harness import Daemon

from nexusmail.clock import SystemClock
from nexusmail.i18n import LANGUAGE_NAMES, translations
from nexusmail.records import equipment, sites
from nexusmail.tickets.operators import set_language
from nexusmail.tickets.recurrence import Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule

_TAG = re.compile(r"<[^>]+>")


async def seed_desk(daemon: Daemon) -> None:
    """Employee 1, intervention 1 from customer 1, schedule 1, equipment 1."""
    await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
    assert (await daemon.send(customer_mail("Caldaia in blocco", "Non parte.")))[0] == 250
    now = SystemClock().now()
    spec = ScheduleSpec(customer_email="verdi@example.it", customer_name="Condominio Verdi",
                        subject="Manutenzione caldaia", interval=Interval.MONTHLY,
                        first_date=date(now.year + 1, 1, 10), lead_days=3,
                        contract_ref="C-12")
    await daemon.running.store.write(
        lambda tx: create_schedule(tx, spec, today=now.date(), now=now))
    await daemon.running.store.write(lambda tx: equipment.add_equipment(tx, {
        "customer_id": 1, "serial": "AB-1", "model": "Vaillant", "warranty_until":
        "2099-01-31", "site_id": sites.add_site(tx, 1, {"name": "Sede"}, now=now)},
        now=now))


async def operator_speaking(daemon: Daemon, email: str, language: str) -> None:
    operator_id = await add_operator(daemon, email)
    now = SystemClock().now()
    await daemon.running.store.write(
        lambda tx: set_language(tx, operator_id=operator_id, language=language, now=now))


def english_left(page: str, language: str) -> list[str]:
    """Our English texts (those the catalogue translates differently) still visible
    in a page's HTML, its text and its placeholder, title and alt attributes."""
    # Canned replies are offered in every customer language by their own titles:
    # texts for customers, not the interface.
    page = re.sub(r'<select name="canned">.*?</select>', "", page, flags=re.S)
    visible = html.unescape(_TAG.sub(" ", page))
    attributes = " ".join(html.unescape(v) for v in re.findall(
        r'(?:placeholder|title|alt)="([^"]*)"', page))
    return english_in_text(visible, attributes, language)


def english_in_text(visible: str, attributes: str, language: str) -> list[str]:
    """The same check on text already taken out of the page (a browser's inner text)."""
    catalogue = translations(language)
    seen = visible + " " + attributes
    left = []
    for english in catalogue._catalog:  # type: ignore[attr-defined]  # gettext's own table
        text = english[0] if isinstance(english, tuple) else english
        if not text or "%" in text or "{" in text or "<" in text or len(text) < 4:
            continue
        if catalogue.gettext(text) == text or text in LANGUAGE_NAMES.values():
            continue  # the same word in both languages ("Email"), or a language's own name
        if re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", seen):
            left.append(text)
    return left
