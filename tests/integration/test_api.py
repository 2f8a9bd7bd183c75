"""The JSON API over a real loopback socket (tests/support/api_harness.py): uvicorn in
the test's loop, httpx as client, a real store and blob tree in a temporary data dir."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, running_api

from nexusmail.admin.api.routes import MAX_BODY_BYTES
from nexusmail.admin.tokens import revoke_token
from nexusmail.blobs.digest import sha256_hex
from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.tickets.cases import NewMessage, StoredAttachment, add_message
from nexusmail.tickets.models import Direction, MessageKind
from nexusmail.tickets.store import Store

SUPPORT = "support@firm.test"
PHONE_REQUEST = {
    "customer_email": "Mario.Rossi@Example.it",
    "customer_name": "Mario Rossi",
    "subject": "Caldaia in blocco",
    "description": "Il cliente chiama: la caldaia va in blocco ogni mattina.",
    "request_type": "repair",
    "priority": "high",
    "desired_from": "2026-03-05",
    "desired_to": "2026-03-06",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": [SUPPORT], "company_name": "Firm"},
    })


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    async with running_api(store, settings, clock, reply_keys=[b"k" * 32]) as running:
        yield running


async def open_phone_request(api: Api, **changes: Any) -> dict[str, Any]:
    response = await api.client.post("/api/v1/interventions", json={**PHONE_REQUEST, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_health_needs_no_token(api: Api) -> None:
    """GET /health answers {"status": "ok"} without any Authorization header."""
    response = await api.anonymous.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("authorization", [
    None, "Bearer wrong-token", "Bearer", "Basic dXNlcjpwYXNz", "token-without-scheme",
])
async def test_requests_without_a_valid_token_get_401(
    api: Api, authorization: str | None
) -> None:
    """A missing, unknown or non-bearer credential is refused with a JSON 401."""
    headers = {"Authorization": authorization} if authorization else {}
    response = await api.anonymous.get("/api/v1/interventions", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["error"]


async def test_a_revoked_token_is_refused(api: Api, clock: FakeClock) -> None:
    """After revocation the same token gets 401."""
    await api.store.write(lambda tx: revoke_token(tx, 1, clock.now()))
    response = await api.client.get("/api/v1/employees")
    assert response.status_code == 401


async def test_employee_is_created_and_listed(api: Api) -> None:
    """POST /employees answers 201 with the stored employee, which GET then lists."""
    response = await api.client.post("/api/v1/employees", json={
        "email": "Ion.Popescu@Example.ro", "name": "Ion Popescu", "language": "ro"})
    assert response.status_code == 201
    created = response.json()
    assert created["email"] == "ion.popescu@example.ro"
    assert created["language"] == "ro"
    assert created["active"] is True
    listed = (await api.client.get("/api/v1/employees")).json()
    assert listed == {"items": [created]}


async def test_duplicate_employee_is_a_409(api: Api) -> None:
    """The same address twice (in any case) is a conflict, not a second employee."""
    body = {"email": "tech@example.it", "name": "Tech", "language": "it"}
    assert (await api.client.post("/api/v1/employees", json=body)).status_code == 201
    again = await api.client.post("/api/v1/employees", json={**body, "email": "TECH@example.it"})
    assert again.status_code == 409
    assert "tech@example.it" in again.json()["error"]


async def test_bad_language_is_a_422_naming_the_field(api: Api) -> None:
    """A language other than en/it/ro is refused with a message naming `language`."""
    response = await api.client.post("/api/v1/employees", json={
        "email": "tech@example.it", "name": "Tech", "language": "de"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("language:")


async def test_phone_request_creates_an_intervention(api: Api) -> None:
    """POST /interventions answers 201 with the number and the full intervention,
    which the list and the detail then show with the documented shape."""
    created = await open_phone_request(api)
    number = created["number"]
    assert number == 1
    assert created["status"] == "open"
    assert created["source"] == "api"
    assert created["priority"] == "high"
    assert created["desired_from"] == "2026-03-05"
    assert created["customer"]["name"] == "Mario Rossi"
    assert created["customer"]["email"] == "mario.rossi@example.it"
    assert created["contact"]["email"] == "mario.rossi@example.it"
    assert created["assignments"] == []
    detail = (await api.client.get(f"/api/v1/interventions/{number}")).json()
    assert detail == created
    assert set(detail) == {
        "number", "status", "subject", "description", "request_type", "priority",
        "desired_from", "desired_to", "source", "related_number", "customer", "created_at",
        "updated_at", "closed_at", "last_activity_at", "last_inbound_at", "assignments",
        "messages", "activities", "needs_attention",
        "notify_customer_on_resolve", "response_due", "resolution_due",
        "contact", "site", "equipment", "channel", "requested_at", "owner", "status_reason",
        "sequence"}
    assert detail["sequence"] is None
    assert detail["needs_attention"] == ["unassigned"]
    first = detail["messages"][0]
    assert set(first) == {"id", "kind", "direction", "from", "to", "cc", "author", "subject",
                          "body_text", "verdict", "verified", "extra", "created_at",
                          "attachments"}
    assert first["direction"] in {"in", "out", "internal"}
    page = (await api.client.get("/api/v1/interventions")).json()
    assert page["total"] == 1
    assert [item["number"] for item in page["items"]] == [number]


async def test_phone_request_queues_the_acknowledgement(api: Api) -> None:
    """The acknowledgement to the customer is an outbox row committed with the
    intervention, and the outbox worker is woken."""
    number = (await open_phone_request(api))["number"]
    rows = await api.rows(
        "SELECT kind, recipient, status FROM outbox WHERE intervention_number = ?", number)
    assert rows == [("acknowledgement", "mario.rossi@example.it", "pending")]
    assert api.outbox_wakeups == [1]


async def test_close_records_a_status_change(api: Api) -> None:
    """Closing answers the closed intervention, with the note on a status_change entry."""
    number = (await open_phone_request(api))["number"]
    response = await api.client.post(f"/api/v1/interventions/{number}/close",
                                     json={"note": "Sostituita la valvola."})
    assert response.status_code == 200
    closed = response.json()
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    last = closed["messages"][-1]
    assert (last["kind"], last["direction"], last["body_text"]) == (
        "status_change", "internal", "Sostituita la valvola.")


async def test_closing_twice_is_a_409(api: Api) -> None:
    """A second close (here with no body at all) is a conflict."""
    number = (await open_phone_request(api))["number"]
    assert (await api.client.post(f"/api/v1/interventions/{number}/close")).status_code == 200
    again = await api.client.post(f"/api/v1/interventions/{number}/close")
    assert again.status_code == 409
    assert "already closed" in again.json()["error"]


async def test_list_sorts_by_last_activity_unless_asked_otherwise(
        api: Api, clock: FakeClock) -> None:
    """The list puts the case that moved last first (a note on an older case lifts it),
    each item carries `last_activity_at`; `sort=number|priority|due` order otherwise,
    and an unknown order is a 422 naming the choices."""
    first = (await open_phone_request(api))["number"]
    clock.advance(timedelta(minutes=1))
    second = (await open_phone_request(api, priority="urgent"))["number"]
    clock.advance(timedelta(minutes=1))
    noted = await api.client.post(f"/api/v1/interventions/{first}/notes",
                                  data={"text": "Richiamato il cliente."})
    assert noted.status_code == 201, noted.text

    async def numbers(**params: str) -> list[int]:
        response = await api.client.get("/api/v1/interventions", params=params)
        assert response.status_code == 200, response.text
        return [item["number"] for item in response.json()["items"]]

    assert await numbers() == [first, second]
    assert await numbers(sort="activity") == [first, second]
    assert await numbers(sort="number") == [second, first]
    assert await numbers(sort="priority") == [second, first]
    item = (await api.client.get("/api/v1/interventions")).json()["items"][0]
    assert item["last_activity_at"] > item["created_at"]
    bad = await api.client.get("/api/v1/interventions", params={"sort": "colour"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "sort: should be one of activity, number, priority, due"


async def test_reopen_answers_the_open_case_and_409_when_open(api: Api) -> None:
    """Reopening a closed case answers it open, with the reopening on the thread; an
    open case cannot be reopened (409), an unknown one is 404."""
    number = (await open_phone_request(api))["number"]
    reopen = f"/api/v1/interventions/{number}/reopen"
    assert (await api.client.post(reopen)).status_code == 409
    assert (await api.client.post(f"/api/v1/interventions/{number}/close")).status_code == 200
    response = await api.client.post(reopen)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["closed_at"]) == ("open", None)
    last = body["messages"][-1]
    assert (last["kind"], last["author"]) == ("status_change", "api:tests")
    assert (await api.client.post("/api/v1/interventions/99/reopen")).status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/interventions/42"),
    ("POST", "/api/v1/interventions/42/close"),
    ("GET", "/api/v1/interventions/99999999999999999999999"),
    ("GET", "/api/v1/attachments/7"),
    ("GET", "/api/v1/messages/7/raw"),
    ("GET", "/api/v1/no-such-route"),
])
async def test_unknown_things_are_a_json_404(api: Api, method: str, path: str) -> None:
    """Absent interventions, attachments, messages and routes answer 404 in JSON."""
    response = await api.client.request(method, path)
    assert response.status_code == 404
    assert response.json()["error"]


async def test_wrong_method_is_a_json_405(api: Api) -> None:
    """DELETE on a GET route answers 405 in JSON."""
    response = await api.client.delete("/api/v1/interventions")
    assert response.status_code == 405
    assert "DELETE" in response.json()["error"]


@pytest.mark.parametrize("body", [b"{", b"", b"customer_email=a@b.it", b"\xff\xfe{}"])
async def test_malformed_json_is_a_400(api: Api, body: bytes) -> None:
    """A body that is not JSON at all answers 400, never 500."""
    response = await api.client.post("/api/v1/interventions", content=body,
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"subject": 5}, "subject"),
    ({"subject": ""}, "subject"),
    ({"subject": "x" * 501}, "subject"),
    ({"priority": "whenever"}, "priority"),
    ({"desired_from": "05/03/2026"}, "desired_from"),
    ({"desired_from": "2026-02-30"}, "desired_from"),
    ({"desired_to": "2026-03-01"}, "desired_to"),
    ({"customer_email": "not an address"}, "customer_email"),
    ({"customer_email": None}, "customer_email"),
    ({"priorty": "high"}, "priorty"),
])
async def test_wrong_fields_are_a_422_naming_them(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    """Wrong types, bad dates, unknown fields and limits answer 422 naming the field."""
    response = await api.client.post("/api/v1/interventions", json={**PHONE_REQUEST, **changes})
    assert response.status_code == 422
    assert response.json()["error"].startswith(f"{field}:")
    assert await api.rows("SELECT number FROM interventions") == []


async def test_json_that_is_not_an_object_is_a_422(api: Api) -> None:
    """A JSON list where an object is expected is refused as a whole-body error."""
    response = await api.client.post("/api/v1/employees", json=["tech@example.it"])
    assert response.status_code == 422
    assert response.json()["error"].startswith("body:")


async def test_missing_field_is_named(api: Api) -> None:
    """A required field left out is named as required."""
    response = await api.client.post("/api/v1/interventions", json={"subject": "x"})
    assert response.status_code == 422
    assert "customer_email: is required" in response.json()["error"]


async def test_oversized_body_is_a_413(api: Api) -> None:
    """A body above the limit is refused with 413 before it is parsed."""
    big = {**PHONE_REQUEST, "description": "x" * (MAX_BODY_BYTES + 1)}
    response = await api.client.post("/api/v1/interventions", json=big)
    assert response.status_code == 413


async def test_list_filters_by_status_and_text(api: Api) -> None:
    """status= and q= narrow the list; LIKE wildcards in q are matched literally."""
    first = (await open_phone_request(api))["number"]
    second = (await open_phone_request(api, subject="Perdita 100% acqua"))["number"]
    await api.client.post(f"/api/v1/interventions/{first}/close")

    async def numbers(**params: Any) -> list[int]:
        page = (await api.client.get("/api/v1/interventions", params=params)).json()
        return [item["number"] for item in page["items"]]

    assert await numbers() == [second, first]
    assert await numbers(status="open") == [second]
    assert await numbers(status="closed") == [first]
    assert await numbers(q="perdita") == [second]
    assert await numbers(q="100%") == [second]
    assert await numbers(q="_") == []  # no subject has an underscore
    assert await numbers(limit=1, offset=1) == [first]


@pytest.mark.parametrize("params", [
    {"status": "pending"}, {"limit": "0"}, {"limit": "1000"}, {"limit": "ten"},
    {"offset": "-1"},
])
async def test_bad_list_parameters_are_a_422(api: Api, params: dict[str, str]) -> None:
    """Query parameters out of range answer 422 naming the parameter."""
    response = await api.client.get("/api/v1/interventions", params=params)
    assert response.status_code == 422
    assert response.json()["error"].startswith(next(iter(params)))


async def add_inbound_mail(api: Api, number: int, clock: FakeClock, raw: bytes,
                           attachment: tuple[str, str, bytes]) -> tuple[int, int]:
    """Put a customer mail with one attachment on `number`'s thread, the way ingest
    stores it: raw bytes, inbound row, message, attachment row, blob file."""
    filename, content_type, data = attachment
    digest = await asyncio.to_thread(api.blobs.put, data)
    raw_sha = sha256_hex(raw)

    def store_mail(tx: sqlite3.Connection) -> int:
        tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)", (raw_sha, raw))
        inbound_id = tx.execute(
            "INSERT INTO inbound (raw_sha256, size, source, outcome, received_at)"
            " VALUES (?, ?, 'smtp', 'follow_up', ?) RETURNING id",
            (raw_sha, len(raw), "2026-03-02T09:00:00")).fetchone()[0]
        return add_message(tx, number, NewMessage(
            kind=MessageKind.CUSTOMER_MAIL, direction=Direction.IN,
            from_addr="mario.rossi@example.it", subject="Foto", inbound_id=inbound_id,
            attachments=[StoredAttachment(filename, content_type, len(data), digest)],
        ), now=clock.now())

    message_id = await api.store.write(store_mail)
    rows = await api.rows("SELECT id FROM attachments WHERE message_id = ?", message_id)
    return message_id, rows[0][0]


async def test_attachment_download_is_safe(api: Api, clock: FakeClock) -> None:
    """An attachment comes back byte for byte as a download with its UTF-8 name;
    HTML is never served as text/html, and sniffing is off."""
    number = (await open_phone_request(api))["number"]
    html = b"<script>alert(1)</script>"
    _, attachment_id = await add_inbound_mail(
        api, number, clock, b"Subject: Foto\r\n\r\nbody\r\n",
        ("preventivo caldaia ș.html", "text/html; charset=utf-8", html))
    response = await api.client.get(f"/api/v1/attachments/{attachment_id}")
    assert response.status_code == 200
    assert response.content == html
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''preventivo%20caldaia%20%C8%99.html" in disposition
    detail = (await api.client.get(f"/api/v1/interventions/{number}")).json()
    listed = detail["messages"][-1]["attachments"]
    assert listed == [{"id": attachment_id, "filename": "preventivo caldaia ș.html",
                       "content_type": "text/html; charset=utf-8", "size": len(html),
                       "sha256": listed[0]["sha256"]}]


async def test_image_attachment_keeps_its_type(api: Api, clock: FakeClock) -> None:
    """A harmless stored type (image/jpeg) is served as such."""
    number = (await open_phone_request(api))["number"]
    _, attachment_id = await add_inbound_mail(
        api, number, clock, b"Subject: x\r\n\r\ny\r\n", ("foto.jpg", "image/jpeg", b"\xff\xd8jpeg"))
    response = await api.client.get(f"/api/v1/attachments/{attachment_id}")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == b"\xff\xd8jpeg"


async def test_raw_mail_download(api: Api, clock: FakeClock) -> None:
    """GET /messages/{id}/raw gives the original bytes as a message/rfc822 download;
    a message we wrote ourselves has no original and is a 404."""
    number = (await open_phone_request(api))["number"]
    raw = b"From: mario.rossi@example.it\r\nSubject: Foto\r\n\r\nEcco la foto.\r\n"
    message_id, _ = await add_inbound_mail(api, number, clock, raw, ("a.txt", "text/plain", b"a"))
    response = await api.client.get(f"/api/v1/messages/{message_id}/raw")
    assert response.status_code == 200
    assert response.content == raw
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert f"message-{message_id}.eml" in response.headers["content-disposition"]
    own = (await api.client.get(f"/api/v1/interventions/{number}")).json()["messages"][0]
    assert (await api.client.get(f"/api/v1/messages/{own['id']}/raw")).status_code == 404
