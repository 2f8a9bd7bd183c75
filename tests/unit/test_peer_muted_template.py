"""The operators' "sender muted" notice renders in every language, for both scopes."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from nexusmail.clock import FakeClock
from nexusmail.config import MailSettings
from nexusmail.dispatch.compose import Composer, OutboxRow

SETTINGS = MailSettings(company_name="Termoidraulica Rossi S.r.l.",
                        support_addresses=("assistenza@rossi.example",))


@pytest.mark.parametrize("language", ["en", "it", "ro"])
@pytest.mark.parametrize(("scope", "peer"), [("address", "robot@robot.example"),
                                             ("domain", "robot.example")])
def test_the_notice_names_the_muted_peer_and_how_to_undo_it(language: str, scope: str,
                                                              peer: str) -> None:
    """Subject and text name the sender or domain; the text says how long the mute
    lasts when quiet and how to get the held mails back; no template variable is missing."""
    row = OutboxRow(id=1, message_id="nm.1@rossi.example", kind="peer_muted",
                    recipient="dispatch@rossi.example", language=language,
                    template="peer_muted",
                    context={"scope": scope, "peer": peer, "window_minutes": 10,
                             "reason": "opened 5 new cases within 10 minutes"})
    composed = Composer(SETTINGS, clock=FakeClock()).compose(row)
    mail = message_from_bytes(composed.message.as_bytes(policy=policy.SMTP),
                              policy=policy.default)
    assert peer in str(mail["Subject"])
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert peer in text
    assert "10" in text
    assert "nexusmail quarantine retry" in text
    assert mail["Auto-Submitted"] == "auto-generated"
