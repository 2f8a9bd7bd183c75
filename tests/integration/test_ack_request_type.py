"""The mails about a case name its request type: a mail whose subject names a type of
the list gets, at the real SMTP sink, an acknowledgement with that type's name in the
customer's language, and the technician's assignment mail has it in theirs."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.records.request_types import create_request_type
from nexusmail.tickets.cases import add_employee

CUSTOMER = "mario@example.it"


def italian_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Mario Rossi <{CUSTOMER}>"
    mail["To"] = SUPPORT
    mail["Subject"] = "Riparazione caldaia"
    mail["Message-ID"] = "<r1@example.it>"
    mail.set_content("Buongiorno, la caldaia della cucina non si accende più da ieri sera "
                     "e in casa fa molto freddo. Potete mandare un tecnico per la "
                     "riparazione? Grazie mille e cordiali saluti.")
    return mail.as_bytes()


async def test_an_italian_acknowledgement_shows_the_types_italian_name(
    tmp_path: Path, relay: Controller
) -> None:
    """A firm's acknowledgement subject using `request_type_name` reads "Riparazione"
    for an Italian customer whose mail named the type `repair` (English "Repair")."""
    own = tmp_path / "templates" / "mail" / "it"
    own.mkdir(parents=True)
    (own / "acknowledgement.subject.j2").write_text(
        "{{ tag }} {{ request_type_name }} ({{ request_type }})\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"templates_dir": str(tmp_path / "templates")})
    async with running_daemon(settings) as daemon:
        await daemon.running.store.write(lambda tx: create_request_type(tx, {
            "code": "repair", "names": {"en": "Repair", "it": "Riparazione"}}))
        assert (await daemon.send(italian_mail(), sender=CUSTOMER))[0] == 250
        [ack] = await relay.handler.wait_for_async(1)
    assert ack.message()["Subject"] == "[#1] Riparazione (repair)"


async def test_an_assignment_mail_shows_the_type_in_the_technicians_language(
    tmp_path: Path, relay: Controller
) -> None:
    """A Romanian technician assigned to the Italian customer's `repair` case reads the
    type's Romanian name in their assignment mail's subject."""
    own = tmp_path / "templates" / "mail" / "ro"
    own.mkdir(parents=True)
    (own / "assignment.subject.j2").write_text(
        "{{ tag }} {{ request_type_name }}\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"templates_dir": str(tmp_path / "templates")})
    async with running_daemon(settings) as daemon:
        store = daemon.running.store
        await store.write(lambda tx: create_request_type(tx, {
            "code": "repair", "names": {"en": "Repair", "it": "Riparazione",
                                        "ro": "Reparație"}}))
        await store.write(lambda tx: add_employee(
            tx, email="ion@firm.test", name="Ion", language="ro", now=SystemClock().now()))
        assert (await daemon.send(italian_mail(), sender=CUSTOMER))[0] == 250
        await relay.handler.wait_for_async(1)
        token = await store.write(lambda tx: create_token(tx, "t", SystemClock().now()))
        async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1",
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            made = await api.post("/interventions/1/assignments",
                                  json={"employee_email": "ion@firm.test"})
            assert made.status_code == 201, made.text
        mails = await relay.handler.wait_for_async(2)
    assert mails[1].message()["Subject"] == "[#1] Reparație"
