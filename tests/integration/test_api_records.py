"""The archive's JSON API over a real loopback socket: customers, contacts, sites,
equipment, request types, merging, and an intervention's links to them. The tests
marked `both` run on SQLite and on a real PostgreSQL cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from api_harness import Api, running_api
from postgres_server import PostgresCluster

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.operators import add_operator
from nexusmail.tickets.store import Store

CUSTOMER_FIELDS = {"id", "name", "tax_id", "address", "phone", "work_phone", "email",
                   "language", "notes", "mail_domains", "owner", "verified"}
ROSSI = {
    "name": "Rossi Impianti Srl", "tax_id": "IT 0123 4567 890",
    "address": "Via Roma 1, 20100 Milano", "phone": "+39 02 1234 5678",
    "work_phone": "+39 02 8765 4321", "email": "Info@Rossi-Impianti.it", "language": "it",
    "notes": "Pagamento a 30 giorni", "mail_domains": ["Rossi-Impianti.it", "@rossi.eu"],
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"},
    })


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    async with running_api(store, settings, clock) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
async def both(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings,
               clock: FakeClock) -> AsyncIterator[Api]:
    """The API over SQLite, then over PostgreSQL."""
    if request.param == "sqlite":
        async with Store(tmp_path / "nexusmail.sqlite3") as store, \
                running_api(store, settings, clock) as running:
            yield running
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as pg, running_api(cast(Store, pg), settings, clock) as running:
        yield running


async def post(api: Api, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = await api.client.post(f"/api/v1{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def patch(api: Api, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = await api.client.patch(f"/api/v1{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def get(api: Api, path: str, status: int = 200) -> Any:
    response = await api.client.get(f"/api/v1{path}")
    assert response.status_code == status, response.text
    return response.json()


async def add_operator_named(api: Api, email: str, clock: FakeClock) -> None:
    await api.store.write(lambda tx: add_operator(tx, email=email, name="Op",
                                                  password_hash="x", now=clock.now()))


async def test_customer_is_created_read_patched_and_listed(api: Api, clock: FakeClock) -> None:
    """POST /customers answers 201 with the documented fields in stored form (tax id
    without spaces, lower-case email and domains); GET and the list show the same
    customer; PATCH changes only the fields sent and sets the owner by email."""
    created = await post(api, "/customers", ROSSI)
    assert set(created) >= CUSTOMER_FIELDS
    assert created["tax_id"] == "IT01234567890"
    assert created["email"] == "info@rossi-impianti.it"
    assert created["mail_domains"] == ["rossi-impianti.it", "rossi.eu"]
    assert created["verified"] is True
    assert created["owner"] is None
    assert await get(api, f"/customers/{created['id']}") == created
    await add_operator_named(api, "anna@firm.test", clock)
    patched = await patch(api, f"/customers/{created['id']}",
                          {"owner": "Anna@Firm.test", "phone": None, "mail_domains": []})
    assert patched == {**created, "owner": "anna@firm.test", "phone": None,
                       "mail_domains": []}
    listed = await get(api, "/customers")
    assert listed == {"items": [patched], "total": 1, "limit": 50, "offset": 0}


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "X", "language": "de"}, "language"),
    ({"name": "X", "email": "not-an-address"}, "email"),
    ({"name": "X", "mail_domains": ["no_domain"]}, "mail_domains"),
    ({"name": "X", "mail_domains": ["Libero.it"]}, "mail_domains"),
    ({"name": "X", "owner": "nobody@firm.test"}, "owner"),
    ({"name": "X", "colour": "red"}, "colour"),
    ({"name": ""}, "name"),
    ({"tax_id": "IT1"}, "name"),
])
async def test_a_refused_customer_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    """Each bad value is refused with 422 and a message starting with its field."""
    error = await post(api, "/customers", body, status=422)
    assert error["error"].startswith(f"{field}:"), error


async def test_without_an_owner_a_new_customer_gets_the_default_owner(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    """`[customers] default_owner` owns a customer created without an owner, even
    before that operator exists; an owner given in the body wins."""
    configured = settings.model_copy(update={"customers": settings.customers.model_copy(
        update={"default_owner": "desk@firm.test"})})
    async with running_api(store, configured, clock) as api:
        created = await post(api, "/customers", {"name": "Bianchi"})
        assert created["owner"] == "desk@firm.test"
        await add_operator_named(api, "anna@firm.test", clock)
        chosen = await post(api, "/customers", {"name": "Verdi", "owner": "anna@firm.test"})
        assert chosen["owner"] == "anna@firm.test"


async def test_a_retired_operator_cannot_become_an_owner(api: Api, clock: FakeClock) -> None:
    """An operator that is no longer active is refused as owner, naming `owner`."""
    await add_operator_named(api, "old@firm.test", clock)
    await api.store.write(lambda tx: tx.execute("UPDATE operators SET active = 0"))
    error = await post(api, "/customers", {"name": "X", "owner": "old@firm.test"}, 422)
    assert error["error"].startswith("owner:")
    assert "retired" in error["error"]


async def test_a_mail_domain_belongs_to_one_customer(api: Api) -> None:
    """A domain another customer holds is a 409 that names the field and that
    customer; the first customer keeps it."""
    first = await post(api, "/customers", {"name": "A", "mail_domains": ["a-srl.it"]})
    error = await post(api, "/customers", {"name": "B", "mail_domains": ["A-SRL.it"]}, 409)
    assert error["error"] == f"mail_domains: a-srl.it is a domain of customer {first['id']}"
    assert (await get(api, f"/customers/{first['id']}"))["mail_domains"] == ["a-srl.it"]


async def test_unknown_customers_are_404(api: Api) -> None:
    """Reading, patching, or adding to a customer that does not exist is a 404."""
    assert (await get(api, "/customers/99", 404))["error"] == "customer 99 does not exist"
    await patch(api, "/customers/99", {"name": "X"}, 404)
    await get(api, "/customers/99/contacts", 404)
    await post(api, "/customers/99/sites", {"name": "X"}, 404)


async def test_contacts_are_added_listed_and_patched(api: Api) -> None:
    """A contact carries its role, preferred channel and language; its address is
    one contact's only (409); PATCH changes it."""
    customer = await post(api, "/customers", {"name": "Rossi"})
    path = f"/customers/{customer['id']}/contacts"
    contact = await post(api, path, {
        "name": "Giulia Bianchi", "email": "Giulia@Rossi.it", "phone": "333 1234567",
        "role": "Amministrazione", "preferred_channel": "phone", "language": "it"})
    assert contact == {"id": contact["id"], "customer_id": customer["id"],
                       "name": "Giulia Bianchi", "email": "giulia@rossi.it",
                       "phone": "333 1234567", "role": "Amministrazione",
                       "preferred_channel": "phone", "language": "it", "verified": True}
    assert await get(api, path) == {"items": [contact]}
    error = await post(api, path, {"name": "Other", "email": "giulia@rossi.it"}, 409)
    assert error["error"].startswith("email:")
    bad = await post(api, path, {"name": "X", "preferred_channel": "fax"}, 422)
    assert bad["error"].startswith("preferred_channel:")
    patched = await patch(api, f"/contacts/{contact['id']}", {"preferred_channel": "email"})
    assert patched == {**contact, "preferred_channel": "email"}


