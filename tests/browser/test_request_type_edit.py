"""A request type edited in a real browser: an operator opens it from the list, gives it
an Italian name, a response time, no closing mail and a default technician, and the list
shows the change."""

from __future__ import annotations

from admin_harness import add_employees, add_operator, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Page, expect

OPERATOR = "anna@firm.test"


async def test_a_request_type_is_edited_from_the_list(daemon: Daemon, page: Page) -> None:
    """The code in the list opens the type's page; its form, without any script, saves
    the names, hours, closing mail and ticked technician, and the list shows them."""
    await add_operator(daemon, OPERATOR)
    await add_employees(daemon, ("luca@firm.test", "Luca Neri", "it"))
    await log_in_browser(page, OPERATOR)

    await page.click("nav a:has-text('Request types')")
    await page.click("table.request-types a:has-text('service_schedule')")
    form = page.locator("form.edit-request-type")
    await form.locator("input[name=name_it]").fill("Manutenzione periodica")
    await form.locator("input[name=response_hours]").fill("1.5")
    await form.locator("select[name=customer_closing_mail]").select_option("no")
    await form.locator("label:has-text('Luca Neri') input[name=default_assignees]").check()
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Request type service_schedule saved.")
    await expect(form.locator("input[name=response_hours]")).to_have_value("1.5")

    await page.click("nav a:has-text('Request types')")
    row = page.locator("table.request-types tr:has-text('service_schedule')")
    await expect(row).to_contain_text("Manutenzione periodica")
    await expect(row).to_contain_text("luca@firm.test")
    await expect(row).to_contain_text("Not sent")
