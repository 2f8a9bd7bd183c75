"""MAIL FROM / RCPT TO paths: our fast path reads them exactly as aiosmtpd does."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest.smtp_server import SimpleAddressMixin


class _Stock(SMTP):
    def __init__(self, local_part_limit: int = 0) -> None:  # no loop, no handler needed
        self.local_part_limit = local_part_limit


class _Ours(SimpleAddressMixin, _Stock):
    pass


def _both(arg: str, limit: int) -> tuple[Any, Any]:
    results = []
    for cls in (_Stock, _Ours):
        try:
            results.append(cls(limit)._getaddr(arg))
        except Exception as exc:  # the same exception type counts as the same answer
            results.append(type(exc).__name__)
    return results[0], results[1]


@pytest.mark.parametrize("arg", [
    "<a@b.c>", " <a@b.c>", "<a@b.c>  SIZE=1 BODY=8BITMIME ", "<a@b.c>SIZE=1",
    "<a@b.c> (comment) SIZE=1", "<A.B@Example.COM>", "<a@[1.2.3.4]>", "<>", "<a..b@c>",
    "<.a@c>", "<a@b.c>\t X", '<"a b"@c>', "<a@b.c> \x0bX", "<a@b.c>\r\nX", "<a@b.c> \t",
    "<maria.rossi+42@clienti-esempio.it>", "<müller@beispiel.de>", "a@b.c", "",
])
@pytest.mark.parametrize("limit", [0, 3])
def test_same_path_as_aiosmtpd(arg: str, limit: int) -> None:
    """Table of common and odd forms: same address and parameters, or same refusal."""
    stock, ours = _both(arg, limit)
    assert ours == stock


@settings(max_examples=500)
@given(local=st.text(alphabet="ab.+-\"() é", max_size=8),
       after=st.text(alphabet=" \t()SIZE=1\x0b", max_size=6), limit=st.sampled_from([0, 3]))
def test_same_path_as_aiosmtpd_generated(local: str, after: str, limit: int) -> None:
    """Generated near-misses of <local@domain> params: never a different answer."""
    stock, ours = _both(f"<{local}a@b.c>{after}", limit)
    assert ours == stock