async def test_sites_are_added_listed_and_named_once(api: Api) -> None:
    """A site has a name, address and access notes; the same name twice at one
    customer is a 409, at another customer it is fine."""
    rossi = await post(api, "/customers", {"name": "Rossi"})
    verdi = await post(api, "/customers", {"name": "Verdi"})
    site = await post(api, f"/customers/{rossi['id']}/sites", {
        "name": "Magazzino", "address": "Via Po 3, Torino",
        "access_notes": "Chiavi in portineria, 8-12"})
    assert site == {"id": site["id"], "customer_id": rossi["id"], "name": "Magazzino",
                    "address": "Via Po 3, Torino",
                    "access_notes": "Chiavi in portineria, 8-12"}
    error = await post(api, f"/customers/{rossi['id']}/sites", {"name": "Magazzino"}, 409)
    assert error["error"].startswith("name:")
    await post(api, f"/customers/{verdi['id']}/sites", {"name": "Magazzino"})
    assert await get(api, f"/customers/{rossi['id']}/sites") == {"items": [site]}
    moved = await patch(api, f"/sites/{site['id']}", {"address": "Via Po 5, Torino"})
    assert moved["address"] == "Via Po 5, Torino"


async def test_equipment_is_added_found_by_serial_and_patched(api: Api) -> None:
    """A machine is stored with its dates; the list finds it by customer and by serial
    in either case; a serial twice at one customer is 409, a site of another customer
    is 422 naming site_id; GET adds its interventions, newest first."""
    rossi = await post(api, "/customers", {"name": "Rossi"})
    verdi = await post(api, "/customers", {"name": "Verdi"})
    site = await post(api, f"/customers/{rossi['id']}/sites", {"name": "Sede"})
    other_site = await post(api, f"/customers/{verdi['id']}/sites", {"name": "Sede"})
    machine = await post(api, "/equipment", {
        "customer_id": rossi["id"], "site_id": site["id"], "serial": "AB-1234X",
        "model": "Vaillant ecoTEC plus", "description": "Caldaia a condensazione",
        "installed_on": "2021-10-01", "warranty_until": "2026-09-30"})
    assert machine == {"id": machine["id"], "customer_id": rossi["id"],
                       "site_id": site["id"], "serial": "AB-1234X",
                       "model": "Vaillant ecoTEC plus", "description": "Caldaia a condensazione",
                       "installed_on": "2021-10-01", "warranty_until": "2026-09-30",
                       "notes": "", "interventions": []}
    plain = {k: v for k, v in machine.items() if k != "interventions"}
    by_serial = await get(api, "/equipment?serial=ab-1234x")
    assert by_serial["items"] == [plain]
    assert (await get(api, f"/equipment?customer={verdi['id']}"))["items"] == []
    error = await post(api, "/equipment", {"customer_id": rossi["id"],
                                           "serial": "AB-1234X"}, 409)
    assert error["error"].startswith("serial:")
    error = await post(api, "/equipment", {"customer_id": rossi["id"], "serial": "Z9",
                                           "site_id": other_site["id"]}, 422)
    assert error["error"].startswith("site_id:")
    error = await post(api, "/equipment", {"customer_id": rossi["id"], "serial": "Z9",
                                           "installed_on": "1 ottobre"}, 422)
    assert error["error"].startswith("installed_on:")
    # Same serial at another customer: another machine.
    await post(api, "/equipment", {"customer_id": verdi["id"], "serial": "AB-1234X"})
    patched = await patch(api, f"/equipment/{machine['id']}",
                          {"notes": "Scambiatore sostituito", "site_id": None})
    assert patched == {**machine, "notes": "Scambiatore sostituito", "site_id": None}
    await get(api, "/equipment/999", 404)


