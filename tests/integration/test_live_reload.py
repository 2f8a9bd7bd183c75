"""A reload's `[limits]` reach every path that reads them: API, SMTP and IMAP.

The real daemon (in-process, `serve`) with a real Dovecot account reloads a config file
whose four `[limits]` keys all changed; each key the reload reports as applied must
then hold where a mail or a request comes in, not only where ingest reads it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import SUPPORT, Daemon, config_toml, make_config, running_daemon
from dovecot_server import ANY_USER_PASSWORD, Dovecot, dovecot_binary, new_user
from polling import eventually
from structlog.testing import capture_logs

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.config import load_settings

if dovecot_binary() is None and os.geteuid() != 0:
    pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)",
                allow_module_level=True)

NEW_LIMITS = {"max_message_bytes": 8192, "max_attachments": 1, "max_subject_chars": 20,
              "max_body_chars": 200}
LONG_SUBJECT = "Caldaia in blocco ogni mattina"  # 30 characters
LONG_BODY = "La caldaia va in blocco. " * 12    # 300 characters


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


def _mail(subject: str, body: str, *, attachments: int = 0, padding: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Mario Rossi <mario@example.org>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{os.urandom(8).hex()}@example.org>"
    msg.set_content(body + "\n" + "x" * padding)
    for index in range(attachments):
        msg.add_attachment(b"%d" % index, maintype="application", subtype="octet-stream",
                           filename=f"part{index}.bin")
    return msg.as_bytes()


async def _reload(daemon: Daemon, config_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Write `config`, ask for a reload as SIGHUP does, return the daemon.reloaded event."""
    await asyncio.to_thread(config_path.write_text, config_toml(config), encoding="utf-8")
    with capture_logs() as logs:
        daemon.reload.set()
        await eventually(lambda: any(e["event"] == "daemon.reloaded" for e in logs),
                         "daemon.reloaded")
    return next(e for e in logs if e["event"] == "daemon.reloaded")


async def _case(daemon: Daemon, sender_subject: str) -> tuple[str, str, int]:
    """(subject, description, attachments) of the case opened by a mail so titled."""
    rows = await daemon.query(
        "SELECT i.subject, i.description, (SELECT count(*) FROM attachments a"
        " JOIN messages m ON m.id = a.message_id WHERE m.intervention_number = i.number)"
        " FROM interventions i WHERE i.subject LIKE ? ORDER BY i.number DESC LIMIT 1",
        sender_subject[:10] + "%")
    assert rows, f"no case for {sender_subject!r}"
    subject, description, attachments = rows[0]
    return str(subject), str(description), int(attachments)


async def test_reloaded_limits_hold_in_api_smtp_and_imap(tmp_path: Path,
                                                         dovecot: Dovecot) -> None:
    """After a reload that reports all four [limits] keys as applied, the API refuses a
    longer subject, body, upload or more files; SMTP refuses a larger mail and shortens
    subject, body and attachments; IMAP leaves a larger mail on the server and shortens
    what it collects — none of it needs a restart."""
    user = new_user()
    config = make_config(tmp_path / "data", imap={
        "poll_interval_s": 0.05, "reconnect_min_s": 0.1, "accounts": [{
            "name": "support", "host": dovecot.host, "port": dovecot.port, "tls": "none",
            "username": user, "password": ANY_USER_PASSWORD}]})
    config_path = tmp_path / "nexusmail.toml"
    config_path.write_text(config_toml(config), encoding="utf-8")
    async with running_daemon(load_settings(config_path), config_path=config_path) as daemon:
        token = await daemon.running.store.write(
            partial(create_token, name="desk", now=SystemClock().now()))
        config["limits"] = dict(NEW_LIMITS)
        reloaded = await _reload(daemon, config_path, config)
        assert reloaded["reloaded"] == ["templates", *(f"[limits] {k}" for k in (
            "max_message_bytes", "max_attachments", "max_subject_chars", "max_body_chars"))]
        assert (reloaded["needs_restart"], reloaded["imap_restarted"]) == ([], False)

        async with httpx.AsyncClient(base_url=f"{daemon.web_url}/api/v1", headers={
                "Authorization": f"Bearer {token}"}) as api:
            await _check_api(api)
        await _check_smtp(daemon)
        await _check_imap(daemon, dovecot, user)


async def _check_api(api: httpx.AsyncClient) -> None:
    request = {"customer_email": "mario@example.org", "subject": "Caldaia",
               "description": "In blocco."}
    for field, value, key in (("subject", LONG_SUBJECT, "max_subject_chars"),
                              ("description", LONG_BODY, "max_body_chars")):
        refused = await api.post("/interventions", json={**request, field: value})
        assert refused.status_code == 422, refused.text
        assert f"[limits] {key}" in refused.json()["error"]
    created = await api.post("/interventions", json=request)
    assert created.status_code == 201, created.text
    notes = f"/interventions/{created.json()['number']}/notes"
    too_long = await api.post(notes, data={"text": LONG_BODY}, files={"file": ("a.txt", b"a")})
    assert too_long.status_code == 422
    assert "[limits] max_body_chars" in too_long.json()["error"]
    too_big = await api.post(notes, data={"text": "scan"},
                             files={"file": ("scan.pdf", b"x" * 9000)})
    assert too_big.status_code == 413
    assert "[limits] max_message_bytes" in too_big.json()["error"]
    too_many = await api.post(notes, data={"text": "two"}, files=[
        ("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))])
    assert too_many.status_code == 400
    assert (await api.post(notes, data={"text": "one"},
                           files={"file": ("a.txt", b"a")})).status_code == 201


async def _check_smtp(daemon: Daemon) -> None:
    code, _message = await daemon.send(_mail("Big one", "Too large.", padding=9000))
    assert code == 552
    assert (await daemon.send(_mail("SMTP " + LONG_SUBJECT, LONG_BODY, attachments=2)))[0] == 250
    subject, description, attachments = await _case(daemon, "SMTP " + LONG_SUBJECT)
    assert len(subject) == NEW_LIMITS["max_subject_chars"]
    assert len(description) == NEW_LIMITS["max_body_chars"]
    assert attachments == NEW_LIMITS["max_attachments"]


async def _check_imap(daemon: Daemon, dovecot: Dovecot, user: str) -> None:
    await asyncio.to_thread(dovecot.append, user, [
        _mail("IMAP big one", "Too large.", padding=9000),
        _mail("IMAP " + LONG_SUBJECT, LONG_BODY, attachments=2)])

    async def collected() -> bool:
        return bool(await daemon.query(
            "SELECT 1 FROM interventions WHERE subject LIKE 'IMAP Calda%'"))
    await eventually(collected, "the IMAP mail's case")
    subject, description, attachments = await _case(daemon, "IMAP " + LONG_SUBJECT)
    assert len(subject) == NEW_LIMITS["max_subject_chars"]
    assert len(description) == NEW_LIMITS["max_body_chars"]
    assert attachments == NEW_LIMITS["max_attachments"]
    assert await daemon.query("SELECT subject FROM imap_oversize") == [("IMAP big one",)]
    assert not await daemon.query("SELECT 1 FROM interventions WHERE subject = 'IMAP big one'")
