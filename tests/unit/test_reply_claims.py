"""Which mails may name an assignment: the parse step reads only those as answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nexusmail.ingest.parse import parse_mail
from nexusmail.ingest.prepare import prepare
from nexusmail.mail.parsed import ParsedMail
from nexusmail.mail.sender import NOT_CHECKED
from nexusmail.tickets.reply_claims import may_name_assignment

_PLAIN = ParsedMail(
    message_id="a@customer.test", in_reply_to=(), references=(),
    subject="Caldaia in blocco", from_addr="anna@customer.test", from_name="Anna",
    to_addrs=("support@firm.test",), cc_addrs=(), reply_to=(), date=None,
    body_text="Confermo che la caldaia è ferma.", body_html=None, attachments=(),
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "envelope_to", "expected"),
    [
        ({}, (), False),
        ({}, ("support@firm.test",), False),
        ({"in_reply_to": ("m1@firm.test",)}, (), True),
        ({"references": ("m1@firm.test",)}, (), True),
        ({"subject": "Re: [#42] Caldaia"}, (), True),
        ({"subject": "Re: #42 Caldaia"}, (), False),
        ({"to_addrs": ("support+tok@firm.test",)}, (), True),
        ({"cc_addrs": ("support+tok@firm.test",)}, (), True),
        ({}, ("support+tok@firm.test",), True),
        ({"to_addrs": ("support+@firm.test",)}, (), False),
    ],
)
def test_only_a_token_a_reference_or_a_tag_can_name_an_assignment(
    changes: dict[str, object], envelope_to: tuple[str, ...], expected: bool
) -> None:
    """A plus-address anywhere, a reference or a subject tag: else no assignment matches."""
    mail = replace(_PLAIN, **changes)  # type: ignore[arg-type]
    assert may_name_assignment(mail, envelope_to) is expected


def _raw(*headers: str) -> bytes:
    head = "\r\n".join(["From: Luca <luca@firm.test>", "Message-ID: <r1@firm.test>",
                        *headers])
    return f"{head}\r\n\r\nConfermo, giovedì.\r\n".encode()


def test_a_new_request_is_neither_read_as_an_answer_nor_believed() -> None:
    """No reading and a From left in doubt: if it ever met an assignment it could not act."""
    prepared = prepare(_raw("To: support@firm.test", "Subject: Caldaia"), "luca@firm.test",
                       ("firm.test",), 100_000, 20, ("support@firm.test",))
    assert prepared.reading is None
    assert prepared.mail.sender_problem == NOT_CHECKED


@pytest.mark.parametrize(
    ("headers", "envelope_to"),
    [
        (("To: support@firm.test", "Subject: Re: [#42] Intervento"), ()),
        (("To: support@firm.test", "In-Reply-To: <a1@firm.test>", "Subject: Re: x"), ()),
        (("To: support@firm.test", "Subject: Re: x"), ("support+tok@firm.test",)),
    ],
)
def test_a_mail_that_may_answer_is_read_and_its_from_checked(
    headers: tuple[str, ...], envelope_to: tuple[str, ...]
) -> None:
    """Tag, reference or a token only in the envelope: read, and the From checked."""
    prepared = prepare(_raw(*headers), "luca@firm.test", ("example.test",), 100_000, 20,
                       envelope_to)
    assert prepared.reading is not None
    assert prepared.reading.verdict == "confirmed"
    assert prepared.mail.sender_problem == ""
    assert prepared.mail.from_values == ()  # read in the worker, not carried back


def test_a_forged_from_of_a_possible_answer_stays_in_doubt() -> None:
    """The strict From check still runs on every mail that may act."""
    raw = _raw("To: support@firm.test", "Subject: Re: [#42] x").replace(
        b"From: Luca <luca@firm.test>", b"From: luca@firm.test <evil@evil.test>")
    prepared = prepare(raw, "evil@evil.test", ("example.test",), 100_000, 20)
    assert prepared.mail.sender_problem not in ("", NOT_CHECKED)


def test_parsing_alone_leaves_the_from_unchecked() -> None:
    """parse_mail keeps the From values and leaves the doubt until someone checks."""
    mail = parse_mail(_raw("To: support@firm.test", "Subject: Caldaia"))
    assert mail.sender_problem == NOT_CHECKED
    assert mail.from_values == ("Luca <luca@firm.test>",)
