"""Teams and action sequences in a real browser: an operator makes a team and a
two-step sequence from their pages, edits both, starts the sequence from a customer's
thread and sees its plan there with step 1 mailed to the team."""

from __future__ import annotations

from pathlib import Path

from admin_harness import add_employees, add_operator, customer_mail, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Page, expect

OPERATOR = "anna@firm.test"
LUCA, ION, MARCO = "luca@firm.test", "ion@firm.test", "marco@firm.test"


async def test_a_team_and_a_sequence_made_edited_and_started_from_a_thread(
        daemon: Daemon, page: Page, screenshot_dir: Path) -> None:
    """The team page creates "Caldaie" of Luca and Ion, then adds Marco; the sequence
    page creates MAN-1 (a call for the team, postponed 2 days; a visit for Luca), the
    edit adds a third step; the thread starts it: the plan shows step 1 assigned to the
    team and due today, the others planned, and three assignment mails are queued."""
    await add_operator(daemon, OPERATOR)
    await add_employees(daemon, (LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro"),
                        (MARCO, "Marco Neri", "en"))
    assert (await daemon.send(customer_mail("Manutenzione caldaia", "La manutenzione annua."),
                              sender="cliente@example.it"))[0] == 250
    await log_in_browser(page, OPERATOR)

    await page.click("nav a:has-text('Teams')")
    await expect(page.locator("h1")).to_have_text("Teams")
    form = page.locator("form.new-team")
    await form.locator("input[name=name]").fill("Caldaie")
    await form.locator(f"input[value='{LUCA}']").check()
    await form.locator(f"input[value='{ION}']").check()
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Team Caldaie saved.")
    await page.locator(f"form.team-members input[value='{MARCO}']").check()
    await page.locator("form.team-members button[type=submit]").click()
    await page.click("nav a:has-text('Teams')")
    await expect(page.locator("table.teams")).to_contain_text(f"{ION}, {LUCA}, {MARCO}")

    await page.click("nav a:has-text('Sequences')")
    form = page.locator("form.new-sequence")
    await form.locator("input[name=code]").fill("MAN-1")
    await form.locator("input[name=description]").fill("Annual maintenance")
    await form.locator("select[name=assignee_1]").select_option("team:Caldaie")
    await form.locator("input[name=action_1]").fill("call")
    await form.locator("input[name=hours_1]").fill("0,25")
    await form.locator("textarea[name=notes_1]").fill("Agree a day")
    await form.locator("input[name=postpone_1]").fill("2")
    await form.locator("select[name=assignee_2]").select_option(f"employee:{LUCA}")
    await form.locator("input[name=action_2]").fill("visit")
    await form.locator("input[name=hours_2]").fill("2")
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Sequence MAN-1 saved.")
    edit = page.locator("form.edit-sequence")
    await expect(edit.locator("input[name=action_2]")).to_have_value("visit")
    await edit.locator("select[name=assignee_3]").select_option(f"employee:{MARCO}")
    await edit.locator("input[name=action_3]").fill("quote")
    await edit.locator("button[type=submit]").click()
    await page.click("nav a:has-text('Sequences')")
    await expect(page.locator("ol.sequence-plan li")).to_have_count(3)
    await page.screenshot(path=screenshot_dir / "admin-sequences.png", full_page=True)

    await page.goto("/interventions/1")
    start = page.locator("form.start-sequence")
    await start.locator("select[name=code]").select_option("MAN-1")
    await start.locator("button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("Sequence MAN-1 started")
    rows = page.locator("table.sequence-steps tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("team Caldaie")
    await expect(rows.nth(0)).to_contain_text("assigned")
    await expect(rows.nth(1)).to_contain_text("planned")
    await expect(page.locator("form.start-sequence")).to_have_count(0)
    await page.screenshot(path=screenshot_dir / "admin-thread-sequence.png", full_page=True)
    queued = await daemon.query("SELECT recipient FROM outbox WHERE kind = 'assignment'"
                                " ORDER BY recipient")
    assert queued == [(ION,), (LUCA,), (MARCO,)]
