"""Assignments, notes and needs-attention flags through the JSON API, over a real socket
with a real store (tests/support/api_harness.py)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, running_api

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.dispatch.compose import Composer, OutboxRow
from nexusmail.mail.reply_reading import read_reply
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.assignments import AssignmentMatch, answer_facts, record_reply
from nexusmail.tickets.cases import NewMessage, add_employee
from nexusmail.tickets.models import Direction, MatchedBy, MessageKind
from nexusmail.tickets.outbox import ROW_COLUMNS
from nexusmail.tickets.reply_tokens import verify_token
from nexusmail.tickets.store import Store
from nexusmail.tickets.triage import MailFacts, triage

SUPPORT = "support@firm.test"
KEYS = [b"current-signing-key-0123456789abcdef", b"older-key-still-verifying-0123456"]
MAX_FILE_BYTES = 64 * 1024
MARCO = "marco.bianchi@firm.test"
ION = "ion.popescu@firm.test"
REQUEST = {
    "customer_email": "mario.rossi@example.it", "customer_name": "Mario Rossi",
    "subject": "Caldaia in blocco", "description": "La caldaia va in blocco ogni mattina.",
    "request_type": "guasto", "priority": "high",
    "desired_from": "2026-03-05", "desired_to": "2026-03-06",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": [SUPPORT], "company_name": "Firm",
                 "operator_addresses": ["dispatch@firm.test"]},
        "limits": {"max_message_bytes": MAX_FILE_BYTES},
    })


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    def employees(tx: sqlite3.Connection) -> None:
        add_employee(tx, email=MARCO, name="Marco Bianchi", language="it", now=clock.now())
        add_employee(tx, email=ION, name="Ion Popescu", language="ro", now=clock.now())

    await store.write(employees)
    async with running_api(store, settings, clock, reply_keys=KEYS) as running:
        yield running


async def create(api: Api, **changes: Any) -> dict[str, Any]:
    response = await api.client.post("/api/v1/interventions", json={**REQUEST, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def detail(api: Api, number: int) -> dict[str, Any]:
    body: dict[str, Any] = (await api.client.get(f"/api/v1/interventions/{number}")).json()
    return body


async def test_assignees_at_creation_are_assigned_in_the_same_request(api: Api) -> None:
    """`assignees` creates the intervention with one pending assignment each, and one
    assignment mail each in the outbox, in the employee's language."""
    created = await create(api, assignees=[MARCO, ION.upper()])
    number = created["number"]
    assert [(a["employee_email"], a["employee_name"], a["status"], a["decided_at"], a["reason"])
            for a in created["assignments"]] == [
        (MARCO, "Marco Bianchi", "pending", None, ""), (ION, "Ion Popescu", "pending", None, "")]
    assert set(created["assignments"][0]) == {
        "id", "employee_email", "employee_name", "status", "decided_at", "reason", "team"}
    assert created["needs_attention"] == []
    rows = await api.rows("SELECT recipient, template, language FROM outbox"
                          " WHERE kind = 'assignment' AND intervention_number = ? ORDER BY id",
                          number)
    assert rows == [(MARCO, "assignment", "it"), (ION, "assignment", "ro")]
    kinds = [m["kind"] for m in created["messages"]]
    assert kinds.count("assignment_mail") == 2


async def test_unknown_assignee_at_creation_creates_nothing(api: Api) -> None:
    """One unknown employee refuses the whole request with a 422 naming the address;
    no intervention, assignment or mail is left behind."""
    response = await api.client.post("/api/v1/interventions",
                                     json={**REQUEST, "assignees": [MARCO, "nobody@firm.test"]})
    assert response.status_code == 422
    assert response.json()["error"] == "assignees: no employee with address nobody@firm.test"
    assert await api.rows("SELECT number FROM interventions") == []
    assert await api.rows("SELECT id FROM assignments") == []
    assert await api.rows("SELECT id FROM outbox") == []


