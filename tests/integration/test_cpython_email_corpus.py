"""CPython's own email test mails through the real daemon: all kept, none garbled.

The sample mails ship with Debian's libpython3.11-testsuite (the Makefile installs it
with the other test packages). Each is sent over SMTP; what the daemon stored is
compared with what Python's `email.policy.default` reads from the same bytes, wherever
that reading has no replacement characters itself.
"""

from __future__ import annotations

import email
import sysconfig
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import make_settings, running_daemon

DATA_DIR = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
MAILS = sorted(DATA_DIR.glob("msg_*.txt"))
SUPPORT = "support@termoservice.it"

pytestmark = pytest.mark.skipif(
    not MAILS, reason=f"no CPython email test data in {DATA_DIR}"
    " (Debian package libpython3.11-testsuite; `make install-test` installs it)")


def _fold(text: str) -> str:
    return " ".join(text.split())


def _default_reading(raw: bytes) -> tuple[str, str, list[str]] | None:
    """Subject, first body line and attachment names as policy.default reads them."""
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    if not message.keys():
        return None  # no header block at all: nothing to compare a mail's fields with
    subject = _fold(str(message.get("subject", "") or ""))
    body_part = message.get_body(("plain",))
    body = body_part.get_content() if isinstance(body_part, EmailMessage) else ""
    first_line = next((_fold(line) for line in body.splitlines() if line.strip()), "")
    names = [name for part in message.iter_attachments() if (name := part.get_filename())]
    return subject, first_line, names


async def test_cpython_sample_mails_are_kept_and_read_as_python_reads_them(
        tmp_path: Path, relay: Controller) -> None:
    """Every CPython sample mail gets 250 and a log row; subjects, bodies and attachment
    names match policy.default's wherever that reading itself is clean."""
    raws = list(dict.fromkeys(path.read_bytes() for path in MAILS))
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"support_addresses": [SUPPORT]})
    async with running_daemon(settings) as daemon:
        for raw in raws:
            code, answer = await daemon.send(raw, sender="x@example.org", recipients=[SUPPORT])
            assert code == 250, answer
        rows = await daemon.query(
            "SELECT i.id, i.subject, i.outcome, m.id, coalesce(m.body_text, '')"
            " FROM inbound i LEFT JOIN messages m ON m.inbound_id = i.id ORDER BY i.id")
        names: dict[int, list[str]] = {}
        for message_id, filename in await daemon.query(
                "SELECT message_id, filename FROM attachments ORDER BY id"):
            names.setdefault(message_id, []).append(filename)
    assert len(rows) == len(raws)
    assert [row for row in rows if row[2] == "quarantined"] == []
    garbled = []
    for raw, (_id, subject, _outcome, message_id, body) in zip(raws, rows, strict=True):
        expected = _default_reading(raw)
        if expected is None:
            continue
        want_subject, want_line, want_names = expected
        if "\ufffd" not in want_subject and want_subject != subject:
            garbled.append(("subject", want_subject, subject))
        if message_id is None:
            continue  # noise (bounces, lists) is logged, not stored as a message
        if "\ufffd" not in want_line and want_line[:60] not in _fold(body):
            garbled.append(("body", want_line, body[:80]))
        stored = names.get(message_id, [])
        garbled.extend(("filename", name, stored) for name in want_names
                       if "\ufffd" not in name and name not in stored)
    assert garbled == []