async def test_request_types_start_with_the_service_schedule(api: Api) -> None:
    """The list holds the seeded service schedule with its three names; a new type
    takes names, a default priority and existing employees as default assignees;
    an unknown assignee is a 422 naming the field; a code twice is 409."""
    listed = await get(api, "/request-types")
    assert listed["items"] == [{
        "code": "service_schedule",
        "names": {"en": "Service schedule", "it": "Manutenzione programmata",
                  "ro": "Programare service"},
        "default_priority": "normal", "default_assignees": [],
        "response_hours": None, "resolution_hours": None, "customer_closing_mail": None}]
    await post(api, "/employees", {"email": "tech@firm.test", "name": "Tech",
                                   "language": "it"})
    repair = await post(api, "/request-types", {
        "code": "repair", "names": {"en": "Repair", "it": "Riparazione", "ro": "Reparație"},
        "default_priority": "high", "default_assignees": ["Tech@firm.test"]})
    assert repair == {"code": "repair",
                      "names": {"en": "Repair", "it": "Riparazione", "ro": "Reparație"},
                      "default_priority": "high", "default_assignees": ["tech@firm.test"],
                      "response_hours": None, "resolution_hours": None,
                      "customer_closing_mail": None}
    error = await post(api, "/request-types", {"code": "install",
                                               "default_assignees": ["who@firm.test"]}, 422)
    assert error["error"].startswith("default_assignees:")
    await post(api, "/request-types", {"code": "repair"}, 409)
    bad = await post(api, "/request-types", {"code": "Not a code"}, 422)
    assert bad["error"].startswith("code:")
    renamed = await patch(api, "/request-types/repair", {"names": {"ro": "Reparatie"}})
    assert renamed["names"] == {"en": "Repair", "it": "Riparazione", "ro": "Reparatie"}


