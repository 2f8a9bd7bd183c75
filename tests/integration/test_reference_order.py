"""Which case a mail naming several earlier mails joins, on the run's store: its
references are looked up together, and the most recent one that names a case wins
(In-Reply-To, then References from the end), as when they were looked up one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from daemon_harness import SUPPORT, make_settings

from nexusmail.ingest.prepare import prepare
from nexusmail.storage.connections import Storage
from nexusmail.tickets.apply_mail import InboundMail, IngestResult, apply_inbound
from nexusmail.tickets.models import Outcome

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MARIO = "mario@rossi.test"


def _mail(message_id: str, subject: str, headers: str = "") -> InboundMail:
    raw = (f"From: Mario Rossi <{MARIO}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{message_id}@rossi.test>\r\n{headers}"
           f"Date: Mon, 2 Mar 2026 09:28:00 +0000\r\n\r\nScrivo per {subject}.\r\n").encode()
    prepared = prepare(raw, MARIO, ["firm.test"], 100_000, 20, [SUPPORT])
    return InboundMail(raw=raw, raw_sha256=prepared.raw_sha256,
                       content_sha256=prepared.content_sha256, mail=prepared.mail,
                       source="smtp", envelope_from=MARIO, envelope_to=[SUPPORT],
                       noise_reason=prepared.noise, attachments=(),
                       language=prepared.language, reading=prepared.reading,
                       serial_candidates=prepared.serial_candidates)


async def test_the_most_recent_reference_that_names_a_case_wins(
        store: Storage, tmp_path: Path) -> None:
    """References naming two cases join the later-listed one's; an In-Reply-To naming
    the other comes before every reference."""
    settings = make_settings(tmp_path / "data")

    async def apply(mail: InboundMail) -> IngestResult:
        return await store.write(partial(apply_inbound, inbound=mail, now=NOW,
                                         settings=settings))

    boiler = await apply(_mail("a1", "la caldaia"))
    pump = await apply(_mail("b1", "la pompa"))
    refs = "References: <unknown@rossi.test> <a1@rossi.test> <b1@rossi.test>\r\n"
    by_references = await apply(_mail("c1", "ancora", refs))
    assert (by_references.outcome, by_references.intervention_number) == (
        Outcome.FOLLOW_UP, pump.intervention_number)
    by_reply_to = await apply(_mail("d1", "di nuovo", f"In-Reply-To: <a1@rossi.test>\r\n{refs}"))
    assert (by_reply_to.outcome, by_reply_to.intervention_number) == (
        Outcome.FOLLOW_UP, boiler.intervention_number)