async def test_malformed_assignee_is_a_422(api: Api) -> None:
    """An assignee that is not an address is refused before anything is written."""
    response = await api.client.post("/api/v1/interventions",
                                     json={**REQUEST, "assignees": ["Marco"]})
    assert response.status_code == 422
    assert response.json()["error"] == "assignees: 'Marco' is not an email address"


async def test_assign_later_queues_a_signed_assignment_mail(
    api: Api, settings: Settings
) -> None:
    """POST .../assignments answers 201 with the assignment; its mail is an outbox row
    (template "assignment") whose Reply-To is support+a<id>n<number>s<hex>@domain,
    signed for the employee, with the case details in its context."""
    number = (await create(api))["number"]
    api.outbox_wakeups.clear()
    response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                     json={"employee_email": " Ion.Popescu@Firm.test "})
    assert response.status_code == 201, response.text
    assignment = response.json()
    assert assignment == {"id": assignment["id"], "employee_email": ION,
                          "employee_name": "Ion Popescu", "status": "pending",
                          "decided_at": None, "reason": "", "team": None}
    assert api.outbox_wakeups == [1]
    ((message_id, context_json),) = await api.rows(
        "SELECT message_id, context FROM outbox WHERE template = 'assignment'"
        " AND recipient = ? AND intervention_number = ?", ION, number)
    context = json.loads(context_json)
    match = re.fullmatch(r"support\+(a(\d+)n(\d+)s[0-9a-f]+)@firm\.test", context["reply_to"])
    assert match is not None, context["reply_to"]
    assert (int(match[2]), int(match[3])) == (assignment["id"], number)
    assert verify_token(KEYS, match[1], ION) is not None
    assert verify_token(KEYS, match[1], MARCO) is None
    assert context["employee_name"] == "Ion Popescu"
    assert context["subject"] == "Caldaia in blocco"
    assert context["customer"]["email"] == "mario.rossi@example.it"
    assert await api.rows("SELECT mail_message_id, assigned_by FROM assignments WHERE id = ?",
                          assignment["id"]) == [(message_id, "api:tests")]
    shown = await detail(api, number)
    assert shown["assignments"] == [assignment]
    assert "unassigned" not in shown["needs_attention"]


async def test_assigning_the_same_employee_twice_is_a_409(api: Api) -> None:
    """A second assignment of the same employee is a conflict; one mail only."""
    number = (await create(api, assignees=[MARCO]))["number"]
    again = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                  json={"employee_email": MARCO})
    assert again.status_code == 409
    assert "already assigned" in again.json()["error"]
    assert len(await api.rows("SELECT id FROM outbox WHERE kind = 'assignment'")) == 1


async def test_assigning_on_a_closed_intervention_is_a_409(api: Api) -> None:
    """A closed intervention takes no new assignment."""
    number = (await create(api))["number"]
    assert (await api.client.post(f"/api/v1/interventions/{number}/close")).status_code == 200
    response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                     json={"employee_email": MARCO})
    assert response.status_code == 409
    assert "closed" in response.json()["error"]


async def test_inactive_employee_is_a_409(api: Api) -> None:
    """An employee marked inactive cannot be assigned."""
    number = (await create(api))["number"]
    await api.store.write(lambda tx: tx.execute(
        "UPDATE employees SET active = 0 WHERE email = ?", (MARCO,)))
    response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                     json={"employee_email": MARCO})
    assert response.status_code == 409
    assert "not active" in response.json()["error"]


@pytest.mark.parametrize(("path_number", "email", "message"), [
    (None, "nobody@firm.test", "no employee with address nobody@firm.test"),
    (999, MARCO, "intervention 999 does not exist"),
])
async def test_unknown_employee_or_intervention_is_a_404(
    api: Api, path_number: int | None, email: str, message: str
) -> None:
    """Assigning an unknown employee, or on an unknown intervention, answers 404."""
    number = path_number or (await create(api))["number"]
    response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                     json={"employee_email": email})
    assert response.status_code == 404
    assert response.json()["error"] == message