async def test_merge_moves_everything_and_marks_the_duplicate(api: Api) -> None:
    """Merging moves contacts, domains, sites, equipment and interventions; a site of
    the same name and a machine of the same serial become the target's; the merged
    customer says where it went, is no longer listed and can no longer be edited."""
    keep = await post(api, "/customers", {"name": "Rossi Srl", "tax_id": "IT1"})
    dup = await post(api, "/customers", {"name": "rossi", "phone": "02 111",
                                         "mail_domains": ["rossi.it"]})
    await post(api, f"/customers/{dup['id']}/contacts", {"email": "a@rossi.it"})
    keep_site = await post(api, f"/customers/{keep['id']}/sites", {"name": "Sede"})
    await post(api, f"/customers/{dup['id']}/sites", {"name": "Sede",
                                                      "access_notes": "citofono 3"})
    await post(api, f"/customers/{dup['id']}/sites", {"name": "Magazzino"})
    kept_machine = await post(api, "/equipment", {"customer_id": keep["id"], "serial": "S1"})
    dup_machine = await post(api, "/equipment", {"customer_id": dup["id"], "serial": "S1",
                                                 "model": "Daikin"})
    await post(api, "/equipment", {"customer_id": dup["id"], "serial": "S2"})
    case = await post(api, "/interventions", {
        "customer_email": "a@rossi.it", "subject": "Guasto", "description": "Non parte"})
    await api.store.write(lambda tx: tx.execute(
        "UPDATE interventions SET equipment_id = ? WHERE number = ?",
        (dup_machine["id"], case["number"])))

    merged = await post(api, f"/customers/{dup['id']}/merge", {"into": keep["id"]}, 200)
    assert merged["id"] == keep["id"]
    assert merged["phone"] == "02 111"
    assert merged["tax_id"] == "IT1"
    assert merged["mail_domains"] == ["rossi.it"]
    contacts = (await get(api, f"/customers/{keep['id']}/contacts"))["items"]
    assert [c["email"] for c in contacts] == ["a@rossi.it"]
    sites = (await get(api, f"/customers/{keep['id']}/sites"))["items"]
    assert sorted(s["name"] for s in sites) == ["Magazzino", "Sede"]
    assert next(s for s in sites if s["name"] == "Sede") == {
        **keep_site, "access_notes": "citofono 3"}
    machines = (await get(api, f"/equipment?customer={keep['id']}"))["items"]
    assert sorted(m["serial"] for m in machines) == ["S1", "S2"]
    history = (await get(api, f"/equipment/{kept_machine['id']}"))["interventions"]
    assert [h["number"] for h in history] == [case["number"]]
    detail = await get(api, f"/interventions/{case['number']}")
    assert detail["customer"]["id"] == keep["id"]
    assert detail["equipment"]["model"] == "Daikin"

    gone = await get(api, f"/customers/{dup['id']}")
    assert gone["merged_into"] == keep["id"]
    assert [c["id"] for c in (await get(api, "/customers"))["items"]] == [keep["id"]]
    await patch(api, f"/customers/{dup['id']}", {"name": "X"}, 409)
    again = await post(api, f"/customers/{keep['id']}/merge", {"into": keep["id"]}, 422)
    assert again["error"].startswith("into:")
    await post(api, f"/customers/{keep['id']}/merge", {"into": dup["id"]}, 422)


SEARCH_CUSTOMERS = [
    {"name": "Rossi Impianti Srl", "tax_id": "IT01234567890", "email": "info@rossi.it",
     "phone": "+39 02 1234 5678"},
    {"name": "Popescu Construct SRL", "tax_id": "RO12345678", "email": "office@popescu.ro",
     "phone": "+40 21 555 0101"},
    {"name": "Bar Sport 100%", "email": "bar_sport@example.it"},
]


