"""Contracts on the customer card in a real browser: an operator adds one with its
hours and the customer's machine ticked, sees it listed with the machine, then edits
its response time from the card."""

from __future__ import annotations

from admin_harness import add_operator, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Page, expect

from nexusmail.clock import SystemClock
from nexusmail.records.equipment import add_equipment
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import find_or_create_customer

OPERATOR = "anna@firm.test"
SERIAL = "VC-2041-77Q"


async def test_a_contract_is_added_and_edited_on_the_card(daemon: Daemon,
                                                          page: Page) -> None:
    """The add form takes code, type, dates, hours (a fraction) and the ticked machine;
    the card lists the contract with its hours and its machine; the edit form under
    the table saves a new response time."""
    await add_operator(daemon, OPERATOR)
    clock = SystemClock()

    def customer_with_machine(tx: WriteTx) -> int:
        customer = find_or_create_customer(tx, email="info@rossi.it", name="Rossi Srl",
                                           now=clock.now()).customer_id
        add_equipment(tx, {"customer_id": customer, "serial": SERIAL}, now=clock.now())
        return customer

    customer = await daemon.running.store.write(customer_with_machine)
    await log_in_browser(page, OPERATOR)
    await page.goto(f"/customers/{customer}")

    form = page.locator("form.add-contract")
    await form.locator("input[name=code]").fill("GOLD-1")
    await form.locator("input[name=type]").fill("maintenance")
    await form.locator("input[name=valid_from]").fill("2026-01-01")
    await form.locator("input[name=response_hours]").fill("1.5")
    await form.locator("input[name=prepaid_hours]").fill("20")
    await form.locator(f"label:has-text('{SERIAL}') input[name=equipment_ids]").check()
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Contract added.")
    table = page.locator("table.contracts")
    await expect(table).to_contain_text("GOLD-1")
    await expect(table).to_contain_text("20 h")
    await expect(table.locator(".contract-links")).to_contain_text(SERIAL)

    edit = page.locator("details.edit-contract")
    await edit.locator("summary").click()
    await edit.locator("input[name=response_hours]").fill("4")
    await edit.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Contract saved.")
    await expect(page.locator("table.contracts")).to_contain_text("4 h")