async def test_assignment_body_is_validated(api: Api) -> None:
    """A missing or malformed employee_email answers 422 naming the field."""
    number = (await create(api))["number"]
    for body in ({}, {"employee_email": "marco"}, {"employee_email": MARCO, "x": 1}):
        response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                         json=body)
        assert response.status_code == 422, body
    assert await api.rows("SELECT id FROM assignments") == []


async def test_without_signing_keys_assignment_is_a_503(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    """A daemon that forgot its reply keys refuses to assign instead of crashing."""
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    async with running_api(store, settings, clock) as api:
        number = (await create(api))["number"]
        response = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                         json={"employee_email": MARCO})
        assert response.status_code == 503
        assert await api.rows("SELECT id FROM assignments") == []


async def test_note_with_files_round_trips_byte_for_byte(api: Api) -> None:
    """A multipart note with two files becomes an internal note by the token's name;
    each file downloads back identical (same sha256)."""
    number = (await create(api))["number"]
    photo = bytes(range(256)) * 40
    report = "Rapporto d'intervento: è sostituita la valvola.\n".encode()
    response = await api.client.post(
        f"/api/v1/interventions/{number}/notes",
        data={"text": "Foto e rapporto dal cliente."},
        files=[("file", ("caldaia foto.jpg", photo, "image/jpeg")),
               ("file", ("C:\\Users\\op\\rapporto.txt", report, "text/plain"))],
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert (note["kind"], note["direction"], note["author"], note["body_text"]) == (
        "note", "internal", "api:tests", "Foto e rapporto dal cliente.")
    assert note["extra"] == {}
    assert [(a["filename"], a["content_type"], a["size"]) for a in note["attachments"]] == [
        ("caldaia foto.jpg", "image/jpeg", len(photo)),
        ("rapporto.txt", "text/plain", len(report))]
    for attachment, original in zip(note["attachments"], [photo, report], strict=True):
        downloaded = await api.client.get(f"/api/v1/attachments/{attachment['id']}")
        assert downloaded.status_code == 200
        assert hashlib.sha256(downloaded.content).hexdigest() == attachment["sha256"]
        assert downloaded.content == original
    assert (await detail(api, number))["messages"][-1] == note


async def test_note_with_a_register_reference(api: Api) -> None:
    """A text-only note keeps its correspondence-register reference in `extra`."""
    number = (await create(api))["number"]
    response = await api.client.post(
        f"/api/v1/interventions/{number}/notes",
        files={"text": (None, "Lettera di diffida inviata."),
               "register_ref": (None, "PROT-2026/0042")},
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["extra"] == {"register_ref": "PROT-2026/0042"}
    assert note["attachments"] == []
    assert (await detail(api, number))["messages"][-1]["extra"] == {
        "register_ref": "PROT-2026/0042"}


async def test_note_on_a_closed_intervention_is_kept(api: Api) -> None:
    """A signed report often arrives after closing: notes are still accepted."""
    number = (await create(api))["number"]
    await api.client.post(f"/api/v1/interventions/{number}/close")
    response = await api.client.post(f"/api/v1/interventions/{number}/notes",
                                     data={"text": "Rapporto firmato ricevuto."})
    assert response.status_code == 201


async def test_too_large_file_is_a_413_and_stores_nothing(api: Api) -> None:
    """A file above [limits] max_message_bytes answers 413; no note, no blob."""
    number = (await create(api))["number"]
    before = await api.rows("SELECT count(*) FROM messages")
    response = await api.client.post(
        f"/api/v1/interventions/{number}/notes", data={"text": "video"},
        files={"file": ("video.mp4", b"v" * (MAX_FILE_BYTES + 1), "video/mp4")},
    )
    assert response.status_code == 413
    assert "max_message_bytes" in response.json()["error"]
    assert await api.rows("SELECT count(*) FROM messages") == before
    assert not api.blobs.root.exists() or not any(api.blobs.root.rglob("*"))


async def test_oversized_chunked_upload_is_a_413(api: Api) -> None:
    """A body without Content-Length is cut off once it passes the limit."""
    number = (await create(api))["number"]
    before = await api.rows("SELECT count(*) FROM messages")

    async def chunks() -> AsyncIterator[bytes]:
        yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
               b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(40):
            yield b"x" * 64 * 1024

    response = await api.client.post(
        f"/api/v1/interventions/{number}/notes", content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert await api.rows("SELECT count(*) FROM messages") == before


@pytest.mark.parametrize(("kwargs", "status", "error"), [
    ({"data": {"text": "   "}}, 422, "text: a note needs text or a file"),
    ({"data": {"register_ref": "PROT-1"}}, 422, "text: a note needs text or a file"),
    ({"data": {"text": "x", "register_ref": "R" * 101}}, 422, "register_ref:"),
    ({"json": {"text": "hello"}}, 415, "multipart/form-data"),
])
async def test_bad_notes_are_refused(
    api: Api, kwargs: dict[str, Any], status: int, error: str
) -> None:
    """An empty note, an over-long register reference or a JSON body are refused."""
    number = (await create(api))["number"]
    response = await api.client.post(f"/api/v1/interventions/{number}/notes", **kwargs)
    assert response.status_code == status
    assert response.json()["error"].startswith(error) or error in response.json()["error"]


async def test_note_on_an_unknown_intervention_is_a_404(api: Api) -> None:
    """A note for a missing intervention answers 404 and stores no file."""
    response = await api.client.post("/api/v1/interventions/77/notes", data={"text": "x"},
                                     files={"file": ("a.txt", b"abc", "text/plain")})
    assert response.status_code == 404
    assert not api.blobs.root.exists() or not any(api.blobs.root.rglob("*"))


async def reply(api: Api, settings: Settings, clock: FakeClock, number: int, email: str,
                text: str, *, sender: str | None = None) -> None:
    """Record a technician's reply through the tickets layer, as ingest would."""
    rows = await api.rows("SELECT a.id, a.status, e.name, e.language FROM assignments a"
                          " JOIN employees e ON e.id = a.employee_id"
                          " WHERE a.intervention_number = ? AND e.email = ?", number, email)
    ((assignment_id, status, name, language),) = rows
    match = AssignmentMatch(assignment_id, number, email, name, language, status,
                            MatchedBy.TOKEN)
    reading = read_reply(text)
    message = NewMessage(kind=MessageKind.TECHNICIAN_REPLY, direction=Direction.IN,
                         subject="Re: assignment", from_addr=sender or email, body_text=text)
    now = clock.now()

    def record(tx: WriteTx) -> None:
        facts = answer_facts(tx, match, reading, sender=sender or email, sender_doubt="",
                             written_at=now)
        record_reply(tx, match, reading, message, triage(MailFacts(answer=facts)),
                     sender=sender or email, written_at=now, now=now, settings=settings)

    await api.store.write(record)


async def test_needs_attention_follows_the_replies(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    """Flags come from the data: unassigned, then rejected once nobody is left who
    confirmed or may still answer, unclear for an unreadable reply, unverified for a
    reply from someone else; the list shows them too."""
    number = (await create(api))["number"]
    assert (await detail(api, number))["needs_attention"] == ["unassigned"]

    await api.client.post(f"/api/v1/interventions/{number}/assignments",
                          json={"employee_email": MARCO})
    await api.client.post(f"/api/v1/interventions/{number}/assignments",
                          json={"employee_email": ION})
    assert (await detail(api, number))["needs_attention"] == []

    await reply(api, settings, clock, number, MARCO, "RIFIUTO, sono in ferie.")
    # Ion may still answer: nothing to reassign yet.
    assert (await detail(api, number))["needs_attention"] == []

    await reply(api, settings, clock, number, ION, "Poate mâine, vedem.")
    shown = await detail(api, number)
    assert {a["employee_email"]: a["status"] for a in shown["assignments"]} == {
        MARCO: "rejected", ION: "unclear"}
    assert shown["needs_attention"] == ["rejected", "unclear"]
    rejected = next(a for a in shown["assignments"] if a["employee_email"] == MARCO)
    assert rejected["decided_at"] is not None

    await reply(api, settings, clock, number, ION, "Confirm", sender="someone@else.test")
    shown = await detail(api, number)
    assert shown["needs_attention"] == ["rejected", "unclear", "unverified"]
    stranger = shown["messages"][-1]
    assert (stranger["kind"], stranger["verified"], stranger["verdict"]) == (
        "technician_reply", False, "confirmed")
    assert stranger["extra"]["matched_by"] == "token"
    assert stranger["extra"]["acted"] is False

    page = (await api.client.get("/api/v1/interventions")).json()
    assert page["items"][0]["needs_attention"] == ["rejected", "unclear", "unverified"]

    await api.client.post(f"/api/v1/interventions/{number}/close")
    assert (await detail(api, number))["needs_attention"] == ["unverified"]


async def test_a_confirmation_clears_the_rejected_flag(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    """One rejection beside a confirmation needs no reassignment."""
    number = (await create(api, assignees=[MARCO, ION]))["number"]
    await reply(api, settings, clock, number, MARCO, "Rifiuto")
    await reply(api, settings, clock, number, ION, "Confirm")
    shown = await detail(api, number)
    assert shown["needs_attention"] == []
    assert [m["verdict"] for m in shown["messages"] if m["kind"] == "technician_reply"] == [
        "rejected", "confirmed"]


async def test_every_mail_the_assignment_flow_queues_composes(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    """The rows assign() and record_reply() queue render with the real templates: the
    assignment in the employee's language with its signed Reply-To, the echoes, and the
    operators' rejection notice (a context key missing from a template would fail here)."""
    number = (await create(api, assignees=[MARCO, ION]))["number"]
    await reply(api, settings, clock, number, MARCO, "RIFIUTO: sono in ferie.")
    await reply(api, settings, clock, number, ION, "Confirm, ajung la 9.")
    composer = Composer(settings.mail, blob_loader=api.blobs.get, clock=clock)
    async with api.store.read() as conn:
        # A fixed column list, no input in the SQL.
        sql = f"SELECT {ROW_COLUMNS} FROM outbox WHERE kind != 'acknowledgement'"  # noqa: S608
        rows = await conn.execute_fetchall(sql + " ORDER BY id")
    composed = {}
    for row in rows:
        outbox_row = OutboxRow.from_db(row)
        mail = composer.compose(outbox_row)
        composed[(outbox_row.kind, outbox_row.recipient)] = mail
    assert sorted(composed) == [
        ("assignment", ION), ("assignment", MARCO), ("decision_echo", ION),
        ("decision_echo", MARCO), ("rejection_notice", "dispatch@firm.test")]
    assignment = composed[("assignment", MARCO)]
    assert assignment.subject == f"[#{number}] Assegnazione: Caldaia in blocco"
    assert "Rispondi CONFERMO oppure RIFIUTO" in assignment.body_text
    assert assignment.message["Reply-To"].startswith(f"support+a1n{number}s")
    assert (f"Înregistrat: confirmat pentru #{number}"
            in composed[("decision_echo", ION)].body_text)
    assert (f"Registrato: rifiutato per #{number}"
            in composed[("decision_echo", MARCO)].body_text)
    notice = composed[("rejection_notice", "dispatch@firm.test")].body_text
    assert f"#{number}: Marco Bianchi rejected the assignment" in notice
    assert "needs reassignment" in notice
