"""The customer archive's admin pages over plain HTTP against the real daemon: the
customers list and search, the card's forms (CSRF like every form), the equipment card
and the request types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from admin_harness import add_operator, csrf_of, customer_mail, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

OPERATOR = "anna@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, OPERATOR)
        yield running


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(daemon, OPERATOR) as opened:
        yield opened


async def post_form(client: httpx.AsyncClient, page_path: str, action: str,
                    data: dict[str, str]) -> httpx.Response:
    token = csrf_of((await client.get(page_path)).text)
    return await client.post(action, data={"csrf_token": token, **data})


async def test_customer_card_is_built_from_its_forms(daemon: Daemon,
                                                     client: httpx.AsyncClient) -> None:
    """A customer added from the list gets contacts, a site and a machine from its card's
    forms; the card and the search show them; the machine's card shows its site."""
    added = await post_form(client, "/customers", "/customers", {
        "name": "Rossi Impianti Srl", "tax_id": "IT0123", "email": "info@rossi.it",
        "mail_domains": "rossi.it rossi.eu", "owner": OPERATOR, "verified": "on"})
    assert added.status_code == 303
    assert added.headers["location"] == "/customers/1"
    assert (await post_form(client, "/customers/1", "/customers/1/contacts", {
        "name": "Giulia Bianchi", "email": "giulia@rossi.it", "phone": "333 1234567",
        "preferred_channel": "phone"})).status_code == 303
    assert (await post_form(client, "/customers/1", "/customers/1/sites", {
        "name": "Magazzino", "address": "Via Po 3, Torino",
        "access_notes": "Chiavi in portineria"})).status_code == 303
    assert (await post_form(client, "/customers/1", "/customers/1/equipment", {
        "serial": "AB-1234X", "model": "Vaillant ecoTEC", "site_id": "1",
        "warranty_until": "2099-12-31"})).status_code == 303
    card = (await client.get("/customers/1")).text
    for shown in ("Rossi Impianti Srl", "rossi.eu, rossi.it", "giulia@rossi.it",
                  "Magazzino", "Chiavi in portineria", "AB-1234X", "Vaillant ecoTEC",
                  "Equipment added."):
        assert shown in card
    found = (await client.get("/customers", params={"q": "giulia"})).text
    assert 'href="/customers/1"' in found
    machine = (await client.get("/equipment/1")).text
    assert "Via Po 3, Torino" in machine
    assert "in warranty until 31 Dec 2099" in machine
    assert await daemon.query("SELECT owner, verified FROM customers") == [(OPERATOR, 1)]


async def test_refused_values_and_clashes_show_the_card_with_the_field(
    client: httpx.AsyncClient
) -> None:
    """A bad value is a 422 and a clash a 409, each showing the form's page with the
    message naming the field; a form without the CSRF token changes nothing (403)."""
    await post_form(client, "/customers", "/customers", {"name": "A", "mail_domains": "a.it"})
    clash = await post_form(client, "/customers", "/customers",
                            {"name": "B", "mail_domains": "a.it"})
    assert clash.status_code == 409
    assert "mail_domains: a.it is a domain of customer 1" in clash.text
    bad = await post_form(client, "/customers/1", "/customers/1/equipment",
                          {"serial": "X 1"})
    assert bad.status_code == 422
    assert "serial: should be one word" in bad.text
    forged = await client.post("/customers/1/sites", data={"name": "Sede"})
    assert forged.status_code == 403
    assert "No sites." in (await client.get("/customers/1")).text


