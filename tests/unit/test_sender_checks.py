"""Which From headers may let a mail act, and when a trusted server's DMARC verdict
forbids it."""

from __future__ import annotations

import pytest

from nexusmail.mail.sender import dmarc_failed, from_problem


@pytest.mark.parametrize("value", [
    "Luca Bianchi <luca@firm.it>", "luca@firm.it", '"Bianchi, Luca" <luca@firm.it>',
    "=?utf-8?q?Luca_Bianchi?= <luca@firm.it>", "Luca <luca@firm.it> (work)",
])
def test_one_plain_mailbox_is_believed(value: str) -> None:
    """Ordinary From headers, quoted and encoded names included, raise no doubt."""
    assert from_problem([value]) == ""


@pytest.mark.parametrize(("values", "why"), [
    (["luca@firm.it <evil@evil.example>"], "malformed"),
    (["<luca@firm.it>evil@evil.example"], "malformed"),
    (["luca@firm.it, evil@evil.example"], "exactly one mailbox"),
    (["Luca <luca@firm.it>", "Evil <evil@evil.example>"], "2 From headers"),
    ([], "no From header"),
    (["Luca <luca@firm.it>, "], "malformed"),
    (["x" * 2000 + " <luca@firm.it>"], "too long"),
    (["team: luca@firm.it;"], "a group"),
    (["<luca@firm.it>,"], "text after the mailbox"),
])
def test_parser_tricks_put_the_sender_in_doubt(values: list[str], why: str) -> None:
    """Every From that two parsers could read differently is doubted, with the reason."""
    assert why in from_problem(values)


def test_dmarc_fail_counts_only_from_the_trusted_server() -> None:
    """A dmarc=fail from the configured authserv-id for the From domain forbids acting;
    the same header from anyone else, a pass, or another domain does not."""
    fail = "mx.firm.it; spf=pass smtp.mailfrom=x.example; dmarc=fail (p=reject) header.from=firm.it"
    assert dmarc_failed([fail], "mx.firm.it", "firm.it")
    assert not dmarc_failed([fail], "mx.other.it", "firm.it")
    assert not dmarc_failed([fail.replace("fail", "pass")], "mx.firm.it", "firm.it")
    assert not dmarc_failed([fail], "mx.firm.it", "other.it")
    assert dmarc_failed(["mx.firm.it 1; dmarc=fail"], "mx.firm.it", "firm.it")
    assert not dmarc_failed([fail], "", "firm.it")