@pytest.mark.parametrize(("q", "names"), [
    ("rossi", ["Rossi Impianti Srl"]),
    ("SRL", ["Popescu Construct SRL", "Rossi Impianti Srl"]),
    ("ro1234", ["Popescu Construct SRL"]),
    ("popescu.ro", ["Popescu Construct SRL"]),
    ("1234 5678", ["Rossi Impianti Srl"]),
    ("100%", ["Bar Sport 100%"]),
    ("bar_s", ["Bar Sport 100%"]),
    ("giulia", ["Rossi Impianti Srl"]),     # a contact's name
    ("nobody", []),
])
async def test_customer_search_finds_the_same_on_both_stores(
    both: Api, q: str, names: list[str]
) -> None:
    """?q= matches part of a name, tax id, email, phone or a contact's, case aside and
    with % and _ taken literally, with the same answer on SQLite and PostgreSQL."""
    ids = [(await post(both, "/customers", c))["id"] for c in SEARCH_CUSTOMERS]
    await post(both, f"/customers/{ids[0]}/contacts", {"name": "Giulia Bianchi"})
    found = await both.client.get("/api/v1/customers", params={"q": q})
    assert [c["name"] for c in found.json()["items"]] == names
    assert found.json()["total"] == len(names)


async def test_the_archive_on_both_stores(both: Api) -> None:
    """Customer, contact, site, machine, merge and the intervention's links work the
    same on SQLite and PostgreSQL."""
    customer = await post(both, "/customers", {"name": "Verdi", "mail_domains": ["verdi.it"]})
    dup = await post(both, "/customers", {"name": "verdi dup"})
    contact = await post(both, f"/customers/{dup['id']}/contacts",
                         {"name": "Marco", "email": "marco@verdi.it"})
    site = await post(both, f"/customers/{dup['id']}/sites", {"name": "Sede",
                                                              "address": "Via Verdi 1"})
    machine = await post(both, "/equipment", {"customer_id": dup["id"], "site_id": site["id"],
                                              "serial": "X-1"})
    case = await post(both, "/interventions", {
        "customer_email": "marco@verdi.it", "subject": "Guasto", "description": "Perde"})
    await both.store.write(lambda tx: tx.execute(
        "UPDATE interventions SET site_id = ?, equipment_id = ? WHERE number = ?",
        (site["id"], machine["id"], case["number"])))
    await post(both, f"/customers/{dup['id']}/merge", {"into": customer["id"]}, 200)
    detail = await get(both, f"/interventions/{case['number']}")
    assert detail["customer"]["id"] == customer["id"]
    assert detail["contact"] == {**contact, "customer_id": customer["id"]}
    assert detail["site"] == {**site, "customer_id": customer["id"]}
    assert detail["equipment"]["serial"] == "X-1"
    assert detail["status"] == "open"
    assert detail["owner"] is None
    found = (await get(both, "/equipment?serial=x-1"))["items"]
    assert [m["customer_id"] for m in found] == [customer["id"]]


async def test_intervention_detail_carries_its_records(api: Api, clock: FakeClock) -> None:
    """GET /interventions/{n} adds the full customer, the contact, site and machine
    (null when none), the request type, channel, requested_at, owner and status."""
    case = await post(api, "/interventions", {
        "customer_email": "mario@example.it", "customer_name": "Mario",
        "subject": "Caldaia", "description": "In blocco", "request_type": "repair"})
    assert set(case["customer"]) >= CUSTOMER_FIELDS
    assert case["contact"]["email"] == "mario@example.it"
    assert (case["site"], case["equipment"], case["requested_at"], case["owner"]) == (
        None, None, None, None)
    assert case["request_type"] == "repair"
    assert case["status"] == "open"
    await api.store.write(lambda tx: tx.execute(
        "UPDATE interventions SET channel = 'phone', requested_at = '2026-03-01',"
        " owner = 'anna@firm.test', status = 'on_hold', status_reason = 'parts'"))
    detail = await get(api, f"/interventions/{case['number']}")
    assert (detail["channel"], detail["requested_at"], detail["owner"], detail["status"],
            detail["status_reason"]) == ("phone", "2026-03-01", "anna@firm.test", "on_hold",
                                         "parts")


