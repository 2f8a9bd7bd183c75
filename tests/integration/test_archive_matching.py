"""Inbound mail matched to the customer archive, over real SMTP and checked through the
JSON API: a known contact's mail goes to their customer, a new person at a customer's
domain becomes its new unverified contact, free mail never matches a domain, and a serial
of the customer's machines in the subject links the machine and its site."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock, iso
from nexusmail.storage.connections import WriteTx

OWNER = "dispatch@firm.test"


def mail(sender: str, subject: str, body: str = "La caldaia non parte.",
         name: str = "Mario Rossi") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="example.it")
    msg.set_content(body)
    return msg.as_bytes()


def seed(tx: WriteTx) -> None:
    """Rossi Srl (domain rossi-srl.it, contact mario@, boiler AB1234 at its warehouse),
    and Bianchi, known only by its own address, with a machine of its own."""
    now = iso(SystemClock().now())
    # Ids come from insertion order, as on an empty store they do on both stores (a
    # PostgreSQL identity does not move past an id given by hand, SQLite's rowid does).
    tx.execute("INSERT INTO customers (name, tax_id, verified, owner, created_at)"
               " VALUES ('Rossi Srl', 'IT01234567890', 1, 'anna@firm.test', ?)", (now,))
    tx.execute("INSERT INTO customer_domains (domain, customer_id) VALUES ('rossi-srl.it', 1)")
    tx.execute("INSERT INTO contacts (customer_id, name, email, verified, created_at)"
               " VALUES (1, 'Mario Rossi', 'mario@rossi-srl.it', 1, ?)", (now,))
    tx.execute("INSERT INTO sites (customer_id, name, address, created_at, updated_at)"
               " VALUES (1, 'Magazzino', 'Via Po 1, Torino', ?, ?)", (now, now))
    tx.execute("INSERT INTO equipment (customer_id, site_id, serial, model, created_at,"
               " updated_at) VALUES (1, 1, 'AB1234', 'ecoTEC', ?, ?)", (now, now))
    tx.execute("INSERT INTO customers (name, email, verified, created_at)"
               " VALUES ('Bianchi', 'ufficio@bianchi.it', 1, ?)", (now,))
    tx.execute("INSERT INTO equipment (customer_id, serial, created_at, updated_at)"
               " VALUES (2, 'ZX9876', ?, ?)", (now, now))


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", customers={"default_owner": OWNER})
    async with running_daemon(settings) as running:
        await running.running.store.write(seed)
        yield running


async def received(daemon: Daemon, raw: bytes) -> dict[str, Any]:
    """Send `raw` over SMTP; the intervention it opened, as the API shows it."""
    code, _ = await daemon.send(raw)
    assert code == 250
    [(number,)] = await daemon.query("SELECT max(number) FROM interventions")
    store = daemon.running.store
    token = await store.write(partial(create_token, name="t", now=SystemClock().now()))
    async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1") as client:
        response = await client.get(f"/interventions/{number}",
                                    headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_mail_from_a_known_contact(daemon: Daemon) -> None:
    """A contact's address (in any case) opens the case for their customer, as them."""
    case = await received(daemon, mail("Mario@Rossi-SRL.it", "Caldaia guasta"))
    assert case["customer"]["id"] == 1
    assert case["contact"]["id"] == 1
    assert case["owner"] == "anna@firm.test"
    assert case["channel"] == "mail"
    assert case["equipment"] is None
    assert case["site"] is None


async def test_mail_from_a_customers_own_address(daemon: Daemon) -> None:
    """The customer's own address opens the case for it, with no contact."""
    case = await received(daemon, mail("ufficio@bianchi.it", "Preventivo"))
    assert case["customer"]["id"] == 2
    assert case["contact"] is None


async def test_a_new_person_at_a_known_domain(daemon: Daemon) -> None:
    """An unknown address at a host below a customer's domain becomes a new, unverified
    contact of that customer; a second mail finds the same contact."""
    case = await received(daemon, mail("luca@mail.rossi-srl.it", "Perdita", name="Luca"))
    assert case["customer"]["id"] == 1
    assert case["customer"]["verified"] is True
    assert case["contact"]["email"] == "luca@mail.rossi-srl.it"
    assert case["contact"]["name"] == "Luca"
    assert case["contact"]["verified"] is False
    again = await received(daemon, mail("luca@mail.rossi-srl.it", "Ancora", name="Luca"))
    assert again["contact"]["id"] == case["contact"]["id"]
    assert await daemon.query("SELECT count(*) FROM customers") == [(2,)]


async def test_mail_from_free_mail_is_a_new_customer(daemon: Daemon) -> None:
    """A gmail address matches no customer's domain: a new unverified customer owned by
    the configured default owner, even when it names another customer's serial."""
    case = await received(daemon, mail("rossi.mario@gmail.com", "Caldaia AB1234 ferma"))
    assert case["customer"]["id"] not in (1, 2)
    assert case["customer"]["verified"] is False
    assert case["customer"]["owner"] == OWNER
    assert case["owner"] == OWNER
    assert case["contact"]["email"] == "rossi.mario@gmail.com"
    assert case["equipment"] is None


async def test_a_serial_in_the_subject_links_machine_and_site(daemon: Daemon) -> None:
    """A serial of the customer's machines written as a word in the subject links the
    machine and its site; another customer's serial in the body does not."""
    case = await received(daemon, mail("mario@rossi-srl.it", "Caldaia SN:ab1234 in blocco",
                                       body="Forse come la ZX9876 di Bianchi?"))
    assert case["equipment"]["id"] == 1
    assert case["equipment"]["serial"] == "AB1234"
    assert case["site"]["id"] == 1
    assert case["site"]["address"] == "Via Po 1, Torino"


async def test_a_serial_inside_a_longer_code_links_nothing(daemon: Daemon) -> None:
    """AB1234 inside AB1234-7 is another machine: nothing is linked."""
    case = await received(daemon, mail("mario@rossi-srl.it", "Guasto AB1234-7"))
    assert case["equipment"] is None
