"""The API and the admin page enter interventions and notes through one sequence
(tickets.entry): the same input stores the same result, and both refuse alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_employees, add_operator, csrf_of, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

OPERATOR = "anna@firm.test"
REQUEST = {"customer_email": "Verdi@Example.it", "customer_name": "Condominio Verdi",
           "subject": "Ascensore fermo", "description": "Fermo al piano 3.",
           "request_type": "Guasto", "priority": "urgent", "desired_from": "2026-03-04",
           "desired_to": "2026-03-05"}
# (sent name, stored name): client paths, a right-to-left override, dot-only names.
HOSTILE_FILES = [
    ("../../etc/passwd", "passwd"),
    ("C:\\Windows\\System32\\evil.dll", "evil.dll"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("....", "attachment"),
    ("rapporto 03/2026 .pdf", "2026 .pdf"),
]


@pytest.fixture
async def doors(tmp_path: Path) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient,
                                                         httpx.AsyncClient]]:
    """(daemon, API client with a token, admin page client logged in)."""
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        await add_operator(daemon, OPERATOR)
        await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
        token = await daemon.running.store.write(
            partial(create_token, name="desk", now=SystemClock().now()))
        async with httpx.AsyncClient(base_url=f"{daemon.web_url}/api/v1", headers={
                "Authorization": f"Bearer {token}"}) as api, logged_in(daemon, OPERATOR) as page:
            yield daemon, api, page


async def _page_post(page: httpx.AsyncClient, form_path: str, path: str,
                     data: dict[str, Any], **extra: Any) -> httpx.Response:
    form = await page.get(form_path)
    return await page.post(path, data={"csrf_token": csrf_of(form.text), **data}, **extra)


async def _stored_case(daemon: Daemon, number: int) -> list[tuple[Any, ...]]:
    """Everything an entry stores for case `number`, without ids, times and author."""
    case = await daemon.query(
        "SELECT i.subject, i.description, i.request_type, i.priority, i.desired_from,"
        " i.desired_to, i.source, i.status, c.email, c.name FROM interventions i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.number = ?", number)
    # Mails we sent carry the case number in their text: the outbox rows stand for them.
    messages = await daemon.query(
        "SELECT kind, direction, subject, body_text, extra FROM messages"
        " WHERE intervention_number = ? AND direction != 'out' ORDER BY id", number)
    assignments = await daemon.query(
        "SELECT e.email, a.status FROM assignments a JOIN employees e ON e.id = a.employee_id"
        " WHERE a.intervention_number = ? ORDER BY a.id", number)
    outbox = await daemon.query(
        "SELECT kind, recipient FROM outbox WHERE intervention_number = ? ORDER BY id", number)
    return [*case, *messages, *assignments, *outbox]


async def test_same_entry_through_api_and_page_stores_the_same(doors: Any) -> None:
    """One phone request typed into the page and posted to the API: the same case,
    messages, assignment and queued mails, only the number differs."""
    daemon, api, page = doors
    created = await api.post("/interventions", json={**REQUEST, "assignees": ["luca@firm.test"]})
    assert created.status_code == 201, created.text
    entered = await _page_post(page, "/interventions/new", "/interventions/new",
                               {**REQUEST, "assignees": "Luca@Firm.test"})
    assert (entered.status_code, entered.headers["location"]) == (303, "/interventions/2")
    from_api, from_page = await _stored_case(daemon, 1), await _stored_case(daemon, 2)
    assert from_api == from_page
    assert ("luca@firm.test", "pending") in from_api


async def test_hostile_file_names_are_cleaned_alike_and_download_alike(doors: Any) -> None:
    """Notes with hostile file names through the API and the page store the same names,
    and both downloads of a file carry the same attachment/nosniff headers."""
    daemon, api, page = doors
    assert (await api.post("/interventions", json=REQUEST)).status_code == 201
    files = [("file", (sent, b"x", "application/pdf")) for sent, _ in HOSTILE_FILES]
    by_api = await api.post("/interventions/1/notes", data={"text": "Scans"}, files=files)
    assert by_api.status_code == 201, by_api.text
    by_page = await _page_post(page, "/interventions/1", "/interventions/1/notes",
                               {"text": "Scans"}, files=files)
    assert by_page.status_code == 303, by_page.text
    rows = await daemon.query(
        "SELECT a.message_id, a.filename, a.content_type FROM attachments a"
        " ORDER BY a.id")
    stored = [[(name, ctype) for m, name, ctype in rows if m == message]
              for message in sorted({row[0] for row in rows})]
    assert stored[0] == stored[1] == [(name, "application/pdf") for _, name in HOSTILE_FILES]

    unicode_file = [("file", ("preventivo caldaia – 2026 €.pdf", b"%PDF", "text/html"))]
    assert (await api.post("/interventions/1/notes", data={"text": ""},
                           files=unicode_file)).status_code == 201
    [(attachment_id,)] = await daemon.query(
        "SELECT id FROM attachments WHERE filename LIKE 'preventivo%'")
    from_api = await api.get(f"/attachments/{attachment_id}")
    from_page = await page.get(f"/attachments/{attachment_id}")
    keys = ("content-type", "content-disposition", "x-content-type-options",
            "content-security-policy", "cache-control")
    assert [from_api.headers[k] for k in keys] == [from_page.headers[k] for k in keys]
    assert from_api.headers["content-type"] == "application/octet-stream"
    assert from_api.headers["content-disposition"] == (
        "attachment; filename=\"preventivo caldaia _ 2026 _.pdf\"; "
        "filename*=UTF-8''preventivo%20caldaia%20%E2%80%93%202026%20%E2%82%AC.pdf")
    assert from_api.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("address", ["luca.firm.test", "luca@firm", "luca @firm.test",
                                     "<luca@firm.test>", "a@b@firm.test"])
async def test_bad_addresses_are_refused_by_both(doors: Any, address: str) -> None:
    """A malformed customer or assignee address is a 422 through the API and the page
    alike, naming the address rule; nothing is created or assigned."""
    daemon, api, page = doors
    api_case = await api.post("/interventions", json={**REQUEST, "customer_email": address})
    page_case = await _page_post(page, "/interventions/new", "/interventions/new",
                                 {**REQUEST, "customer_email": address})
    assert (api_case.status_code, page_case.status_code) == (422, 422)
    assert "is not an email address" in api_case.json()["error"]
    assert "is not an email address" in page_case.text
    assert await daemon.query("SELECT count(*) FROM interventions") == [(0,)]

    assert (await api.post("/interventions", json=REQUEST)).status_code == 201
    api_assign = await api.post("/interventions/1/assignments", json={"employee_email": address})
    page_assign = await _page_post(page, "/interventions/1", "/interventions/1/assign",
                                   {"employee_email": address})
    assert (api_assign.status_code, page_assign.status_code) == (422, 422)
    assert "is not an email address" in api_assign.json()["error"]
    assert "is not an email address" in page_assign.text
    assert await daemon.query("SELECT count(*) FROM assignments") == [(0,)]
