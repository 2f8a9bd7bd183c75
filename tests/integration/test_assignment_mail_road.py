"""The assignment mail as the technician receives it, at a real SMTP sink: the
operator's instructions, the site's address and access notes, the contact's name and
phone, the machine's model, serial and warranty, and its last three interventions."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import Daemon, make_settings, running_daemon
from smtp_sink import CaptureHandler

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock, iso
from nexusmail.storage.connections import WriteTx


def seed(tx: WriteTx) -> None:
    """Rossi with its boiler room (site 1), boiler AB1234 there under warranty until
    2099, four earlier cases on it; contact Mario; technician Luca."""
    now = iso(SystemClock().now())
    tx.execute("INSERT INTO customers (id, name, email, verified, created_at)"
               " VALUES (1, 'Rossi Srl', 'info@rossi-srl.it', 1, ?)", (now,))
    tx.execute("INSERT INTO contacts (id, customer_id, name, email, phone, verified,"
               " created_at) VALUES (1, 1, 'Mario Rossi', 'mario@rossi-srl.it',"
               " '+39 333 1234567', 1, ?)", (now,))
    tx.execute("INSERT INTO sites (id, customer_id, name, address, access_notes, created_at,"
               " updated_at) VALUES (1, 1, 'Centrale termica', 'Via Po 1, Torino',"
               " 'Chiavi dal portiere', ?, ?)", (now, now))
    tx.execute("INSERT INTO equipment (id, customer_id, site_id, serial, model,"
               " warranty_until, created_at, updated_at)"
               " VALUES (1, 1, 1, 'AB1234', 'Vaillant ecoTEC', '2099-12-31', ?, ?)",
               (now, now))
    for n, (subject, reason) in enumerate([("Prima", "a"), ("Seconda", "b"),
                                           ("Terza", "valvola sostituita"),
                                           ("Quarta", "bruciatore pulito")], 1):
        tx.execute("INSERT INTO interventions (customer_id, equipment_id, subject, status,"
                   " status_reason, source, created_at, updated_at)"
                   " VALUES (1, 1, ?, 'closed', ?, 'api', ?, ?)",
                   (subject, reason, f"2025-0{n}-10T09:00:00Z", now))
    tx.execute("INSERT INTO employees (email, name, language, created_at)"
               " VALUES ('luca@firm.test', 'Luca', 'it', ?)", (now,))


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as running:
        await running.running.store.write(seed)
        yield running


async def test_the_assignment_mail_has_what_the_road_needs(daemon: Daemon,
                                                           sink: CaptureHandler) -> None:
    """A phone request about boiler AB1234, assigned with a note: the mail at the sink
    names the site and its access, the contact and phone, the model, serial and warranty,
    and the machine's three latest earlier cases with how they ended, not the oldest."""
    store = daemon.running.store
    token = await store.write(partial(create_token, name="t", now=SystemClock().now()))
    async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1", headers={
            "Authorization": f"Bearer {token}"}) as client:
        created = await client.post("/interventions", json={
            "customer_email": "info@rossi-srl.it", "subject": "Caldaia in blocco",
            "description": "Chiama Mario.", "contact_email": "mario@rossi-srl.it",
            "equipment_serial": "AB1234", "channel": "phone"})
        assert created.status_code == 201, created.text
        number = created.json()["number"]
        assigned = await client.post(f"/interventions/{number}/assignments", json={
            "employee_email": "luca@firm.test", "note": "Portare la valvola di ricambio."})
        assert assigned.status_code == 201, assigned.text
    mails = await sink.wait_for_async(2, within_s=20)
    [mail] = [m for m in mails if m.rcpt_tos == ["luca@firm.test"]]
    message: Any = email.message_from_bytes(mail.data, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    for fact in ["Portare la valvola di ricambio.", "Centrale termica", "Via Po 1, Torino",
                 "Chiavi dal portiere", "Mario Rossi", "+39 333 1234567", "Vaillant ecoTEC",
                 "AB1234", "Garanzia: fino al 31 dicembre 2099", "Quarta",
                 "bruciatore pulito", "Terza", "valvola sostituita", "Seconda"]:
        assert fact in text, fact
    assert "Prima" not in text
    assert text.index("Quarta") < text.index("Terza") < text.index("Seconda")
