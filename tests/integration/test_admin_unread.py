"""What changed since each operator last looked, over HTTP against the real daemon:
new customer mail marked per operator, and the list ordered by last activity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from admin_harness import add_operator, logged_in
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon

from nexusmail.clock import FakeClock
from nexusmail.tickets import search

ANNA, MARCO = "anna@firm.test", "marco@firm.test"


def mail(subject: str, body: str, *, message_id: str, in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Rossi <rossi@example.it>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def daemon(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data"), clock=clock) as running:
        await add_operator(running, ANNA)
        await add_operator(running, MARCO)
        yield running


def marked(page: str) -> list[int]:
    """The numbers of the listed cases that carry the new-mail marker."""
    found = []
    for item in page.split('<li class="case')[1:]:
        number = int(item.split('<span class="num">#', 1)[1].split("<", 1)[0])
        if ' unread"' in item.split(">", 1)[0]:
            found.append(number)
    return found


async def test_new_mail_is_marked_for_each_operator_until_they_open_the_case(
        daemon: Daemon, clock: FakeClock) -> None:
    """A customer's mail is new to every operator; opening the case clears it for that
    operator only; the customer writing again makes it new again."""
    assert (await daemon.send(mail("Caldaia", "Non parte.", message_id="c1@x.it")))[0] == 250
    assert (await daemon.send(mail("Tubo", "Perde.", message_id="c2@x.it")))[0] == 250
    clock.advance(timedelta(minutes=1))
    async with logged_in(daemon, ANNA) as anna, logged_in(daemon, MARCO) as marco:
        assert marked((await anna.get("/")).text) == [2, 1]
        assert (await anna.get("/interventions/1")).status_code == 200
        assert marked((await anna.get("/")).text) == [2]
        assert marked((await marco.get("/")).text) == [2, 1]
        clock.advance(timedelta(minutes=5))
        again = mail("Re: Caldaia", "Ancora ferma.", message_id="c3@x.it",
                     in_reply_to="c1@x.it")
        assert (await daemon.send(again))[0] == 250
        assert marked((await anna.get("/")).text) == [1, 2]
        assert "new mail" in (await anna.get("/")).text


async def test_the_list_follows_activity_and_pages_through_it(
        daemon: Daemon, clock: FakeClock) -> None:
    """By default the case that moved last is first; `sort=number` lists by number;
    paging by activity walks every case once, forward and back."""
    for n in range(1, 6):
        clock.advance(timedelta(minutes=1))
        assert (await daemon.send(mail(f"Guasto {n}", "Non va.", message_id=f"g{n}@x.it")))[0] \
            == 250
    clock.advance(timedelta(minutes=1))
    follow_up = mail("Re: Guasto 2", "Ancora.", message_id="g2b@x.it", in_reply_to="g2@x.it")
    assert (await daemon.send(follow_up))[0] == 250
    async with logged_in(daemon, ANNA) as anna:
        listing = (await anna.get("/")).text
        assert _numbers(listing)[:2] == [2, 5]
        assert _numbers((await anna.get("/?sort=number")).text) == [5, 4, 3, 2, 1]
        async with daemon.running.store.read() as conn:
            first = await search.list_page(conn, search.ListFilter(), order="activity", limit=2)
            second = await search.list_page(conn, search.ListFilter(), order="activity",
                                            limit=2, before=first.older)
            third = await search.list_page(conn, search.ListFilter(), order="activity",
                                           limit=2, before=second.older)
            back = await search.list_page(conn, search.ListFilter(), order="activity",
                                          limit=2, after=third.newer)
        seen = [r["number"] for page in (first, second, third) for r in page.rows]
        assert seen[:2] == [2, 5]
        assert sorted(seen) == [1, 2, 3, 4, 5]
        assert [r["number"] for r in back.rows] == [r["number"] for r in second.rows]
        assert third.older is None


def _numbers(page: str) -> list[int]:
    return [int(part.split("<", 1)[0]) for part in page.split('<span class="num">#')[1:]]
