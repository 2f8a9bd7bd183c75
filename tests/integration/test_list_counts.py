"""The admin list's counts per filter, over HTTP against the real daemon: each count
matches the cases its link lists, and new mail is counted per operator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from admin_harness import add_operator, customer_mail, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.tickets.list_counts import list_counts


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        yield running


def counts(page: str) -> dict[str, str]:
    """Each count link's target and figure, from the list's HTML."""
    block = re.search(r'<nav class="counts".*?</nav>', page, flags=re.S)
    assert block, "the list shows its counts"
    return {href: figure for href, figure in re.findall(
        r'<a href="([^"]+)"[^>]*>[^<]*<b>([^<]+)</b>', block.group(0))}


async def test_counts_follow_the_cases_and_each_operators_reading(daemon: Daemon) -> None:
    """Two new unassigned cases count as open and unassigned; the one an operator
    opened no longer counts as new mail for them, but still does for a colleague, and
    the new-mail link lists only what they have not opened."""
    await add_operator(daemon, "anna@firm.test")
    await add_operator(daemon, "bruno@firm.test")
    for subject in ("Caldaia in blocco", "Perdita in cantina"):
        assert (await daemon.send(customer_mail(subject, "Aiuto.")))[0] == 250
    async with logged_in(daemon, "anna@firm.test") as anna:
        before = counts((await anna.get("/")).text)
        assert before["/?status=open"] == "2"
        assert before["/?status=on_hold"] == "0"
        assert before["/?unread=1"] == "2"
        assert before["/?attention=unassigned"] == "2"
        assert (await anna.get("/interventions/1")).status_code == 200
        after = (await anna.get("/")).text
        assert counts(after)["/?unread=1"] == "1"
        unread = (await anna.get("/?unread=1")).text
        assert "Perdita in cantina" in unread
        assert "Caldaia in blocco" not in unread
    async with logged_in(daemon, "bruno@firm.test") as bruno:
        assert counts((await bruno.get("/")).text)["/?unread=1"] == "2"



async def test_a_count_stops_past_its_cap(daemon: Daemon) -> None:
    """Counting stops one past the cap, so a count never walks more cases than that;
    the list shows such a figure as the cap and a plus."""
    operator_id = await add_operator(daemon, "anna@firm.test")
    for subject in ("Caldaia in blocco", "Perdita in cantina", "Radiatore freddo"):
        assert (await daemon.send(customer_mail(subject, "Aiuto.")))[0] == 250
    async with daemon.running.store.read() as conn:
        capped = await list_counts(conn, operator_id, cap=2)
        exact = await list_counts(conn, operator_id)
    assert capped.statuses["open"] == 3  # one past the cap of 2: "more than 2"
    assert exact.statuses["open"] == 3
    assert capped.statuses["on_hold"] == 0
    async with logged_in(daemon, "anna@firm.test") as anna:
        assert counts((await anna.get("/")).text)["/?status=open"] == "3"
