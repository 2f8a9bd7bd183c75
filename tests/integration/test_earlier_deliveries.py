"""What the inbound log's one lookup of a mail's earlier deliveries decides, on the run's
store: a copy (same content) has no second effect, while a mail that reuses an earlier
Message-ID of its sender with other content joins that mail's case, and the copy wins
when both are found."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from daemon_harness import SUPPORT, make_settings

from nexusmail.config import Settings
from nexusmail.ingest.prepare import prepare
from nexusmail.storage.connections import Storage
from nexusmail.tickets.apply_mail import InboundMail, IngestResult, apply_inbound
from nexusmail.tickets.models import Outcome

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MARIO = "mario@rossi.test"


def _mail(*, sender: str, hop: str, message_id: str, body: str) -> InboundMail:
    raw = (f"Received: from {hop} by mx.firm.test; Mon, 2 Mar 2026 09:29:00 +0000\r\n"
           f"From: Mario Rossi <{sender}>\r\nTo: {SUPPORT}\r\nSubject: Caldaia\r\n"
           f"Message-ID: <{message_id}@rossi.test>\r\n"
           f"Date: Mon, 2 Mar 2026 09:28:00 +0000\r\n\r\n{body}\r\n").encode()
    prepared = prepare(raw, sender, ["firm.test"], 100_000, 20, [SUPPORT])
    return InboundMail(raw=raw, raw_sha256=prepared.raw_sha256,
                       content_sha256=prepared.content_sha256, mail=prepared.mail,
                       source="smtp", envelope_from=sender, envelope_to=[SUPPORT],
                       noise_reason=prepared.noise, attachments=(),
                       language=prepared.language, reading=prepared.reading,
                       serial_candidates=prepared.serial_candidates)


async def _apply(store: Storage, mail: InboundMail, settings: Settings) -> IngestResult:
    return await store.write(partial(apply_inbound, inbound=mail, now=NOW, settings=settings))


async def test_a_reused_message_id_joins_the_first_case_and_a_copy_stays_a_copy(
        store: Storage, tmp_path: Path) -> None:
    """A second version under the first mail's Message-ID joins its case; the first
    mail again, by another relay, is its copy (not the look-alike's follow-up)."""
    settings = make_settings(tmp_path / "data")
    first = _mail(sender=MARIO, hop="relay1", message_id="m1", body="La caldaia non parte.")
    opened = await _apply(store, first, settings)
    assert opened.outcome is Outcome.NEW_REQUEST
    second = await _apply(store, _mail(sender=MARIO, hop="relay1", message_id="m1",
                                       body="La caldaia non parte ancora."), settings)
    assert (second.outcome, second.intervention_number) == (
        Outcome.FOLLOW_UP, opened.intervention_number)
    again = await _apply(store, _mail(sender=MARIO, hop="relay2", message_id="m1",
                                      body="La caldaia non parte."), settings)
    assert (again.outcome, again.inbound_id, again.intervention_number) == (
        Outcome.DUPLICATE, opened.inbound_id, opened.intervention_number)


async def test_another_senders_mail_under_the_same_message_id_opens_its_own_case(
        store: Storage, tmp_path: Path) -> None:
    """The look-alike is the same sender's: another sender's mail under that
    Message-ID is not joined to the first case."""
    settings = make_settings(tmp_path / "data")
    opened = await _apply(store, _mail(sender=MARIO, hop="relay1", message_id="m1",
                                       body="La caldaia non parte."), settings)
    other = await _apply(store, _mail(sender="anna@bianchi.test", hop="relay1",
                                      message_id="m1", body="Il condizionatore perde."),
                         settings)
    assert other.outcome is Outcome.NEW_REQUEST
    assert other.intervention_number != opened.intervention_number