async def test_edit_and_merge_from_the_card(daemon: Daemon, client: httpx.AsyncClient) -> None:
    """The edit form saves every field (an empty one clears); merging sends the operator
    to the customer that stays, which now holds the duplicate's contact."""
    await post_form(client, "/customers", "/customers", {"name": "Verdi", "phone": "02 1"})
    await post_form(client, "/customers", "/customers", {"name": "verdi (mail)"})
    await post_form(client, "/customers/2", "/customers/2/contacts",
                    {"email": "marco@verdi.it"})
    edited = await post_form(client, "/customers/1", "/customers/1", {
        "name": "Condominio Verdi", "phone": "", "language": "it"})
    assert edited.status_code == 303
    assert await daemon.query("SELECT name, phone, language, verified FROM customers"
                              " WHERE id = 1") == [("Condominio Verdi", None, "it", 0)]
    merged = await post_form(client, "/customers/2", "/customers/2/merge", {"into": "1"})
    assert merged.headers["location"] == "/customers/1"
    assert "marco@verdi.it" in (await client.get("/customers/1")).text
    assert "Merged into" in (await client.get("/customers/2")).text


async def test_request_types_page_lists_and_adds(client: httpx.AsyncClient) -> None:
    """The seeded service schedule is listed in three languages; a new type is added,
    with its closing-mail switch shown in the list."""
    page = (await client.get("/request-types")).text
    assert "Manutenzione programmata" in page
    assert "Programare service" in page
    added = await post_form(client, "/request-types", "/request-types", {
        "code": "repair", "name_en": "Repair", "name_it": "Riparazione",
        "default_priority": "high", "customer_closing_mail": "no"})
    assert added.status_code == 303
    listed = (await client.get("/request-types")).text
    assert "Riparazione" in listed
    assert "<td>Not sent</td>" in listed
    again = await post_form(client, "/request-types", "/request-types", {"code": "repair"})
    assert again.status_code == 409


async def test_unknown_records_are_404_pages(client: httpx.AsyncClient) -> None:
    """A customer or machine that does not exist is a 404 page, not an error."""
    assert (await client.get("/customers/42")).status_code == 404
    assert (await client.get("/equipment/42")).status_code == 404


async def test_contacts_and_sites_are_edited_on_the_card(daemon: Daemon,
                                                         client: httpx.AsyncClient) -> None:
    """A contact's and a site's own forms save them; a form may not change another
    customer's contact (422, nothing changed)."""
    await post_form(client, "/customers", "/customers", {"name": "Rossi"})
    await post_form(client, "/customers", "/customers", {"name": "Verdi"})
    await post_form(client, "/customers/1", "/customers/1/contacts",
                    {"name": "Giulia", "email": "g@rossi.it"})
    await post_form(client, "/customers/1", "/customers/1/sites", {"name": "Sede"})
    saved = await post_form(client, "/customers/1", "/customers/1/contacts/1", {
        "name": "Giulia Bianchi", "email": "g@rossi.it", "phone": "333 1",
        "preferred_channel": "phone", "verified": "on"})
    assert saved.status_code == 303
    assert (await post_form(client, "/customers/1", "/customers/1/sites/1", {
        "name": "Sede centrale", "address": "Via Roma 1"})).status_code == 303
    assert await daemon.query("SELECT name, phone, preferred_channel FROM contacts") == [
        ("Giulia Bianchi", "333 1", "phone")]
    assert await daemon.query("SELECT name, address FROM sites") == [
        ("Sede centrale", "Via Roma 1")]
    other = await post_form(client, "/customers/2", "/customers/2/contacts/1",
                            {"name": "Someone else"})
    assert other.status_code == 422
    assert await daemon.query("SELECT customer_id, name FROM contacts") == [
        (1, "Giulia Bianchi")]


async def test_the_list_filters_by_machine(daemon: Daemon, client: httpx.AsyncClient) -> None:
    """`?equipment=SERIAL` (in any case) lists the cases linked to that machine only; the
    machine's card links to it."""
    await post_form(client, "/customers", "/customers",
                    {"name": "Rossi", "email": "info@rossi.it"})
    await post_form(client, "/customers/1", "/customers/1/equipment", {"serial": "AB-77X"})
    for subject in ("Guasto AB-77X stamattina", "Richiesta preventivo"):
        code, _ = await daemon.send(customer_mail(subject, "Grazie.", sender="info@rossi.it"),
                                    sender="info@rossi.it")
        assert code == 250
    listed = (await client.get("/", params={"equipment": "ab-77x"})).text
    assert "Guasto AB-77X stamattina" in listed
    assert "Richiesta preventivo" not in listed
    assert 'href="/?equipment=AB-77X"' in (await client.get("/equipment/1")).text


