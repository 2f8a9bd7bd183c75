"""A customer writing from a plus-address of their own (rossi+ufficio@ for rossi@)
about a case they take part in: the mail joins that case's thread, as it would from
the plain address, rather than opening a new case beside it."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon


def mail(sender: str, subject: str, message_id: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Mario Rossi <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(body)
    return message.as_bytes()


async def test_a_participants_plus_address_follows_up_the_tagged_case(
    tmp_path: Path, relay: Controller
) -> None:
    """rossi@ opens case 1; a mail from rossi+ufficio@ tagged [#1] (no references) is a
    follow-up of case 1; a stranger's mail with the same tag still opens a new case."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as daemon:
        first = mail("rossi@example.it", "Caldaia in blocco", "p1@example.it",
                     "La caldaia va in blocco ogni mattina.")
        assert (await daemon.send(first, sender="rossi@example.it"))[0] == 250
        again = mail("rossi+ufficio@example.it", "Re: [#1] Caldaia in blocco",
                     "p2@example.it", "Vi scrivo dall'ufficio: ancora in blocco.")
        assert (await daemon.send(again, sender="rossi+ufficio@example.it"))[0] == 250
        other = mail("bianchi@example.it", "Re: [#1] Caldaia in blocco", "p3@example.it",
                     "Anche da noi la caldaia è in blocco.")
        assert (await daemon.send(other, sender="bianchi@example.it"))[0] == 250
        rows = await daemon.query(
            "SELECT sender, outcome, intervention_number FROM inbound ORDER BY id")
    assert [tuple(r) for r in rows] == [("rossi@example.it", "new_request", 1),
                                        ("rossi+ufficio@example.it", "follow_up", 1),
                                        ("bianchi@example.it", "new_request", 2)]
