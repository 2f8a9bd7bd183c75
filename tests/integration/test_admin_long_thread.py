"""A long thread on the intervention page: the first mail and the latest messages,
with a link to the whole thread (over HTTP against the real daemon)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from admin_harness import add_operator, logged_in
from admin_languages import operator_speaking
from daemon_harness import SUPPORT, make_settings, running_daemon

from nexusmail.admin.pages.thread import SHOWN_LATEST

ANNA, LUCA = "anna@firm.test", "luca@firm.test"


def mail(body: str, *, message_id: str, in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Rossi <rossi@example.it>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Caldaia in blocco"
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg.set_content(body)
    return msg.as_bytes()


async def test_a_long_thread_shows_its_first_mail_and_the_latest_with_a_link_to_all(
        tmp_path: Path) -> None:
    """57 messages (the request, its acknowledgement, 55 follow-ups): the page shows the
    request and the latest 50, says how many are left out, in the operator's language,
    and `?all=1` shows every one."""
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        await add_operator(daemon, ANNA)
        await operator_speaking(daemon, LUCA, "it")
        assert (await daemon.send(mail("la-richiesta", message_id="r@x.it")))[0] == 250
        for n in range(1, 56):
            code, _ = await daemon.send(
                mail(f"seguito-{n:02d}-fine", message_id=f"f{n}@x.it", in_reply_to="r@x.it"))
            assert code == 250
        [(number, messages)] = await daemon.query(
            "SELECT intervention_number, count(*) FROM messages GROUP BY intervention_number")
        assert messages == 57
        async with logged_in(daemon, ANNA) as client:
            short = (await client.get(f"/interventions/{number}")).text
            whole = (await client.get(f"/interventions/{number}?all=1")).text
        async with logged_in(daemon, LUCA) as client:
            italian = (await client.get(f"/interventions/{number}")).text
    hidden = 57 - SHOWN_LATEST - 1
    assert "la-richiesta" in short
    assert "seguito-55-fine" in short
    assert f"seguito-{hidden - 1:02d}-fine" not in short  # the ack is among the hidden
    assert f"seguito-{hidden:02d}-fine" in short
    assert f"{hidden} earlier messages are not shown." in short
    assert "?all=1" in short
    assert all(f"seguito-{n:02d}-fine" in whole for n in range(1, 56))
    assert "earlier messages are not shown" not in whole
    assert "Mostra tutta la conversazione" in italian