async def test_the_case_page_links_contact_site_machine_and_type(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """The thread page's form links the case to the customer's machine (its site comes
    with it), a new contact address and a request type; the change is on the thread
    with the operator; another customer's machine is refused naming the field."""
    await post_form(client, "/customers", "/customers",
                    {"name": "Rossi", "email": "info@rossi.it"})
    await post_form(client, "/customers/1", "/customers/1/sites", {"name": "Sede"})
    await post_form(client, "/customers/1", "/customers/1/equipment",
                    {"serial": "AB-1", "site_id": "1"})
    code, _ = await daemon.send(customer_mail("Non parte", "Aiuto.", sender="info@rossi.it"),
                                sender="info@rossi.it")
    assert code == 250
    saved = await post_form(client, "/interventions/1", "/interventions/1/links", {
        "contact_email": "Luca@Rossi.it", "equipment_serial": "AB-1", "site_id": "",
        "request_type": "service_schedule", "channel": "phone"})
    assert saved.status_code == 303
    assert await daemon.query(
        "SELECT i.site_id, i.equipment_id, i.request_type, i.channel, c.email"
        " FROM interventions i JOIN contacts c ON c.id = i.contact_id") == [
        (1, 1, "service_schedule", "phone", "luca@rossi.it")]
    page = (await client.get("/interventions/1")).text
    assert "Links saved." in page
    assert f"operator:{OPERATOR}" in page
    refused = await post_form(client, "/interventions/1", "/interventions/1/links",
                              {"equipment_serial": "ZZ-9"})
    assert refused.status_code == 422
    assert "equipment_serial:" in refused.text


async def test_request_types_read_in_the_operators_language(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """A case holding a listed type's code, or free text equal to one of its names (as
    cases opened by schedules before the list existed), shows the type's name in the
    operator's language on the list and the thread; other free text shows as written."""
    for subject in ("Caldaia A", "Caldaia B", "Caldaia C"):
        code, _ = await daemon.send(customer_mail(subject, "Grazie.", sender="info@rossi.it"),
                                    sender="info@rossi.it")
        assert code == 250
    await daemon.running.store.write(lambda tx: tx.execute(
        "UPDATE interventions SET request_type = CASE number"
        " WHEN 1 THEN 'service_schedule' WHEN 2 THEN 'Service schedule'"
        " ELSE 'guasto caldaia' END"))
    await daemon.running.store.write(lambda tx: tx.execute(
        "UPDATE operators SET language = 'it'"))
    listed = (await client.get("/")).text
    assert listed.count("· Manutenzione programmata") == 2
    assert "· guasto caldaia" in listed
    for number in (1, 2):
        thread = (await client.get(f"/interventions/{number}")).text
        assert "<dd>Manutenzione programmata</dd>" in thread


@pytest.mark.parametrize(("language", "refusal"), [
    ("it", "Matricola: deve essere una sola parola di al massimo 100 caratteri"),
    ("ro", "Serie: trebuie să fie un singur cuvânt de cel mult 100 de caractere"),
])
async def test_refused_values_read_in_the_operators_language(
    daemon: Daemon, client: httpx.AsyncClient, language: str, refusal: str
) -> None:
    """A value the archive refuses is explained on the page in the operator's language,
    the field named by the label the form shows beside it; the API keeps answering in
    English."""
    await post_form(client, "/customers", "/customers", {"name": "Rossi"})
    await daemon.running.store.write(lambda tx: tx.execute(
        "UPDATE operators SET language = ?", (language,)))
    bad = await post_form(client, "/customers/1", "/customers/1/equipment",
                          {"serial": "X 1", "customer_id": "1"})
    assert bad.status_code == 422
    assert refusal in bad.text
    missing = await post_form(client, "/customers", "/customers", {"name": ""})
    assert missing.status_code == 422
    assert {"it": "Nome: è obbligatorio", "ro": "Nume: este obligatoriu"}[language] in (
        missing.text)