async def test_patch_needs_a_field_and_known_fields(api: Api) -> None:
    """An empty PATCH body is a 422 on `body`; an unknown field is a 422 naming it."""
    customer = await post(api, "/customers", {"name": "Rossi"})
    empty = await patch(api, f"/customers/{customer['id']}", {}, 422)
    assert empty["error"].startswith("body:")
    unknown = await patch(api, f"/customers/{customer['id']}", {"nmae": "X"}, 422)
    assert unknown["error"].startswith("nmae:")
    bad = await get(api, "/equipment?customer=abc", 422)
    assert bad["error"].startswith("customer:")


async def test_customer_pages_count_the_same_however_they_are_walked(api: Api) -> None:
    """The total is the same on a full page, on the last page and past the end."""
    for name in ("Alfa", "Beta", "Gamma"):
        await post(api, "/customers", {"name": name})
    pages = [await get(api, f"/customers?limit=2&offset={at}") for at in (0, 2, 5)]
    assert [[c["name"] for c in p["items"]] for p in pages] == [["Alfa", "Beta"], ["Gamma"], []]
    assert [p["total"] for p in pages] == [3, 3, 3]
    assert (await get(api, "/customers?q=zzz"))["total"] == 0


async def test_merge_moves_contracts_and_refuses_two_with_one_code(api: Api) -> None:
    """A duplicate's contract moves with it; two contracts with the same code stop the
    merge with a 409 naming it, and nothing moves."""
    keep = await post(api, "/customers", {"name": "Rossi"})
    dup = await post(api, "/customers", {"name": "rossi"})
    other = await post(api, "/customers", {"name": "ROSSI"})
    contract = {"code": "C-1", "valid_from": "2026-01-01"}
    await post(api, f"/customers/{dup['id']}/contracts", {**contract, "code": "C-2"})
    await post(api, f"/customers/{keep['id']}/contracts", contract)
    await post(api, f"/customers/{other['id']}/contracts", contract)
    await post(api, f"/customers/{other['id']}/contacts", {"email": "x@rossi.it"})
    await post(api, f"/customers/{dup['id']}/merge", {"into": keep["id"]}, 200)
    held = await get(api, f"/customers/{keep['id']}/contracts")
    assert sorted(c["code"] for c in held["items"]) == ["C-1", "C-2"]
    clash = await post(api, f"/customers/{other['id']}/merge", {"into": keep["id"]}, 409)
    assert clash["error"].startswith("contracts:")
    assert "C-1" in clash["error"]
    assert (await get(api, f"/customers/{other['id']}/contacts"))["items"][0]["email"] == (
        "x@rossi.it")


async def test_the_list_filters_by_customer_and_machine(api: Api) -> None:
    """GET /interventions?customer=ID&equipment=ID lists only that customer's cases,
    only that machine's, or both at once; a value that is not an id is a 422 naming it."""
    first = await post(api, "/interventions", {
        "customer_email": "a@rossi.it", "subject": "Caldaia", "description": "In blocco"})
    second = await post(api, "/interventions", {
        "customer_email": "a@rossi.it", "subject": "Condizionatore", "description": "Gocciola"})
    other = await post(api, "/interventions", {
        "customer_email": "b@verdi.it", "subject": "Caldaia", "description": "Rumore"})
    rossi = first["customer"]["id"]
    machine = await post(api, "/equipment", {"customer_id": rossi, "serial": "AC-1"})
    await api.store.write(lambda tx: tx.execute(
        "UPDATE interventions SET equipment_id = ? WHERE number = ?",
        (machine["id"], second["number"])))

    async def numbers(query: str) -> list[int]:
        return sorted(i["number"] for i in (await get(api, "/interventions" + query))["items"])

    assert await numbers(f"?customer={rossi}") == [first["number"], second["number"]]
    assert await numbers(f"?customer={other['customer']['id']}") == [other["number"]]
    assert await numbers(f"?equipment={machine['id']}") == [second["number"]]
    assert await numbers(f"?customer={other['customer']['id']}&equipment={machine['id']}") == []
    assert (await get(api, f"/interventions?customer={rossi}&status=open"))["total"] == 2
    for bad in ("customer=abc", "equipment=0", "customer=-1"):
        error = await get(api, f"/interventions?{bad}", 422)
        assert error["error"].startswith(bad.split("=")[0] + ":")
