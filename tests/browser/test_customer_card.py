"""The customer archive in a real browser: an operator creates a customer, gives it a
site and a machine from its card, and sees the case a mail about that machine opened
linked to it, on the customer's card and on the machine's."""

from __future__ import annotations

from pathlib import Path

from admin_harness import add_operator, customer_mail, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Page, expect

OPERATOR = "anna@firm.test"
SERIAL = "VC-2041-77Q"


async def test_customer_with_site_and_machine_and_the_case_linked_by_serial(
    daemon: Daemon, page: Page, screenshot_dir: Path
) -> None:
    """New customer from the list's form, a site and a machine from its card; a mail from
    a new person at the customer's domain naming the serial opens a case that the card
    and the machine's history both show, and whose page names the machine, its site
    and the person."""
    await add_operator(daemon, OPERATOR)
    await log_in_browser(page, OPERATOR)

    await page.click("nav a:has-text('Customers')")
    await expect(page.locator("h1")).to_contain_text("Customers")
    form = page.locator("form.new-customer")
    await form.locator("input[name=name]").fill("Rossi Impianti Srl")
    await form.locator("input[name=tax_id]").fill("IT01234567890")
    await form.locator("input[name=email]").fill("info@rossi-impianti.it")
    await form.locator("input[name=mail_domains]").fill("rossi-impianti.it")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("h1")).to_have_text("Rossi Impianti Srl")
    await expect(page.locator(".flash")).to_contain_text("Customer added.")

    site_form = page.locator("form.add-site")
    await site_form.locator("input[name=name]").fill("Magazzino Torino")
    await site_form.locator("input[name=address]").fill("Via Po 3, 10123 Torino")
    await site_form.locator("textarea[name=access_notes]").fill("Chiavi in portineria, 8-12")
    await site_form.locator("button[type=submit]").click()
    await expect(page.locator("table.sites")).to_contain_text("Magazzino Torino")

    machine_form = page.locator("form.add-equipment")
    await machine_form.locator("input[name=serial]").fill(SERIAL)
    await machine_form.locator("input[name=model]").fill("Vaillant ecoTEC plus")
    await machine_form.locator("select[name=site_id]").select_option(label="Magazzino Torino")
    await machine_form.locator("input[name=warranty_until]").fill("2099-09-30")
    await machine_form.locator("button[type=submit]").click()
    await expect(page.locator("table.equipment")).to_contain_text(SERIAL)

    code, _ = await daemon.send(customer_mail(
        f"Caldaia {SERIAL} in blocco", "Buongiorno, la caldaia del magazzino è in blocco.",
        sender="giulia@rossi-impianti.it", name="Giulia Bianchi"),
        sender="giulia@rossi-impianti.it")
    assert code == 250

    await page.reload()
    case = page.locator(".cases .case")
    await expect(case).to_have_count(1)
    await expect(case).to_contain_text(f"Caldaia {SERIAL} in blocco")
    await expect(case.locator(".meta a")).to_have_text(SERIAL)
    await expect(page.locator("table.contacts")).to_contain_text("giulia@rossi-impianti.it")
    await page.screenshot(path=screenshot_dir / "admin-customer.png", full_page=True)

    await page.click(f"table.equipment a:has-text('{SERIAL}')")
    await expect(page.locator("h1")).to_contain_text("Vaillant ecoTEC plus")
    facts = page.locator(".equipment-facts")
    await expect(facts).to_contain_text("Via Po 3, 10123 Torino")
    await expect(facts).to_contain_text("Chiavi in portineria")
    await expect(facts.locator(".state-confirmed")).to_contain_text("in warranty")
    await expect(page.locator(".history .case")).to_contain_text(f"Caldaia {SERIAL}")
    await page.click(".history .case a.title")
    await expect(page.locator("h1")).to_contain_text(f"Caldaia {SERIAL} in blocco")
    await expect(page.locator(".case-equipment")).to_contain_text(SERIAL)
    await expect(page.locator(".case-site")).to_contain_text("Via Po 3, 10123 Torino")
    await expect(page.locator(".case-contact")).to_contain_text("Giulia Bianchi")
